using GradFlow.Kernels;

namespace GradFlow.Bench;

/// <summary>
/// The 2x2 / stride-2 max-pool backward: the 8-window vector path (<see cref="Pool2dVector.MaxBackward2x2"/>) against the
/// scalar one on the cnn bench's two pools (batch 64: 32 planes of 26x26, 64 of 11x11), alternated for the given rounds in
/// the calling thread's CPU time. Run with GRADFLOW_NUM_THREADS=1.
/// </summary>
internal static class PoolBackwardProbe
{
    public static void Run(int rounds)
    {
        Console.WriteLine($"vector path {(Pool2dVector.BackwardApplies(Pool2dGeometry.Create("MaxPool2d", 1, 1, 16, 16, 2, 2, 2, 2, 0, 0)) ? "available" : "not available")}; ratios are vector / scalar");
        foreach (var (c, h) in new[] { (32, 26), (64, 11) })
        {
            var g = Pool2dGeometry.Create("MaxPool2d backward", 64, c, h, h, 2, 2, 2, 2, 0, 0);
            var gen = new Generator(1);
            var x = new float[64 * c * h * h];
            for (int i = 0; i < x.Length; i++) x[i] = (float)gen.NextNormal();
            var y = new float[64 * c * g.OH * g.OW];
            var idx = new int[y.Length];
            Pool2dKernels.MaxPool2dForward(x, 64, c, h, h, 2, 2, 2, 2, 0, 0, y, idx);
            var dx = new float[x.Length];
            double Vector() => Time(() => Pool2dKernels.MaxPool2dBackward(y, idx, 64, c, h, h, 2, 2, 2, 2, 0, 0, dx));
            double Scalar() => Time(() => Pool2dCore<float>.MaxBackward2x2Scalar(g, y, idx, dx));
            var warm = System.Diagnostics.Stopwatch.StartNew();
            while (warm.ElapsedMilliseconds < 1000) { Vector(); Scalar(); }
            var ratios = new List<double>();
            double sv = 0, ss = 0;
            for (int i = 0; i < rounds; i++)
            {
                bool vectorFirst = i % 2 == 0;
                double a = vectorFirst ? Vector() : Scalar(), b = vectorFirst ? Scalar() : Vector();
                double v = vectorFirst ? a : b, s = vectorFirst ? b : a;
                ratios.Add(v / s);
                (sv, ss) = (sv + v, ss + s);
            }
            ratios.Sort();
            Console.WriteLine($"64x{c}x{h}x{h}: vector {sv / rounds:F3} ms, scalar {ss / rounds:F3} ms, median ratio {ratios[rounds / 2]:F3} (q25 {ratios[rounds / 4]:F3}, q75 {ratios[3 * rounds / 4]:F3})");
        }
    }

    private static double Time(Action a)
    {
        double t = ThreadCpu.NowMs();
        a();
        return ThreadCpu.NowMs() - t;
    }
}
