using System.Globalization;
using GradFlow.Bench.Cases;
using GradFlow.Diagnostics;
using GradFlow.Optim;

namespace GradFlow.Bench;

/// <summary>
/// Counts, not times: how many products a warm sharpness probe needs under candidate stopping rules and start vectors,
/// and how far each stop is from lambda_max. For each bench model with SGD (momentum 0.9) and Adam, each seed, it
/// trains 400 steps and at steps 100-400 records the top Ritz value, the second one and the top pair's residual after
/// every product, for a Rayleigh-Ritz run on the probe's operator (H, or P^-1/2 H P^-1/2 for Adam) from: a random
/// vector (the reference, run to a residual of 1e-6), the previous probe's eigenvector ("top", also run to 1e-6), that
/// vector plus 0.1 or 0.3 of a random unit vector ("blend"), and the block of the previous top two ("block2", two
/// products a block step). Each rule is applied to each trajectory afterwards, so every rule sees the same runs.
/// lambda_max is the larger of the two converged runs (Ritz values are lower bounds). One JSON line per run and per
/// rule; docs/CURVATURE.md and bench/RESULTS.md quote them. Run with <c>GradFlow.Bench --probe-rules [mlp|cnn]</c>.
/// </summary>
internal static class ProbeRules
{
    private const int Every = 100, Probes = 4, ReferenceProducts = 40, VariantProducts = 12;

    private sealed record Trajectory(List<double> Theta, List<double> Theta2, List<double> Rho, List<double> Scale);

    // name, stop (1-based product count, 0: never) from a trajectory; tolerances are relative to the top Ritz value, as
    // the probe's (Spectrum.TopEigenvalue). "gap": also the error estimate rho^2 / (theta_1 - theta_2) within a bound.
    private static readonly (string Name, Func<Trajectory, int> Stop)[] s_rules =
    [
        ("residual_1e-2", t => First(t, k => t.Rho[k] <= 1e-2 * t.Scale[k])),
        ("residual_1.5e-2", t => First(t, k => t.Rho[k] <= 1.5e-2 * t.Scale[k])),
        ("residual_2e-2", t => First(t, k => t.Rho[k] <= 2e-2 * t.Scale[k])),
        ("residual_3e-2", t => First(t, k => t.Rho[k] <= 3e-2 * t.Scale[k])),
        ("residual_5e-2", t => First(t, k => t.Rho[k] <= 5e-2 * t.Scale[k])),
        ("residual_2e-2_gap_3e-3", t => First(t, k => k > 0 && Gap(t, k, 3e-3) && t.Rho[k] <= 2e-2 * t.Scale[k])),
        ("residual_5e-2_gap_3e-3", t => First(t, k => k > 0 && Gap(t, k, 3e-3) && t.Rho[k] <= 5e-2 * t.Scale[k])),
        ("residual_1e-1_gap_1e-2", t => First(t, k => k > 0 && Gap(t, k, 1e-2) && t.Rho[k] <= 1e-1 * t.Scale[k])),
        ("agree_1e-3", t => First(t, k => k > 0 && Math.Abs(t.Theta[k] - t.Theta[k - 1]) <= 1e-3 * t.Scale[k])),
    ];

    private static bool Gap(Trajectory t, int k, double tol)
    {
        double gap = t.Theta[k] - t.Theta2[k];
        return gap > 0 && t.Rho[k] * t.Rho[k] / gap <= tol * t.Scale[k];
    }

    private static int First(Trajectory t, Func<int, bool> stop)
    {
        for (int k = 0; k < t.Theta.Count; k++)
            if (stop(k)) return k + 1;
        return 0;
    }

