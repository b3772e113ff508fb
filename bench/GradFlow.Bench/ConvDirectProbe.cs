using GradFlow.Kernels;

namespace GradFlow.Bench;

/// <summary>
/// The direct few-taps convolution (<see cref="Conv2dDirect"/>, at this machine's vector width) against im2col + GEMM
/// on first-layer shapes of batch 64 on 28x28 with 32 filters, forward and backward-weight, alternated for the given
/// rounds in the calling thread's CPU time: where the rule's tap limit (<see cref="Conv2dDirect.MaxColRows"/>) should sit.
/// Run with GRADFLOW_NUM_THREADS=1.
/// </summary>
internal static class ConvDirectProbe
{
    public static void Run(int rounds)
    {
        Console.WriteLine($"direct width {Conv2dDirect.Width} lanes; ratios are direct / GEMM (below 1: direct faster)");
        foreach (var (c, k) in new[] { (1, 3), (1, 4), (2, 3), (1, 5) })
        {
            var g = Conv2dGeometry.Create("Conv2d", 64, c, 28, 28, 32, k, k, 1, 1, 0, 0, 1, 1, 1);
            var gen = new Generator(1);
            float[] x = Fill(g.InputLength, gen), w = Fill(g.WeightLength, gen), b = Fill(g.OutC, gen), dy = Fill(g.OutputLength, gen);
            float[] y = new float[g.OutputLength], dw = new float[g.WeightLength], db = new float[g.OutC];
            bool direct = c * k * k <= Conv2dDirect.MaxColRows && Conv2dDirect.Width > 0;
            // Above the tap limit the direct kernel is not reachable through the rule: only the GEMM side is timed then.
            double Forward(bool allow) => Time(() => Conv2dKernels.ForwardCore<float>(x, w, b, y, g, allow));
            double Weight(bool allow) => Time(() => Conv2dKernels.BackwardWeightCore<float>(x, dy, dw, db, g, allow));
            foreach (var (name, f) in new (string, Func<bool, double>)[] { ("forward", Forward), ("weight", Weight) })
            {
                // Warm for a second: the kernels' loops start at tier 0 and reach tier 1 through OSR.
                var warm = System.Diagnostics.Stopwatch.StartNew();
                while (warm.ElapsedMilliseconds < 1000) { f(true); f(false); }
                var ratios = new List<double>();
                double sd = 0, sg = 0;
                for (int i = 0; i < rounds; i++)
                {
                    double d = f(true), gm = f(false);
                    ratios.Add(d / gm);
                    (sd, sg) = (sd + d, sg + gm);
                }
                ratios.Sort();
                Console.WriteLine($"{c}x{k}x{k} ({c * k * k,2} taps) {name,-7}: {(direct ? "direct" : "GEMM (rule)")} {sd / rounds:F3} ms, GEMM {sg / rounds:F3} ms, median ratio {ratios[rounds / 2]:F3}");
            }
        }
    }

    private static float[] Fill(int n, Generator gen)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)gen.NextNormal();
        return a;
    }

    private static double Time(Action a)
    {
        double t = ThreadCpu.NowMs();
        a();
        return ThreadCpu.NowMs() - t;
    }
}
