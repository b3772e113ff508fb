namespace GradFlow.NN;

public static partial class Functional
{
    /// <summary>
    /// softmax(q k^T / sqrt(d) + mask) v over the last two dims (torch's scaled_dot_product_attention), returning the
    /// output and the attention weights. q is (..., L, d), k and v (..., S, d). <paramref name="attnMask"/> broadcasts to
    /// (..., L, S): a Bool (or int64) mask hides its true (non-zero) positions, as PyTorch's bool masks; a float mask
    /// is added to the scores, as in PyTorch. <paramref name="isCausal"/> masks every key after the query's position.
    /// </summary>
    public static (Tensor Output, Tensor Weights) ScaledDotProductAttention(Tensor query, Tensor key, Tensor value, Tensor? attnMask = null,
        double dropoutP = 0, bool isCausal = false, Generator? generator = null)
    {
        const string op = nameof(ScaledDotProductAttention);
        Guard.NotNull(query, op, nameof(query));
        Guard.NotNull(key, op, nameof(key));
        Guard.NotNull(value, op, nameof(value));
        if (query.Rank < 2 || key.Rank != query.Rank || value.Rank != query.Rank || query.Size(-1) != key.Size(-1) || key.Size(-2) != value.Size(-2))
            Guard.Throw(op, $"query {Guard.Shape(query)}, key {Guard.Shape(key)} and value {Guard.Shape(value)} must be (..., L, d), (..., S, d), (..., S, dv).");
        if (dropoutP is >= 0 and < 1 && FusedAttention(query, key, value, attnMask, isCausal, dropoutP, generator) is { } fused) return fused;
        var scores = query.MatMul(key.Transpose(-1, -2)) * (1 / Math.Sqrt(query.Size(-1)));
        if (isCausal) scores = ApplyMask(scores, CausalMask(query.Size(-2), key.Size(-2)), op);
        if (attnMask is not null) scores = ApplyMask(scores, attnMask, op);
        var weights = scores.Softmax(-1);
        var dropped = dropoutP > 0 ? Dropout(weights, dropoutP, true, generator) : weights;
        return (dropped.MatMul(value), weights);
    }

    // One fused op (Ops/Attention.cs), dropout included (p below 1): the masks are first folded into one additive mask
    // of their own (small) broadcast shape. Null when the general path applies, which also reports bad masks.
    private static (Tensor Output, Tensor Weights)? FusedAttention(Tensor query, Tensor key, Tensor value, Tensor? attnMask, bool isCausal,
        double dropoutP, Generator? generator)
    {
        if (!query.DType.IsFloatingPoint() || (attnMask is not null && attnMask.RequiresGrad)) return null;
        Tensor? mask = null;
        if (isCausal) mask = Additive(CausalMask(query.Size(-2), key.Size(-2)), query.DType);
        if (attnMask is not null)
        {
            var extra = Additive(attnMask, query.DType);
            if (mask is null) mask = extra;
            else if (!TryBroadcastAdd(mask, extra, out mask)) return null;
        }
        return Tensor.Attention(query, key, value, mask, 1 / Math.Sqrt(query.Size(-1)), dropoutP, generator);
    }

    private static bool TryBroadcastAdd(Tensor a, Tensor b, out Tensor? sum)
    {
        try
        {
            sum = a + b;
            return true;
        }
        catch (ArgumentException)
        {
            sum = null;
            return false;
        }
    }

    /// <summary>A boolean (Bool or int64) mask as 0 / -inf in <paramref name="dtype"/>, or a float mask in that dtype.</summary>
    internal static Tensor Additive(Tensor mask, DType dtype) => IsBooleanMask(mask)
        ? Tensor.Where(mask, Tensor.Full([], double.NegativeInfinity, dtype), Tensor.Zeros([], dtype))
        : mask.To(dtype);

    /// <summary>A Bool (L, S) mask, true above the diagonal: position i may attend to keys 0..i (torch's causal mask).</summary>
    public static Tensor CausalMask(int queryLength, int keyLength)
    {
        var m = new bool[queryLength * keyLength];
        for (int i = 0; i < queryLength; i++)
            for (int j = i + 1; j < keyLength; j++) m[i * keyLength + j] = true;
        return Tensor.FromArray(m, queryLength, keyLength);
    }

    // PyTorch's rule: a bool mask hides the true positions, a float mask is added to the scores. Int64 masks are read as
    // bool (PyTorch 1.13 still accepted uint8 masks that way).
    private static bool IsBooleanMask(Tensor mask) => mask.DType is DType.Bool or DType.Int64;

    /// <summary>Boolean (Bool or int64, true = masked to -inf) or additive (float) mask, broadcast to the scores.</summary>
    internal static Tensor ApplyMask(Tensor scores, Tensor mask, string op)
    {
        try
        {
            if (IsBooleanMask(mask))
                return Tensor.Where(mask, Tensor.Full([], double.NegativeInfinity, scores.DType), scores);
            return scores + mask.To(scores.DType);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"{op}: mask of shape {Guard.Shape(mask)} does not broadcast to the attention scores {Guard.Shape(scores)}.", nameof(mask), e);
        }
    }
}
