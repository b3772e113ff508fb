using GradFlow.Optim;

namespace GradFlow.Diagnostics;

/// <summary>
/// One measurement of the edge of stability: the sharpness (largest Hessian eigenvalue; for Adam and RMSprop the
/// preconditioned one) against the largest value the optimiser's update is stable for on a quadratic. Cohen et al.
/// (2021, 2022) find that full-batch training drives the sharpness up to this threshold and then hovers there.
/// </summary>
/// <param name="Step">The training step the probe ran at.</param>
/// <param name="Optimizer">The optimiser's type name ("SGD", "Adam", ...).</param>
/// <param name="LearningRate">The learning rate in force.</param>
/// <param name="Loss">The loss on the probe's batch.</param>
/// <param name="Sharpness">lambda_max of the loss Hessian (plus L2 weight decay, which the update adds to it); null for Adam and RMSprop unless the plain sharpness was asked for (a second Lanczos run).</param>
/// <param name="PreconditionedSharpness">lambda_max(P^-1 (H + wd I)) for an adaptive optimiser (P its diagonal preconditioner), else null.</param>
/// <param name="StabilityThreshold">The largest (preconditioned) sharpness the update is stable at, or null when GradFlow knows no rule for the optimiser.</param>
/// <param name="Rule">How the threshold was computed ("2/lr", "2(1+momentum)/lr", ...).</param>
/// <param name="Ratio">(Preconditioned) sharpness over the threshold: near 1 at the edge of stability, above 1 unstable; null without a threshold.</param>
/// <param name="HvpCount">Hessian-vector products spent.</param>
/// <param name="Converged">Whether Lanczos met its tolerance.</param>
public sealed record SharpnessProbeResult(long Step, string Optimizer, double LearningRate, double Loss, double? Sharpness, double? PreconditionedSharpness,
    double? StabilityThreshold, string Rule, double? Ratio, long HvpCount, bool Converged);

/// <summary>
/// Sharpness against the stability threshold of an optimiser, read from its hyper-parameters and state (the thresholds
/// are those of the update on a quadratic, h = lr times an eigenvalue, and are checked by simulation in the tests):
/// SGD 2/lr; heavy ball (momentum mu, dampening d) 2(1+mu)/((1-d) lr); Nesterov 2(1+mu)/((1+2 mu) lr); Adam, with
/// P = (1 - beta1^t) diag(sqrt(v_hat) + eps) from its exp_avg_sq, (2 + 2 beta1)/((1 - beta1) lr) on lambda_max(P^-1 H)
/// (Cohen et al. 2022, 38/lr at beta1 = 0.9); RMSprop, with P = diag(sqrt(square_avg) + eps) (centred: minus grad_avg^2),
/// 2(1+mu)/lr. L2 weight decay adds to H; AdamW's decoupled decay, which only shrinks the weights, is left out.
/// </summary>
public static class Stability
{
    /// <summary>Measures sharpness and its threshold for <paramref name="optimizer"/> on an exact-Hessian operator.</summary>
    /// <param name="op">The Hessian at the current weights; its parameters must all be in <paramref name="optimizer"/>, in groups with one set of hyper-parameters.</param>
    /// <param name="optimizer">The optimiser whose step is judged.</param>
    /// <param name="step">The training step, recorded in the result.</param>
    /// <param name="tolerance">Lanczos's relative tolerance: the top Ritz pair's residual at most this times the top Ritz value (the sharpness itself, not the largest |eigenvalue|).</param>
    /// <param name="maxIterations">Lanczos steps at most.</param>
    /// <param name="start">A start vector (the previous probe's eigenvector), or null for a random one.</param>
    /// <param name="seed">Seed of the random start vector.</param>
    /// <param name="plainSharpness">
    /// For Adam and RMSprop, also the plain lambda_max(H + wd I): a second Lanczos run on the same operator, which about
    /// doubles the products. The threshold judges the preconditioned sharpness only, so it is off by default.
    /// </param>
    /// <exception cref="ArgumentException">A parameter is not in the optimiser, or groups differ in hyper-parameters.</exception>
    /// <exception cref="InvalidOperationException">An adaptive optimiser has no state for a parameter yet (probe after its first step).</exception>
    public static SharpnessProbeResult Measure(CurvatureOperator op, Optimizer optimizer, long step = 0, double tolerance = Spectrum.DefaultTolerance,
        int maxIterations = Spectrum.DefaultMaxIterations, IReadOnlyList<double>? start = null, ulong seed = 0, bool plainSharpness = false) =>
        Measure(op, optimizer, step, tolerance, maxIterations, start, null, seed, plainSharpness, out _, out _);

