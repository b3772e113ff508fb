using GradFlow.NN;
using GradFlow.Optim;

namespace GradFlow.Diagnostics;

/// <summary>
/// Sharpness against the optimiser's stability threshold (<see cref="Stability"/>), measured every
/// <see cref="Every"/> steps on a fixed batch. Each probe starts Lanczos from the previous probe's eigenvectors, so
/// a slowly turning top direction costs a few products. The probe takes no parameter's <c>Grad</c>, and puts the
/// module's buffers (batch-norm running statistics) back as they were, so the loss should run BatchNorm in training
/// mode: the Hessian of the loss the optimiser descends (docs/CURVATURE.md). The default budget is
/// <see cref="DefaultTolerance"/> (lambda_max within 1%) and at most <see cref="DefaultMaxIterations"/> products for
/// one Lanczos run on the operator the threshold judges (for Adam and RMSprop the preconditioned one; the plain
/// sharpness is a second run, with <c>plainSharpness</c>); docs/CURVATURE.md gives the counts and what they cost.
/// <code>
/// var probe = new SharpnessProbe(() =&gt; Functional.CrossEntropy(model.Call(xFixed), yFixed), model, optimizer, every: 100);
/// for (long step = 1; ...; step++) { ...; optimizer.Step(); if (probe.MaybeRun(step) is { } r) Console.WriteLine(r.Ratio); }
/// </code>
/// </summary>
public sealed class SharpnessProbe
{
    private readonly Func<Tensor> _loss;
    private readonly Module _model;
    private readonly Optimizer _optimizer;
    private double[]? _previous, _previousPlain;
    private VectorPool? _pool;

    /// <summary>
    /// The probe's default Lanczos tolerance: a residual of at most 1% of lambda_max (of the top Ritz value itself, not of
    /// the largest |eigenvalue|, so a large negative end does not loosen it). The Ritz value is a lower bound
    /// of lambda_max and within the residual of it, so the ratio reads at most 1% low and a verdict against the
    /// threshold can only be wrong for a reading in [0.99, 1), the width of the edge of stability's own oscillation;
    /// in practice the error is about the residual squared over the gap (below 1e-3 on the bench models). Looser is
    /// not safe: a warm start can sit on the previous top direction whose eigenvalue has fallen, with a residual of 4%
    /// and an error of 16% (the cnn of docs/CURVATURE.md).
    /// </summary>
    public const double DefaultTolerance = 1e-2;

    /// <summary>The probe's default cap on Lanczos steps (products) per run.</summary>
    public const int DefaultMaxIterations = 30;

    /// <summary>
    /// Lanczos vectors the probe keeps between runs by default, besides the previous eigenvector: enough for a warm probe
    /// of four products (two, with Adam's or RMSprop's scale and its scratch vector) to touch no fresh memory
    /// (docs/CURVATURE.md, "What a probe costs").
    /// </summary>
    public const int DefaultKeptVectors = 6;

    /// <summary>Creates a probe.</summary>
    /// <param name="loss">The loss on a fixed batch (the same batch every time, so probes compare).</param>
    /// <param name="model">The module whose trainable parameters are probed.</param>
    /// <param name="optimizer">The optimiser training them.</param>
    /// <param name="every">Probe every this many steps.</param>
    /// <param name="tolerance">Lanczos's tolerance: the top Ritz pair's residual relative to the top Ritz value.</param>
    /// <param name="maxIterations">Lanczos steps at most per run (memory: one parameter-sized vector of doubles a step).</param>
    /// <param name="plainSharpness">For Adam and RMSprop, also measure the plain sharpness (a second Lanczos run, about twice the products).</param>
    /// <param name="keptVectors">
    /// Lanczos vectors (one parameter-sized array of doubles each) kept from one probe to the next, so a probe writes into
    /// memory already touched instead of fresh pages, whose first touch costs a page fault per 4 KB; 0 frees them after
    /// each probe. The probe also keeps the previous eigenvector, its warm start.
    /// </param>
    public SharpnessProbe(Func<Tensor> loss, Module model, Optimizer optimizer, int every = 100, double tolerance = DefaultTolerance, int maxIterations = DefaultMaxIterations,
        bool plainSharpness = false, int keptVectors = DefaultKeptVectors)
    {
        const string Name = nameof(SharpnessProbe);
        Guard.NotNull(loss, Name, nameof(loss));
        Guard.NotNull(model, Name, nameof(model));
        Guard.NotNull(optimizer, Name, nameof(optimizer));
        if (every < 1) Guard.ThrowArg(Name, nameof(every), $"must be at least 1, got {every}.");
        if (!(tolerance >= 0) || !double.IsFinite(tolerance)) Guard.ThrowArg(Name, nameof(tolerance), $"must be non-negative and finite, got {tolerance}.");
        if (maxIterations < 1) Guard.ThrowArg(Name, nameof(maxIterations), $"must be at least 1, got {maxIterations}.");
        if (keptVectors < 0) Guard.ThrowArg(Name, nameof(keptVectors), $"must be non-negative, got {keptVectors}.");
        (_loss, _model, _optimizer, Every, Tolerance, MaxIterations, PlainSharpness, KeptVectors) =
            (loss, model, optimizer, every, tolerance, maxIterations, plainSharpness, keptVectors);
    }

    /// <summary>The probing period in steps.</summary>
    public int Every { get; }

    /// <summary>Lanczos's relative tolerance.</summary>
    public double Tolerance { get; }

    /// <summary>Lanczos steps at most per run.</summary>
    public int MaxIterations { get; }

    /// <summary>Whether an adaptive optimiser's probe also measures the plain sharpness (a second Lanczos run).</summary>
    public bool PlainSharpness { get; }

    /// <summary>Lanczos vectors kept from one probe to the next (besides the previous eigenvector).</summary>
    public int KeptVectors { get; }

    /// <summary>The latest result, or null before the first probe.</summary>
    public SharpnessProbeResult? Last { get; private set; }

    /// <summary>Whether <paramref name="step"/> is a probing step (a multiple of <see cref="Every"/>).</summary>
    public bool IsDue(long step) => step % Every == 0;

    /// <summary>Runs the probe if <paramref name="step"/> is due, else returns null.</summary>
    public SharpnessProbeResult? MaybeRun(long step) => IsDue(step) ? Run(step) : null;

    /// <summary>Runs the probe now.</summary>
    public SharpnessProbeResult Run(long step)
    {
        var buffers = _model.NamedBuffers().Select(b => (b.Buffer, Saved: b.Buffer.Detach().Clone())).ToArray();
        try
        {
            using var op = CurvatureOperator.Hessian(_loss, _model);
            var start = _previous is { } p && p.Length == op.Dimension ? p : null;
            var plainStart = _previousPlain is { } q && q.Length == op.Dimension ? q : null;
            if (_pool is null || _pool.Length != op.Dimension) _pool = new VectorPool(op.Dimension, KeptVectors);
            var result = Stability.Measure(op, _optimizer, step, Tolerance, MaxIterations, start, plainStart, seed: 0, PlainSharpness, out var vector, out var plainVector, _pool);
            // The previous eigenvectors were copied into the runs' first basis vectors; their arrays go back to the pool.
            if (_previous is { } old) _pool.Return(old);
            if (_previousPlain is { } oldPlain) _pool.Return(oldPlain);
            (_previous, _previousPlain) = (vector, plainVector);
            return Last = result;
        }
        finally
        {
            using (Autograd.NoGrad())
                foreach (var (buffer, saved) in buffers) buffer.CopyFrom(saved);
        }
    }
}
