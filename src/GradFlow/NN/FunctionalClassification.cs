namespace GradFlow.NN;

public static partial class Functional
{
    /// <summary>
    /// Cross entropy from logits (torch.nn.functional.cross_entropy), fused with the log-softmax for stability.
    /// <paramref name="input"/> is (C), (N, C) or (N, C, d1, ...). <paramref name="target"/> is either int64 class
    /// indices of shape (), (N) or (N, d1, ...), or class probabilities of the input's shape. Class
    /// <paramref name="weight"/>s (C) scale each class; positions whose index is <paramref name="ignoreIndex"/> count
    /// for nothing; <paramref name="labelSmoothing"/> mixes the target with the uniform distribution. The mean
    /// over indices divides by the summed weights of the counted targets, as PyTorch does.
    /// </summary>
    public static Tensor CrossEntropy(Tensor input, Tensor target, Tensor? weight = null, int ignoreIndex = -100,
        Reduction reduction = Reduction.Mean, double labelSmoothing = 0)
    {
        const string op = nameof(CrossEntropy);
        Guard.NotNull(input, op, nameof(input));
        Guard.NotNull(target, op, nameof(target));
        Guard.Floating(input, op);
        if (labelSmoothing < 0 || labelSmoothing > 1) Guard.ThrowArg(op, nameof(labelSmoothing), $"must be in [0, 1], got {labelSmoothing}.");
        bool unbatched = input.Rank == 1;
        var x = unbatched ? input.Unsqueeze(0) : input;
        var t = unbatched ? target.Unsqueeze(0) : target;
        int classes = x.Size(1);
        var w = ClassWeights(weight, x, op);
        Tensor loss, denominator;
        if (t.DType == DType.Int64)
        {
            var (safe, valid) = CheckClassTargets(x, t, ignoreIndex, op);
            var onehot = Tensor.ZerosLike(x).Scatter(1, safe.Unsqueeze(1), Tensor.Ones(safe.Unsqueeze(1).Shape, x.DType));
            var q = onehot * (1 - labelSmoothing) + labelSmoothing / classes;
            if (w is not null) q = q * w;
            loss = Tensor.SoftmaxCrossEntropy(x, q * valid.Unsqueeze(1));
            denominator = w is null ? valid.Sum() : (w.Reshape(-1).IndexSelect(0, safe.Reshape(-1)) * valid.Reshape(-1)).Sum();
        }
        else
        {
            if (!Shapes.Equal(t.Shape, x.Shape))
                Guard.ThrowArg(op, nameof(target), $"probability targets must have the input's shape {Guard.Shape(input)}, got {Guard.Shape(target)}.");
            var q = labelSmoothing == 0 ? t : t * (1 - labelSmoothing) + labelSmoothing / classes;
            loss = Tensor.SoftmaxCrossEntropy(x, w is null ? q : q * w);
            denominator = Tensor.Scalar(loss.NumEl, x.DType);
        }
        if (unbatched) loss = loss.Squeeze(0);
        return reduction switch
        {
            Reduction.None => loss,
            Reduction.Sum => loss.Sum(),
            Reduction.Mean => loss.Sum() / denominator,
            _ => throw new ArgumentException($"{op}: reduction {reduction} is only valid for KLDiv.", nameof(reduction)),
        };
    }

    /// <summary>
    /// Negative log-likelihood of log-probabilities (N, C, ...) at int64 class indices (N, ...), with optional
    /// class weights and an ignored index; the mean divides by the summed weights of the counted targets.
    /// </summary>
    public static Tensor NllLoss(Tensor input, Tensor target, Tensor? weight = null, int ignoreIndex = -100, Reduction reduction = Reduction.Mean)
    {
        const string op = nameof(NllLoss);
        Guard.NotNull(input, op, nameof(input));
        Guard.NotNull(target, op, nameof(target));
        bool unbatched = input.Rank == 1;
        var x = unbatched ? input.Unsqueeze(0) : input;
        var t = unbatched ? target.Unsqueeze(0) : target;
        if (t.DType != DType.Int64) Guard.ThrowArg(op, nameof(target), $"target must be int64 class indices, got {target.DType.Name()} {Guard.Shape(target)}.");
        var (safe, valid) = CheckClassTargets(x, t, ignoreIndex, op);
        var w = ClassWeights(weight, x, op);
        var picked = x.Gather(1, safe.Unsqueeze(1)).Squeeze(1);
        var sampleWeight = w is null ? valid : w.Reshape(-1).IndexSelect(0, safe.Reshape(-1)).Reshape(safe.Shape) * valid;
        var loss = -picked * sampleWeight;
        if (unbatched) loss = loss.Squeeze(0);
        return reduction switch
        {
            Reduction.None => loss,
            Reduction.Sum => loss.Sum(),
            Reduction.Mean => loss.Sum() / sampleWeight.Sum(),
            _ => throw new ArgumentException($"{op}: reduction {reduction} is only valid for KLDiv.", nameof(reduction)),
        };
    }

    /// <summary>Class weights reshaped to broadcast along dim 1 of x, or null.</summary>
    private static Tensor? ClassWeights(Tensor? weight, Tensor x, string op)
    {
        if (weight is null) return null;
        if (weight.Rank != 1 || weight.Size(0) != x.Size(1))
            Guard.ThrowArg(op, nameof(weight), $"class weights must have shape [{x.Size(1)}], got {Guard.Shape(weight)}.");
        var shape = Enumerable.Repeat(1, x.Rank).ToArray();
        shape[1] = x.Size(1);
        return weight.To(x.DType).Reshape(shape);
    }

    /// <summary>Checks class indices against (N, C, ...) and returns them with ignored positions set to 0, and the 0/1 mask of counted positions.</summary>
    private static (Tensor Safe, Tensor Valid) CheckClassTargets(Tensor x, Tensor t, int ignoreIndex, string op)
    {
        int[] expected = [x.Size(0), .. x.Shape[2..]];
        if (!Shapes.Equal(t.Shape, expected))
            Guard.ThrowArg(op, "target", $"class-index target of shape {Guard.Shape(t)} does not fit input {Guard.Shape(x)}: expected {Guard.Shape(expected)}.");
        int classes = x.Size(1);
        foreach (long c in t.ToArray<long>())
            if (c != ignoreIndex && (c < 0 || c >= classes))
                Guard.ThrowArg(op, "target", $"class index {c} is out of range for {classes} classes (ignore_index is {ignoreIndex}).");
        var keep = t.Ne(ignoreIndex);
        var safe = Tensor.Where(keep, t, Tensor.ZerosLike(t));
        return (safe, keep.To(x.DType));
    }
}