    // plainStart warm-starts the plain sharpness of an adaptive optimiser (a second Lanczos run, when plainSharpness);
    // plainVector is its eigenvector, null when the plain sharpness is the measured one or was not measured. With a pool
    // (the probe's), Lanczos's vectors are rented from it and the eigenvectors are rented ones the caller owns.
    internal static SharpnessProbeResult Measure(CurvatureOperator op, Optimizer optimizer, long step, double tolerance, int maxIterations,
        IReadOnlyList<double>? start, IReadOnlyList<double>? plainStart, ulong seed, bool plainSharpness, out double[] vector, out double[]? plainVector,
        VectorPool? pool = null)
    {
        plainVector = null;
        const string Name = nameof(Stability) + "." + nameof(Measure);
        Guard.NotNull(op, Name, nameof(op));
        Guard.NotNull(optimizer, Name, nameof(optimizer));
        if (op.Kind != CurvatureKind.Hessian || op.Scale is not null)
            Guard.ThrowArg(Name, nameof(op), $"needs the unscaled exact Hessian, got a {op.Kind} operator{(op.Scale is null ? "" : " view")}.");
        var group = CommonGroup(op, optimizer, Name);
        string type = optimizer.GetType().Name;
        double lr = group.Lr, wd = group.WeightDecay;
        if (group.Options.TryGetValue("maximize", out var max) && max != 0)
            Guard.ThrowArg(Name, nameof(optimizer), $"{type} maximises; its stability is that of the negated loss.");
        long before = op.ProductCount;
        double? sharpness = null, preconditioned = null, threshold;
        string rule;
        bool converged;
        switch (optimizer)
        {
            case SGD:
                {
                    double mu = group["momentum"], d = group["dampening"];
                    var top = Spectrum.TopEigenvalue(op.Shifted(wd), tolerance, maxIterations, seed, start, pool);
                    (sharpness, converged, vector) = (top.Values[0], top.Converged, top.Vectors[0]);
                    (threshold, rule) = mu == 0 ? (2 / lr, "2/lr")
                        : group.Flag("nesterov") ? (2 * (1 + mu) / ((1 + 2 * mu) * lr), "2(1+momentum)/((1+2 momentum) lr), Nesterov")
                        : (2 * (1 + mu) / ((1 - d) * lr), d == 0 ? "2(1+momentum)/lr, heavy ball" : "2(1+momentum)/((1-dampening) lr), heavy ball");
                    break;
                }
            case Adam or RMSprop:
                {
                    bool adam = optimizer is Adam;
                    double decay = optimizer is AdamW ? 0 : wd;
                    // The scale and the view's scratch vector are the pool's too (a probe's: no fresh pages per probe).
                    var scale = pool?.Rent() ?? GC.AllocateUninitializedArray<double>(op.Dimension);
                    var scratch = pool?.Rent();
                    try
                    {
                        InversePreconditionerRoot(op, optimizer, group, adam, Name, scale);
                        var top = Spectrum.TopEigenvalue(op.ScaledView(scale, decay, scratch), tolerance, maxIterations, seed, start, pool);
                        (preconditioned, converged, vector) = (top.Values[0], top.Converged, top.Vectors[0]);
                    }
                    finally
                    {
                        if (pool is not null)
                        {
                            pool.Return(scale);
                            pool.Return(scratch!);
                        }
                    }
                    // The plain sharpness only on request: its own Lanczos run (the Rayleigh quotient of H along the
                    // preconditioned direction would not do), and the threshold does not judge it.
                    if (plainSharpness)
                    {
                        var plain = Spectrum.TopEigenvalue(op.Shifted(decay), tolerance, maxIterations, seed, plainStart, pool);
                        (sharpness, converged, plainVector) = (plain.Values[0], converged && plain.Converged, plain.Vectors[0]);
                    }
                    if (adam)
                    {
                        double b1 = group["beta1"];
                        (threshold, rule) = ((2 + 2 * b1) / ((1 - b1) * lr), "(2+2 beta1)/((1-beta1) lr) on lambda_max(P^-1 H)");
                    }
                    else
                    {
                        double mu = group["momentum"];
                        (threshold, rule) = mu == 0 ? (2 / lr, "2/lr on lambda_max(P^-1 H)") : (2 * (1 + mu) / lr, "2(1+momentum)/lr on lambda_max(P^-1 H)");
                    }
                    break;
                }
            default:
                {
                    var top = Spectrum.TopEigenvalue(op.Shifted(wd), tolerance, maxIterations, seed, start, pool);
                    (sharpness, converged, vector) = (top.Values[0], top.Converged, top.Vectors[0]);
                    (threshold, rule) = (null, $"no stability rule for {type}");
                    break;
                }
        }
        double? ratio = threshold is { } t ? (preconditioned ?? sharpness) / t : null;
        return new SharpnessProbeResult(step, type, lr, op.Loss, sharpness, preconditioned, threshold, rule, ratio, op.ProductCount - before, converged);
    }

