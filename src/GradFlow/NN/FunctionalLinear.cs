namespace GradFlow.NN;

public static partial class Functional
{
    /// <summary>y = x W^T + b over the last dim of x (torch.nn.functional.linear); W is (out, in).</summary>
    public static Tensor Linear(Tensor input, Tensor weight, Tensor? bias = null)
    {
        Guard.NotNull(input, nameof(Linear), nameof(input));
        Guard.NotNull(weight, nameof(Linear), nameof(weight));
        if (weight.Rank != 2 || input.Rank == 0 || input.Size(-1) != weight.Size(1))
            Guard.Throw(nameof(Linear), $"input {Guard.Shape(input)} does not fit weight {Guard.Shape(weight)}: the input's last dim must be {(weight.Rank == 2 ? weight.Size(1) : "in_features")}.");
        // Checked here so a bad bias is Linear's error, not the Add that would apply it.
        if (bias is not null && (bias.Rank > 1 || (bias.Rank == 1 && bias.Size(0) != weight.Size(0) && bias.Size(0) != 1)))
            Guard.ThrowArg(nameof(Linear), nameof(bias), $"bias {Guard.Shape(bias)} does not fit weight {Guard.Shape(weight)}: expected ({weight.Size(0)}).");
        if (bias is not null && bias.DType != input.DType)
            Guard.ThrowArg(nameof(Linear), nameof(bias), $"bias is {bias.DType.Name()}, input is {input.DType.Name()}.");
        if (Tensor.Linear(input, weight, bias) is { } fused) return fused;
        var y = input.MatMul(weight.T);
        return bias is null ? y : y + bias;
    }

    /// <summary>
    /// In training, zeroes each element with probability <paramref name="p"/> and scales the rest by
    /// 1 / (1 - p), so the expectation is unchanged; the identity otherwise.
    /// </summary>
    public static Tensor Dropout(Tensor input, double p = 0.5, bool training = true, Generator? generator = null)
    {
        Guard.NotNull(input, nameof(Dropout), nameof(input));
        if (p < 0 || p > 1 || double.IsNaN(p)) Guard.ThrowArg(nameof(Dropout), nameof(p), $"p must be in [0, 1], got {p}.");
        if (!training || p == 0) return input;
        if (p == 1) return input * Tensor.ZerosLike(input);
        var keep = Tensor.Rand(input.Shape, input.DType, generator).Lt(1 - p);
        return input * (keep.To(input.DType) * (1 / (1 - p)));
    }

    /// <summary>
    /// Rows of <paramref name="weight"/> picked by the int64 <paramref name="indices"/> (any shape); the result
    /// has shape indices.shape + [dim]. No gradient reaches the row <paramref name="paddingIdx"/>.
    /// </summary>
    public static Tensor Embedding(Tensor indices, Tensor weight, int? paddingIdx = null)
    {
        Guard.NotNull(indices, nameof(Embedding), nameof(indices));
        Guard.NotNull(weight, nameof(Embedding), nameof(weight));
        if (indices.DType != DType.Int64)
            Guard.ThrowArg(nameof(Embedding), nameof(indices), $"indices must be int64, got {indices.DType.Name()} of shape {Guard.Shape(indices)}.");
        if (weight.Rank != 2) Guard.ThrowArg(nameof(Embedding), nameof(weight), $"weight must be 2-d (num_embeddings, dim), got {Guard.Shape(weight)}.");
        var flat = indices.Reshape(-1);
        foreach (long i in flat.ToArray<long>())
            if (i < 0 || i >= weight.Size(0))
                Guard.ThrowArg(nameof(Embedding), nameof(indices), $"index {i} is out of range for {weight.Size(0)} embeddings.");
        var rows = weight.IndexSelect(0, flat);
        if (paddingIdx is { } pad && Autograd.IsGradEnabled && weight.RequiresGrad)
        {
            // Same values, but the padding positions read a detached copy, so their gradient is dropped.
            var isPad = flat.Eq(pad).To(weight.DType).Unsqueeze(1);
            rows = Tensor.Where(isPad, rows.Detach(), rows);
        }
        return rows.Reshape([.. indices.Shape, weight.Size(1)]);
    }
}