    public static void Run(IReadOnlyList<string> models)
    {
        var configs = new List<(string Name, Func<int, TrainingCase> Make)>();
        if (models.Count == 0 || models.Contains("mlp"))
        {
            configs.Add(("mlp_sgd", s => new MlpCase(s)));
            configs.Add(("mlp_adam", s => new MlpCase(s, p => new Adam(p, lr: 1e-3))));
        }
        if (models.Count == 0 || models.Contains("cnn"))
        {
            configs.Add(("cnn_adam", s => new CnnCase(s)));
            configs.Add(("cnn_sgd", s => new CnnCase(s, p => new SGD(p, lr: 0.01, momentum: 0.9))));
        }
        var stops = new List<(string Config, int Seed, string Start, string Rule, int Products, double Error)>();
        foreach (var (name, make) in configs)
            foreach (int seed in new[] { 0, 1 })
                Once(name, seed, make(seed), stops);
        // Per start and rule: the bench's own optimiser at seed 0 (mlp SGD, cnn Adam), the runs the earlier rule was
        // chosen on, apart from the others.
        foreach (var group in stops.GroupBy(x => (x.Start, x.Rule, Tuning: x.Seed == 0 && x.Config is "mlp_sgd" or "cnn_adam")))
        {
            var g = group.ToList();
            var errors = g.Where(x => x.Products > 0).Select(x => x.Error).DefaultIfEmpty(double.NaN).ToList();
            Console.WriteLine($"{{\"measure\":\"summary\",\"start\":\"{group.Key.Start}\",\"rule\":\"{group.Key.Rule}\",\"runs\":\"{(group.Key.Tuning ? "bench_seed0" : "others")}\"," +
                $"\"probes\":{g.Count},\"never\":{g.Count(x => x.Products == 0)},\"mean_products\":{F(g.Average(x => (double)x.Products))},\"max_relative_error\":{F(errors.Max())}," +
                $"\"over_1e-2\":{errors.Count(e => e > 1e-2)},\"products\":[{string.Join(",", g.Select(x => x.Products))}]}}");
        }
    }

    private static void Once(string config, int seed, TrainingCase c, List<(string, int, string, string, int, double)> stops)
    {
        c.Setup();
        double[]? top = null, second = null;
        for (int k = 1; k <= Probes; k++)
        {
            long step = k * Every;
            for (int i = 0; i < Every; i++) c.Step();
            using var raw = CurvatureOperator.Hessian(c.BatchLoss, c.BuiltModel);
            var op = Judged(raw, c.BuiltOptimizer);
            var reference = Krylov(op, [Random(op.Dimension, 1000 + (ulong)step, 1)], ReferenceProducts, 1e-6, out var refVectors);
            var runs = new List<(string Start, Trajectory T)> { ("random", reference) };
            if (top is not null)
            {
                var warm = Krylov(op, [top], ReferenceProducts, 1e-6, out var warmVectors);
                runs.Add(("top", warm));
                foreach (double eps in new[] { 0.1, 0.3 })
                {
                    var r = Random(op.Dimension, 2000 + (ulong)step, eps);
                    for (int i = 0; i < r.Length; i++) r[i] += top[i];
                    runs.Add(($"blend_{F(eps)}", Krylov(op, [r], VariantProducts, 0, out _)));
                }
                runs.Add(("block2", Krylov(op, [top, second!], VariantProducts, 0, out _)));
                (top, second) = (warmVectors[0], warmVectors[1]);
            }
            else (top, second) = (refVectors[0], refVectors[1]);
            double lambda = Math.Max(reference.Theta[^1], runs.Count > 1 ? runs[1].T.Theta[^1] : double.NegativeInfinity);
            foreach (var (start, t) in runs)
            {
                Print(config, seed, step, "run", $"\"start\":\"{start}\",\"lambda_max\":{F(lambda)},\"final\":{F(t.Theta[^1])},\"theta\":[{Join(t.Theta)}]," +
                    $"\"theta2\":[{Join(t.Theta2)}],\"rho\":[{Join(t.Rho)}]");
                if (start == "random") continue;
                foreach (var (rule, stop) in s_rules)
                {
                    int at = stop(t);
                    double error = at == 0 ? double.NaN : (lambda - t.Theta[at - 1]) / lambda;
                    Print(config, seed, step, "rule", $"\"start\":\"{start}\",\"rule\":\"{rule}\",\"products\":{at},\"relative_error\":{F(error)}");
                    stops.Add((config, seed, start, rule, at, error));
                }
            }
        }
    }

    // The operator the probe judges: H for SGD, S H S with S = P^-1/2 for Adam (as Stability builds it).
    private static CurvatureOperator Judged(CurvatureOperator op, Optimizer optimizer)
    {
        if (optimizer is not Adam adam) return op;
        var s = new List<double>();
        foreach (var p in op.Parameters)
        {
            var state = adam.GetState(p)!;
            double c1 = 1 - Math.Pow(0.9, state.Step), c2 = 1 - Math.Pow(0.999, state.Step);
            foreach (var v in state.Buffer("exp_avg_sq").ToDoubleArray()) s.Add(1 / Math.Sqrt(c1 * (Math.Sqrt(v / c2) + 1e-8)));
        }
        return op.Scaled(s);
    }