    private static ParamGroup CommonGroup(CurvatureOperator op, Optimizer optimizer, string name)
    {
        ParamGroup? first = null;
        for (int i = 0; i < op.Parameters.Count; i++)
        {
            var p = op.Parameters[i];
            var group = optimizer.ParamGroups.FirstOrDefault(g => g.Params.Any(q => ReferenceEquals(q, p)));
            if (group is null)
                Guard.ThrowArg(name, nameof(optimizer), $"parameter '{op.ParameterNames[i]}' (shape {Guard.Shape(p)}) is not in the optimiser.");
            if (first is null) first = group;
            else if (!ReferenceEquals(first, group) && !first.Options.OrderBy(o => o.Key).SequenceEqual(group.Options.OrderBy(o => o.Key)))
                Guard.ThrowArg(name, nameof(optimizer), $"parameter '{op.ParameterNames[i]}' is in a group with other hyper-parameters; one stability threshold needs one set (probe each group on its own).");
        }
        return first!;
    }

    // S = P^(-1/2), elementwise, from the optimiser's state for each parameter, written into s (every entry); each
    // parameter's state is widened into its block of s and turned into the scale there, without arrays of its own.
    private static void InversePreconditionerRoot(CurvatureOperator op, Optimizer optimizer, ParamGroup group, bool adam, string name, double[] s)
    {
        int at = 0;
        double eps = group["eps"];
        for (int i = 0; i < op.Parameters.Count; i++)
        {
            var p = op.Parameters[i];
            var state = optimizer.GetState(p);
            if (state is null || state.Step == 0)
                Guard.ThrowInvalid(name, $"{optimizer.GetType().Name} has no state for parameter '{op.ParameterNames[i]}' yet; its preconditioner exists after the first step.");
            var block = s.AsSpan(at, (int)p.NumEl);
            if (adam)
            {
                long t = state.Step;
                double b1 = group["beta1"], b2 = group["beta2"];
                (group.Flag("amsgrad") ? state.Buffer("max_exp_avg_sq") : state.Buffer("exp_avg_sq")).CopyToDoubles(block);
                double c2 = 1 - Math.Pow(b2, t), factor = 1 - Math.Pow(b1, t);
                for (int k = 0; k < block.Length; k++) block[k] = 1 / Math.Sqrt(factor * (Math.Sqrt(block[k] / c2) + eps));
            }
            else
            {
                state.Buffer("square_avg").CopyToDoubles(block);
                if (group.Flag("centered"))
                {
                    var a = state.Buffer("grad_avg").ToDoubleArray();
                    for (int k = 0; k < block.Length; k++) block[k] -= a[k] * a[k];
                }
                for (int k = 0; k < block.Length; k++) block[k] = 1 / Math.Sqrt(Math.Sqrt(Math.Max(block[k], 0)) + eps);
            }
            at += block.Length;
        }
    }
}
