namespace GradFlow.NN;

public static partial class Functional
{
    /// <summary>Mean squared error (x - y)^2.</summary>
    public static Tensor MseLoss(Tensor input, Tensor target, Reduction reduction = Reduction.Mean)
    {
        var d = SameShape(input, target, nameof(MseLoss));
        return Reduce(d * d, reduction, nameof(MseLoss));
    }

    /// <summary>Mean absolute error |x - y|.</summary>
    public static Tensor L1Loss(Tensor input, Tensor target, Reduction reduction = Reduction.Mean) =>
        Reduce(SameShape(input, target, nameof(L1Loss)).Abs(), reduction, nameof(L1Loss));

    /// <summary>0.5 d^2 / beta where |d| &lt; beta, else |d| - 0.5 beta (torch's smooth_l1_loss; beta 0 is L1).</summary>
    public static Tensor SmoothL1Loss(Tensor input, Tensor target, Reduction reduction = Reduction.Mean, double beta = 1.0)
    {
        if (beta < 0) Guard.ThrowArg(nameof(SmoothL1Loss), nameof(beta), $"beta must be non-negative, got {beta}.");
        var d = SameShape(input, target, nameof(SmoothL1Loss)).Abs();
        if (beta == 0) return Reduce(d, reduction, nameof(SmoothL1Loss));
        return Reduce(Tensor.Where(d.Lt(beta), d * d * (0.5 / beta), d - 0.5 * beta), reduction, nameof(SmoothL1Loss));
    }

    /// <summary>0.5 d^2 where |d| &lt; delta, else delta (|d| - 0.5 delta) (torch's huber_loss).</summary>
    public static Tensor HuberLoss(Tensor input, Tensor target, Reduction reduction = Reduction.Mean, double delta = 1.0)
    {
        if (delta <= 0) Guard.ThrowArg(nameof(HuberLoss), nameof(delta), $"delta must be positive, got {delta}.");
        var d = SameShape(input, target, nameof(HuberLoss)).Abs();
        return Reduce(Tensor.Where(d.Lt(delta), d * d * 0.5, (d - 0.5 * delta) * delta), reduction, nameof(HuberLoss));
    }

    /// <summary>
    /// -w y log x - w (1 - y) log(1 - x) for probabilities x; each log is clamped at -100 as in PyTorch, so
    /// x = 0 or 1 gives a finite loss.
    /// </summary>
    public static Tensor BinaryCrossEntropy(Tensor input, Tensor target, Tensor? weight = null, Reduction reduction = Reduction.Mean)
    {
        SameShape(input, target, nameof(BinaryCrossEntropy));
        var v = input.ToDoubleArray();
        if (Array.Exists(v, x => !(x >= 0 && x <= 1)))
            Guard.ThrowArg(nameof(BinaryCrossEntropy), nameof(input), $"input of shape {Guard.Shape(input)} must hold probabilities in [0, 1]; use BinaryCrossEntropyWithLogits for logits.");
        var loss = -(target * input.Log().Clamp(min: -100) + (1.0 - target) * (1.0 - input).Log().Clamp(min: -100));
        return Reduce(weight is null ? loss : loss * weight, reduction, nameof(BinaryCrossEntropy));
    }

    /// <summary>
    /// Sigmoid plus binary cross entropy in one stable formula: (1 - y) x + (1 + (p - 1) y) softplus(-x), with
    /// <paramref name="posWeight"/> p weighting the positive class (per class, broadcast over the last dim).
    /// </summary>
    public static Tensor BinaryCrossEntropyWithLogits(Tensor input, Tensor target, Tensor? weight = null, Tensor? posWeight = null,
        Reduction reduction = Reduction.Mean)
    {
        SameShape(input, target, nameof(BinaryCrossEntropyWithLogits));
        var softplusNeg = input.Neg().Softplus();
        var logWeight = posWeight is null ? null : (posWeight - 1.0) * target + 1.0;
        var loss = (1.0 - target) * input + (logWeight is null ? softplusNeg : logWeight * softplusNeg);
        return Reduce(weight is null ? loss : loss * weight, reduction, nameof(BinaryCrossEntropyWithLogits));
    }

    /// <summary>
    /// KL(target || input) pointwise with <paramref name="input"/> as log-probabilities: target (log target - input),
    /// 0 where target is 0; with <paramref name="logTarget"/> the target is given as log-probabilities too.
    /// Use <see cref="Reduction.BatchMean"/> for the true KL divergence per sample.
    /// </summary>
    public static Tensor KLDiv(Tensor input, Tensor target, Reduction reduction = Reduction.Mean, bool logTarget = false)
    {
        SameShape(input, target, nameof(KLDiv));
        Tensor loss;
        if (logTarget) loss = target.Exp() * (target - input);
        else
        {
            var positive = target.Gt(0.0);
            var safeLog = Tensor.Where(positive, target, Tensor.OnesLike(target)).Log();
            loss = Tensor.Where(positive, target * safeLog, Tensor.ZerosLike(target)) - target * input;
        }
        if (reduction == Reduction.BatchMean)
            return input.Rank == 0 ? loss.Sum() : loss.Sum() / input.Size(0);
        return Reduce(loss, reduction, nameof(KLDiv));
    }

    private static Tensor SameShape(Tensor input, Tensor target, string op)
    {
        Guard.NotNull(input, op, nameof(input));
        Guard.NotNull(target, op, nameof(target));
        if (!Shapes.Equal(input.Shape, target.Shape))
            Guard.ThrowArg(op, nameof(target), $"target of shape {Guard.Shape(target)} must have the input's shape {Guard.Shape(input)}.");
        Guard.SameDType(input, target, op);
        return input - target;
    }

    private static Tensor Reduce(Tensor loss, Reduction reduction, string op) => reduction switch
    {
        Reduction.None => loss,
        Reduction.Sum => loss.Sum(),
        Reduction.Mean => loss.Mean(),
        _ => throw new ArgumentException($"{op}: reduction {reduction} is only valid for KLDiv.", nameof(reduction)),
    };
}
