using System.Globalization;
using GradFlow.Bench.Cases;
using GradFlow.Diagnostics;

namespace GradFlow.Bench;

/// <summary>
/// Counts, not times: how many Hessian-vector products Lanczos and power iteration need to bring lambda_max within
/// 1% and 0.1% of its converged value on the bench models, where the default stopping rules (Spectrum's 1e-3 and
/// SharpnessProbe's 1e-2 residual) stop, and what a probe every 100 steps spends (cold at step 100, warm-started at
/// steps 200-500), with its cost in training steps from the idle-machine HVP/step ratios of bench/RESULTS.md; for Adam
/// also the probe with the plain sharpness (the old default), and the probe on half and a quarter of the batch. One
/// JSON line per measurement; docs/CURVATURE.md quotes them. Run with <c>GradFlow.Bench --curvature-counts</c>.
/// </summary>
internal static class CurvatureCounts
{
    private const int ReferenceSteps = 40; // Lanczos steps for the reference value (or until its residual is 1e-7 relative)
    private const int PowerSteps = 100;    // PyHessian's budget
    private const int Every = 100, Probes = 5;

    // Idle-machine times in training steps, 1 thread (bench/RESULTS.md, "After the fourth session's merges"): one full
    // product (the forward, the gradient with createGraph and the double backward) and one more on the kept graph.
    private static (double Full, double Kept) Ratios(string model) => model == "mlp" ? (3.08, 1.87) : (3.04, 1.86);

    // The products' goal (branch hvpfast): a full product 2.7 steps, a kept one 1.7, on both models.
    private static readonly (double Full, double Kept) s_goal = (2.7, 1.7);

    /// <summary>A probe of K products costs one full product and K - 1 kept ones; at batch fraction f, f times that (the work is linear in the batch).</summary>
    internal static double ProbeSteps(string model, long products, double batchFraction = 1) => ProbeSteps(Ratios(model), products, batchFraction);

    private static double ProbeSteps((double Full, double Kept) ratios, long products, double batchFraction = 1) =>
        products == 0 ? 0 : batchFraction * (ratios.Full + (ratios.Kept * (products - 1)));

    public static void Run()
    {
        foreach (var c in new TrainingCase[] { new MlpCase(), new CnnCase() })
        {
            c.Setup();
            for (int i = 0; i < Every; i++) c.Step();
            var probe = new SharpnessProbe(c.BatchLoss, c.BuiltModel, c.BuiltOptimizer, Every);
            var plain = c.BuiltOptimizer is GradFlow.Optim.Adam ? new SharpnessProbe(c.BatchLoss, c.BuiltModel, c.BuiltOptimizer, Every, plainSharpness: true) : null;
            double[] previous;
            using (var op = CurvatureOperator.Hessian(c.BatchLoss, c.BuiltModel))
            {
                previous = Lanczos(c.Name, "cold", op, StartVector(op.Dimension));
                Power(c.Name, op);
            }
            var warm = new List<long>();
            var warmPlain = new List<long>();
            for (int k = 1; k <= Probes; k++)
            {
                long step = k * Every;
                if (k > 1)
                {
                    for (int i = 0; i < Every; i++) c.Step();
                    if (k == 2)
                        using (var op = CurvatureOperator.Hessian(c.BatchLoss, c.BuiltModel))
                            Lanczos(c.Name, "warm_after_100_steps", op, previous);
                }
                var r = Probe(c.Name, "sharpness_probe", probe.Run(step), 1);
                if (k > 1) warm.Add(r.HvpCount);
                if (plain is not null)
                {
                    var rp = Probe(c.Name, "sharpness_probe_with_plain", plain.Run(step), 1);
                    if (k > 1) warmPlain.Add(rp.HvpCount);
                }
            }
            Budget(c.Name, "sharpness_probe", warm);
            if (plain is not null) Budget(c.Name, "sharpness_probe_with_plain", warmPlain);
            SubBatches(c);
        }
    }

    // The products of the warm probes (steps 200-500), their mean and largest cost per 100 training steps.
    private static void Budget(string model, string what, List<long> products) =>
        Print(model, what + "_budget", $"\"warm_probes\":{products.Count},\"products\":[{string.Join(",", products)}],\"mean_products\":{F(products.Average())}," +
            $"\"mean_percent_of_{Every}_steps\":{F(products.Average(p => ProbeSteps(model, p)) * 100 / Every)},\"max_percent_of_{Every}_steps\":{F(products.Max(p => ProbeSteps(model, p)) * 100 / Every)}," +
            $"\"mean_percent_at_goal_ratios\":{F(products.Average(p => ProbeSteps(s_goal, p)) * 100 / Every)},\"max_percent_at_goal_ratios\":{F(products.Max(p => ProbeSteps(s_goal, p)) * 100 / Every)}");

    // The same probe on the first half and quarter of the batch: a different Hessian (the sub-batch's), at a fraction of the cost.
    private static void SubBatches(TrainingCase c)
    {
        long step = Probes * Every;
        var full = new SharpnessProbe(c.BatchLoss, c.BuiltModel, c.BuiltOptimizer, Every, tolerance: 1e-6, maxIterations: ReferenceSteps).Run(step);
        double reference = full.PreconditionedSharpness ?? full.Sharpness!.Value;
        foreach (int divisor in new[] { 2, 4 })
        {
            int examples = c.BatchSize / divisor;
            var sub = new SharpnessProbe(() => c.BatchLoss(examples), c.BuiltModel, c.BuiltOptimizer, Every, tolerance: 1e-6, maxIterations: ReferenceSteps).Run(step);
            double value = sub.PreconditionedSharpness ?? sub.Sharpness!.Value;
            Print(c.Name, "sub_batch", $"\"step\":{step},\"examples\":{examples},\"of\":{c.BatchSize},\"sharpness\":{F(value)},\"full_batch\":{F(reference)}," +
                $"\"relative_difference\":{F((value - reference) / reference)},\"ratio\":{F(sub.Ratio!.Value)},\"full_batch_ratio\":{F(full.Ratio!.Value)}");
        }
    }

    private static SharpnessProbeResult Probe(string model, string what, SharpnessProbeResult r, double batchFraction)
    {
        double steps = ProbeSteps(model, r.HvpCount, batchFraction);
        Print(model, what, $"\"step\":{r.Step},\"optimizer\":\"{r.Optimizer}\",\"sharpness\":{(r.Sharpness is { } s ? F(s) : "null")}," +
            $"\"preconditioned\":{(r.PreconditionedSharpness is { } p ? F(p) : "null")},\"ratio\":{F(r.Ratio!.Value)},\"hvps\":{r.HvpCount},\"converged\":{(r.Converged ? "true" : "false")}," +
            $"\"training_steps\":{F(steps)},\"percent_of_{Every}_steps\":{F(steps * 100 / Every)}");
        return r;
    }

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
