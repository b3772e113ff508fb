using System.Globalization;
using GradFlow.Bench.Cases;
using GradFlow.Diagnostics;

namespace GradFlow.Bench;

/// <summary>
/// Counts, not times: how many Hessian-vector products Lanczos and power iteration need to bring lambda_max within
/// 1% and 0.1% of its converged value on the bench models, where the default stopping rules (Spectrum's 1e-3 and
/// SharpnessProbe's 1e-2 residual) stop, and what the probe spends cold and warm-started 100 training steps later. One JSON line per measurement; docs/CURVATURE.md
/// quotes them. Run with <c>GradFlow.Bench --curvature-counts</c>.
/// </summary>
internal static class CurvatureCounts
{
    private const int ReferenceSteps = 40; // Lanczos steps for the reference value (or until its residual is 1e-7 relative)
    private const int PowerSteps = 100;    // PyHessian's budget

    public static void Run()
    {
        foreach (var c in new TrainingCase[] { new MlpCase(), new CnnCase() })
        {
            c.Setup();
            for (int i = 0; i < 100; i++) c.Step();
            var probe = new SharpnessProbe(c.BatchLoss, c.BuiltModel, c.BuiltOptimizer, every: 100);
            double[] previous;
            using (var op = CurvatureOperator.Hessian(c.BatchLoss, c.BuiltModel))
            {
                previous = Lanczos(c.Name, "cold", op, StartVector(op.Dimension));
                Power(c.Name, op);
            }
            Probe(c.Name, probe.Run(100)); // cold: random start vectors
            for (int i = 0; i < 100; i++) c.Step();
            using (var op = CurvatureOperator.Hessian(c.BatchLoss, c.BuiltModel))
                Lanczos(c.Name, "warm_after_100_steps", op, previous);
            Probe(c.Name, probe.Run(200)); // warm: started from the step-100 probe's vectors
        }
    }

    private static void Probe(string model, SharpnessProbeResult r) =>
        Print(model, "sharpness_probe", $"\"step\":{r.Step},\"optimizer\":\"{r.Optimizer}\",\"sharpness\":{F(r.Sharpness)}," +
            $"\"preconditioned\":{(r.PreconditionedSharpness is { } p ? F(p) : "null")},\"ratio\":{F(r.Ratio!.Value)},\"hvps\":{r.HvpCount},\"converged\":{(r.Converged ? "true" : "false")}");

    private static double[] StartVector(int n)
    {
        var gen = new Generator(0);
        var v = new double[n];
        for (int i = 0; i < n; i++) v[i] = gen.NextNormal();
        return v;
    }

    // One Lanczos run: the top Ritz value after each step, against the value it converges to.
    private static double[] Lanczos(string model, string start, CurvatureOperator op, double[] startVector)
    {
        var lz = new GradFlow.Diagnostics.Lanczos(op, startVector);
        var top = new List<double>();
        int defaultStop = 0, probeStop = 0;
        double[,] y;
        while (true)
        {
            lz.Step();
            (var values, y) = lz.Ritz();
            top.Add(values[^1]);
            double scale = Math.Max(Math.Abs(values[0]), Math.Abs(values[^1]));
            double residual = lz.Residual(y, values.Length - 1);
            if (defaultStop == 0 && residual <= Spectrum.DefaultTolerance * scale) defaultStop = lz.Steps;
            if (probeStop == 0 && residual <= SharpnessProbe.DefaultTolerance * scale) probeStop = lz.Steps;
            if (residual <= 1e-7 * scale || lz.Exhausted || lz.Steps >= ReferenceSteps) break;
        }
        double reference = top[^1];
        Print(model, "lanczos_" + start, $"\"lambda_max\":{F(reference)},\"reference_steps\":{lz.Steps},\"to_1pct\":{First(top, reference, 1e-2)}," +
            $"\"to_1e-3\":{First(top, reference, 1e-3)},\"default_stop\":{defaultStop},\"probe_stop\":{probeStop},\"top_by_step\":[{string.Join(",", top.Select(F))}]");
        return lz.RitzVector(y, y.GetLength(1) - 1);
    }

    // Power iteration as Spectrum.PowerIteration does it, with the Rayleigh quotient of every step kept.
    private static void Power(string model, CurvatureOperator op)
    {
        var v = StartVector(op.Dimension);
        double n0 = GradFlow.Diagnostics.Lanczos.Norm(v);
        for (int i = 0; i < v.Length; i++) v[i] /= n0;
        var rq = new List<double>();
        int defaultStop = 0;
        for (int it = 1; it <= PowerSteps; it++)
        {
            var w = op.Apply(v);
            double next = GradFlow.Diagnostics.Lanczos.Dot(v, w), norm = GradFlow.Diagnostics.Lanczos.Norm(w);
            if (defaultStop == 0 && it > 1 && Math.Abs(next - rq[^1]) <= Spectrum.DefaultTolerance * Math.Abs(next)) defaultStop = it;
            rq.Add(next);
            for (int i = 0; i < v.Length; i++) v[i] = w[i] / norm;
            if (defaultStop > 0 && it >= defaultStop + 20) break; // well past the stop: enough to see where it heads
        }
        Print(model, "power_cold", $"\"last\":{F(rq[^1])},\"steps\":{rq.Count},\"default_stop\":{defaultStop},\"rq_by_step\":[{string.Join(",", rq.Select(F))}]");
    }

    // The first step count whose value is within tol of the reference and stays there (-1: never).
    private static int First(List<double> values, double reference, double tol)
    {
        int first = -1;
        for (int i = values.Count - 1; i >= 0; i--)
        {
            if (Math.Abs(values[i] - reference) <= tol * Math.Abs(reference)) first = i + 1;
            else break;
        }
        return first;
    }

    private static string F(double x) => x.ToString("G6", CultureInfo.InvariantCulture);

    private static void Print(string model, string what, string fields) =>
        Console.WriteLine($"{{\"model\":\"{model}\",\"measure\":\"{what}\",{fields}}}");
}
