namespace GradFlow.NN;

public static partial class Functional
{
    /// <summary>
    /// Batch normalisation over every dim but the channel dim 1 (torch.nn.functional.batch_norm). In training the
    /// batch statistics normalise (biased variance) and, when running statistics are given, are blended into them
    /// in place: running = (1 - momentum) running + momentum batch, with the unbiased variance. Otherwise the running
    /// statistics normalise.
    /// </summary>
    public static Tensor BatchNorm(Tensor input, Tensor? runningMean, Tensor? runningVar, Tensor? weight = null, Tensor? bias = null,
        bool training = false, double momentum = 0.1, double eps = 1e-5)
    {
        const string op = nameof(BatchNorm);
        Guard.NotNull(input, op, nameof(input));
        if (input.Rank < 2) Guard.ThrowArg(op, nameof(input), $"expects (N, C, ...), got {Guard.Shape(input)}.");
        int c = input.Size(1);
        var shape = Enumerable.Repeat(1, input.Rank).ToArray();
        shape[1] = c;
        int[] dims = [0, .. Enumerable.Range(2, input.Rank - 2)];
        Tensor mean, var;
        if (training)
        {
            int count = input.NumEl / Math.Max(c, 1);
            if (count <= 1) Guard.ThrowArg(op, nameof(input), $"expected more than 1 value per channel when training, got input {Guard.Shape(input)}.");
            mean = input.Mean(dims, keepDim: true);
            var centered = input - mean;
            var = (centered * centered).Mean(dims, keepDim: true);
            if (runningMean is not null && runningVar is not null)
                using (Autograd.NoGrad())
                {
                    runningMean.MulInPlace(1 - momentum).AddInPlace(mean.Detach().Reshape(c).To(runningMean.DType), momentum);
                    runningVar.MulInPlace(1 - momentum).AddInPlace((var.Detach() * (count / (count - 1.0))).Reshape(c).To(runningVar.DType), momentum);
                }
        }
        else
        {
            if (runningMean is null || runningVar is null)
                Guard.Throw(op, "evaluation mode needs running statistics (or track_running_stats=False, which always uses batch statistics).");
            mean = runningMean.Reshape(shape);
            var = runningVar.Reshape(shape);
        }
        var y = (input - mean) / (var + eps).Sqrt();
        return Affine(y, weight, bias, shape);
    }

    /// <summary>Normalises over the trailing <paramref name="normalizedShape"/> dims (torch.nn.functional.layer_norm).</summary>
    public static Tensor LayerNorm(Tensor input, int[] normalizedShape, Tensor? weight = null, Tensor? bias = null, double eps = 1e-5)
    {
        const string op = nameof(LayerNorm);
        Guard.NotNull(input, op, nameof(input));
        Guard.NotNull(normalizedShape, op, nameof(normalizedShape));
        int k = normalizedShape.Length;
        if (k == 0 || input.Rank < k || !Shapes.Equal(input.Shape[^k..], normalizedShape))
            Guard.ThrowArg(op, nameof(input), $"input {Guard.Shape(input)} does not end in the normalized shape {Guard.Shape(normalizedShape)}.");
        if (Tensor.LayerNorm(input, normalizedShape, weight, bias, eps) is { } fused) return fused;
        var dims = Enumerable.Range(input.Rank - k, k).ToArray();
        var mean = input.Mean(dims, keepDim: true);
        var centered = input - mean;
        var y = centered / ((centered * centered).Mean(dims, keepDim: true) + eps).Sqrt();
        if (weight is not null) y = y * weight;
        return bias is null ? y : y + bias;
    }

    /// <summary>Normalises each of <paramref name="numGroups"/> channel groups per sample (torch.nn.functional.group_norm).</summary>
    public static Tensor GroupNorm(Tensor input, int numGroups, Tensor? weight = null, Tensor? bias = null, double eps = 1e-5)
    {
        const string op = nameof(GroupNorm);
        Guard.NotNull(input, op, nameof(input));
        if (input.Rank < 2 || numGroups <= 0 || input.Size(1) % numGroups != 0)
            Guard.ThrowArg(op, nameof(input), $"input {Guard.Shape(input)} must be (N, C, ...) with C divisible by {numGroups} groups.");
        int n = input.Size(0), c = input.Size(1);
        var grouped = input.Reshape(n, numGroups, -1);
        var mean = grouped.Mean(2, keepDim: true);
        var centered = grouped - mean;
        var y = (centered / ((centered * centered).Mean(2, keepDim: true) + eps).Sqrt()).Reshape(input.Shape);
        var shape = Enumerable.Repeat(1, input.Rank).ToArray();
        shape[1] = c;
        return Affine(y, weight, bias, shape);
    }

    private static Tensor Affine(Tensor y, Tensor? weight, Tensor? bias, int[] channelShape)
    {
        if (weight is not null) y = y * weight.Reshape(channelShape);
        return bias is null ? y : y + bias.Reshape(channelShape);
    }
}