    private static double[] Random(int n, ulong seed, double norm)
    {
        var gen = new Generator(seed);
        var v = new double[n];
        for (int i = 0; i < n; i++) v[i] = gen.NextNormal();
        double s = norm / GradFlow.Diagnostics.Lanczos.Norm(v);
        for (int i = 0; i < n; i++) v[i] *= s;
        return v;
    }

    // Block Krylov with Rayleigh-Ritz on every product: the basis grows by the newest block's products orthogonalised
    // against it (one start vector: Lanczos). The residual of the top Ritz pair is computed, not estimated.
    private static Trajectory Krylov(CurvatureOperator op, double[][] starts, int maxProducts, double stopResidual, out double[][] vectors)
    {
        var t = new Trajectory([], [], [], []);
        var q = new List<double[]>();
        var w = new List<double[]>();
        var pending = new Queue<double[]>();
        foreach (var s in starts) Enqueue(pending, q, s);
        int block = pending.Count;
        double[] values = [];
        double[,] y = new double[0, 0];
        // Q^T W (symmetrised) is the projected operator; W^T W gives the residual without a pass over the vectors:
        // ||W y - theta Q y||^2 = y^T W^T W y - theta^2 for a unit Ritz vector of an orthonormal Q.
        var g = new double[maxProducts, maxProducts];
        var ww = new double[maxProducts, maxProducts];
        while (pending.Count > 0 && w.Count < maxProducts)
        {
            var v = pending.Dequeue();
            q.Add(v);
            w.Add(op.Apply(v));
            int m = q.Count, last = m - 1;
            for (int i = 0; i < m; i++)
            {
                g[i, last] = g[last, i] = 0.5 * (GradFlow.Diagnostics.Lanczos.Dot(q[i], w[last]) + GradFlow.Diagnostics.Lanczos.Dot(q[last], w[i]));
                ww[i, last] = ww[last, i] = GradFlow.Diagnostics.Lanczos.Dot(w[i], w[last]);
            }
            var gm = new double[m, m];
            for (int i = 0; i < m; i++)
                for (int j = 0; j < m; j++) gm[i, j] = g[i, j];
            (values, y) = SymmetricEigen.Jacobi(gm);
            double yy = 0;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < m; j++) yy += y[i, m - 1] * ww[i, j] * y[j, m - 1];
            double rho = Math.Sqrt(Math.Max(0, yy - (values[^1] * values[^1])));
            t.Theta.Add(values[^1]);
            t.Theta2.Add(m > 1 ? values[^2] : double.NaN);
            t.Rho.Add(rho);
            t.Scale.Add(values[^1] > 0 ? values[^1] : Math.Max(Math.Abs(values[0]), Math.Abs(values[^1])));
            if (t.Rho[^1] <= stopResidual * t.Scale[^1]) break;
            if (pending.Count == 0)
                for (int j = Math.Max(0, w.Count - block); j < w.Count; j++) Enqueue(pending, q, w[j]);
        }
        vectors = new double[2][];
        for (int c = 0; c < 2; c++)
        {
            int col = Math.Max(0, values.Length - 1 - c);
            var x = new double[op.Dimension];
            for (int j = 0; j < q.Count; j++) GradFlow.Diagnostics.Lanczos.Axpy(y[j, col], q[j], x);
            double n = GradFlow.Diagnostics.Lanczos.Norm(x);
            for (int i = 0; i < x.Length; i++) x[i] /= n;
            vectors[c] = x;
        }
        return t;
    }

    // Orthogonalised twice against the basis and the vectors already pending, then normalised; dropped if it was in their span.
    private static void Enqueue(Queue<double[]> pending, List<double[]> basis, double[] v)
    {
        var x = (double[])v.Clone();
        double before = GradFlow.Diagnostics.Lanczos.Norm(x);
        for (int pass = 0; pass < 2; pass++)
            foreach (var b in basis.Concat(pending)) GradFlow.Diagnostics.Lanczos.Axpy(-GradFlow.Diagnostics.Lanczos.Dot(b, x), b, x);
        double n = GradFlow.Diagnostics.Lanczos.Norm(x);
        if (!(n > 1e-10 * before)) return;
        for (int i = 0; i < x.Length; i++) x[i] /= n;
        pending.Enqueue(x);
    }

    private static string Join(List<double> xs) => string.Join(",", xs.Select(F));

    private static string F(double x) => double.IsNaN(x) ? "null" : x.ToString("G6", CultureInfo.InvariantCulture);

    private static void Print(string config, int seed, long step, string what, string fields) =>
        Console.WriteLine($"{{\"config\":\"{config}\",\"seed\":{seed},\"step\":{step},\"measure\":\"{what}\",{fields}}}");
}
