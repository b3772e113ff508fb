using System.Globalization;

namespace GradFlow.NN;

/// <summary>A loss module: two inputs (prediction and target), called through <see cref="Call(Tensor, Tensor)"/> so hooks apply.</summary>
public abstract class Loss(Reduction reduction) : Module
{
    /// <summary>A loss used on its own (not a child of a model, so its path is the root's "") records its ops as "loss", not as the model's root.</summary>
    private protected override string ScopeName => Path.Length == 0 ? "loss" : Path;

    /// <summary>How per-element losses are combined.</summary>
    public Reduction Reduction { get; } = reduction;

    /// <summary>The loss of <paramref name="input"/> against <paramref name="target"/>.</summary>
    public abstract Tensor Forward(Tensor input, Tensor target);

    /// <summary>Runs the loss through the module pipeline (hooks, autograd scope).</summary>
    public Tensor Call(Tensor input, Tensor target)
    {
        Guard.NotNull(input, TypeName, nameof(input));
        Guard.NotNull(target, TypeName, nameof(target));
        if (HasNoHooks)
        {
            using var scope = Autograd.Scope(ScopeName);
            return Forward(input, target);
        }
        return Invoke([input, target], xs => [Forward(xs[0], xs[1])])[0];
    }

    /// <inheritdoc />
    protected override string ExtraRepr() => Reduction == Reduction.Mean ? "" : $"reduction='{Reduction.ToString().ToLowerInvariant()}'";
}

/// <summary>Mean squared error (torch.nn.MSELoss).</summary>
public sealed class MSELoss(Reduction reduction = Reduction.Mean) : Loss(reduction)
{
    /// <inheritdoc />
    public override Tensor Forward(Tensor input, Tensor target) => Functional.MseLoss(input, target, Reduction);
}

/// <summary>Mean absolute error (torch.nn.L1Loss).</summary>
public sealed class L1Loss(Reduction reduction = Reduction.Mean) : Loss(reduction)
{
    /// <inheritdoc />
    public override Tensor Forward(Tensor input, Tensor target) => Functional.L1Loss(input, target, Reduction);
}

/// <summary>Smooth L1 with threshold beta (torch.nn.SmoothL1Loss).</summary>
public sealed class SmoothL1Loss(Reduction reduction = Reduction.Mean, double beta = 1.0) : Loss(reduction)
{
    /// <summary>Where the quadratic part ends.</summary>
    public double Beta { get; } = beta;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input, Tensor target) => Functional.SmoothL1Loss(input, target, Reduction, Beta);
}

/// <summary>Huber loss with threshold delta (torch.nn.HuberLoss).</summary>
public sealed class HuberLoss(Reduction reduction = Reduction.Mean, double delta = 1.0) : Loss(reduction)
{
    /// <summary>Where the quadratic part ends.</summary>
    public double Delta { get; } = delta;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input, Tensor target) => Functional.HuberLoss(input, target, Reduction, Delta);
}

/// <summary>Cross entropy from logits (torch.nn.CrossEntropyLoss); class weights are the buffer "weight".</summary>
public sealed class CrossEntropyLoss : Loss
{
    /// <summary>Creates the loss.</summary>
    public CrossEntropyLoss(Tensor? weight = null, int ignoreIndex = -100, Reduction reduction = Reduction.Mean, double labelSmoothing = 0)
        : base(reduction)
    {
        if (weight is not null) Weight = RegisterBuffer("weight", weight);
        (IgnoreIndex, LabelSmoothing) = (ignoreIndex, labelSmoothing);
    }

    /// <summary>Per-class weights, or null.</summary>
    public Tensor? Weight { get; }

    /// <summary>The target index that counts for nothing.</summary>
    public int IgnoreIndex { get; }

    /// <summary>The weight of the uniform distribution mixed into the target.</summary>
    public double LabelSmoothing { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input, Tensor target) =>
        Functional.CrossEntropy(input, target, Weight, IgnoreIndex, Reduction, LabelSmoothing);
}

/// <summary>Negative log-likelihood of log-probabilities (torch.nn.NLLLoss).</summary>
public sealed class NLLLoss : Loss
{
    /// <summary>Creates the loss.</summary>
    public NLLLoss(Tensor? weight = null, int ignoreIndex = -100, Reduction reduction = Reduction.Mean) : base(reduction)
    {
        if (weight is not null) Weight = RegisterBuffer("weight", weight);
        IgnoreIndex = ignoreIndex;
    }

    /// <summary>Per-class weights, or null.</summary>
    public Tensor? Weight { get; }

    /// <summary>The target index that counts for nothing.</summary>
    public int IgnoreIndex { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input, Tensor target) => Functional.NllLoss(input, target, Weight, IgnoreIndex, Reduction);
}

/// <summary>Binary cross entropy of probabilities (torch.nn.BCELoss).</summary>
public sealed class BCELoss : Loss
{
    /// <summary>Creates the loss with optional per-element weights.</summary>
    public BCELoss(Tensor? weight = null, Reduction reduction = Reduction.Mean) : base(reduction)
    {
        if (weight is not null) Weight = RegisterBuffer("weight", weight);
    }

    /// <summary>Per-element weights, or null.</summary>
    public Tensor? Weight { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input, Tensor target) => Functional.BinaryCrossEntropy(input, target, Weight, Reduction);
}

/// <summary>Sigmoid + binary cross entropy, stably (torch.nn.BCEWithLogitsLoss).</summary>
public sealed class BCEWithLogitsLoss : Loss
{
    /// <summary>Creates the loss with optional per-element weights and per-class positive weights.</summary>
    public BCEWithLogitsLoss(Tensor? weight = null, Tensor? posWeight = null, Reduction reduction = Reduction.Mean) : base(reduction)
    {
        if (weight is not null) Weight = RegisterBuffer("weight", weight);
        if (posWeight is not null) PosWeight = RegisterBuffer("pos_weight", posWeight);
    }

    /// <summary>Per-element weights, or null.</summary>
    public Tensor? Weight { get; }

    /// <summary>Weights of positive examples per class, or null.</summary>
    public Tensor? PosWeight { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input, Tensor target) =>
        Functional.BinaryCrossEntropyWithLogits(input, target, Weight, PosWeight, Reduction);
}

/// <summary>Kullback-Leibler divergence with log-probability inputs (torch.nn.KLDivLoss).</summary>
public sealed class KLDivLoss(Reduction reduction = Reduction.Mean, bool logTarget = false) : Loss(reduction)
{
    /// <summary>True when the target is given as log-probabilities.</summary>
    public bool LogTarget { get; } = logTarget;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input, Tensor target) => Functional.KLDiv(input, target, Reduction, LogTarget);

    /// <inheritdoc />
    protected override string ExtraRepr() => base.ExtraRepr() + (LogTarget ? string.Create(CultureInfo.InvariantCulture, $"log_target=True") : "");
}
