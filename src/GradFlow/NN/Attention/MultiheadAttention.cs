namespace GradFlow.NN;

/// <summary>
/// Multi-head attention (Vaswani et al. 2017; torch.nn.MultiheadAttention) with PyTorch's parameters: the packed
/// "in_proj_weight" (3E, E, xavier-uniform) and "in_proj_bias" (3E, zeros) for query, key and value, and "out_proj"
/// (a Linear with a zero bias). Masks: int64 masks are boolean (non-zero = not attended, as PyTorch's bool masks);
/// float masks are added to the scores.
/// </summary>
public sealed class MultiheadAttention : Module
{
    /// <summary>Creates the layer; <paramref name="embedDim"/> must be divisible by <paramref name="numHeads"/>.</summary>
    public MultiheadAttention(int embedDim, int numHeads, double dropout = 0, bool bias = true, bool batchFirst = false,
        DType dtype = DType.Float32, Generator? generator = null)
    {
        if (embedDim <= 0 || numHeads <= 0 || embedDim % numHeads != 0)
            Guard.Throw(nameof(MultiheadAttention), $"embed_dim={embedDim} must be divisible by num_heads={numHeads}.");
        (EmbedDim, NumHeads, DropoutP, BatchFirst) = (embedDim, numHeads, dropout, batchFirst);
        InProjWeight = RegisterParameter("in_proj_weight", Init.XavierUniform(Tensor.Zeros([3 * embedDim, embedDim], dtype), generator: generator));
        if (bias) InProjBias = RegisterParameter("in_proj_bias", Tensor.Zeros([3 * embedDim], dtype));
        OutProj = RegisterModule("out_proj", new Linear(embedDim, embedDim, bias, dtype, generator));
        if (OutProj.Bias is not null) Init.Zeros(OutProj.Bias);
    }

    /// <summary>The model width E.</summary>
    public int EmbedDim { get; }

    /// <summary>The number of heads; each has E / heads features.</summary>
    public int NumHeads { get; }

    /// <summary>Dropout on the attention weights, in training.</summary>
    public double DropoutP { get; }

    /// <summary>True when inputs are (N, L, E) rather than (L, N, E).</summary>
    public bool BatchFirst { get; }

    /// <summary>Query, key and value projections stacked, (3E, E).</summary>
    public Tensor InProjWeight { get; }

    /// <summary>Their biases, (3E), or null.</summary>
    public Tensor? InProjBias { get; }

    /// <summary>The output projection.</summary>
    public Linear OutProj { get; }

    /// <summary>Self-attention with no mask.</summary>
    public override Tensor Forward(Tensor input) => Call(input, input, input, needWeights: false).Output;

    /// <summary>
    /// Attends from <paramref name="query"/> (L, N, E) to <paramref name="key"/> and <paramref name="value"/> (S, N, E)
    /// (batch first when <see cref="BatchFirst"/>). <paramref name="keyPaddingMask"/> (N, S) hides padded keys;
    /// <paramref name="attnMask"/> is (L, S) or (N*heads, L, S). Returns the output and, when <paramref name="needWeights"/>,
    /// the attention weights (N, L, S) averaged over heads, or (N, heads, L, S).
    /// </summary>
    public (Tensor Output, Tensor? Weights) Call(Tensor query, Tensor key, Tensor value, Tensor? keyPaddingMask = null,
        bool needWeights = true, Tensor? attnMask = null, bool averageAttnWeights = true)
    {
        Guard.NotNull(query, TypeName, nameof(query));
        Guard.NotNull(key, TypeName, nameof(key));
        Guard.NotNull(value, TypeName, nameof(value));
        var r = Invoke([query, key, value], xs =>
        {
            var (o, w) = Attend(xs[0], xs[1], xs[2], keyPaddingMask, attnMask, needWeights, averageAttnWeights);
            return w is null ? [o] : [o, w];
        });
        return (r[0], r.Length > 1 ? r[1] : null);
    }

    private (Tensor Output, Tensor? Weights) Attend(Tensor q, Tensor k, Tensor v, Tensor? keyPaddingMask, Tensor? attnMask, bool needWeights, bool average)
    {
        CheckShapes(q, k, v);
        if (BatchFirst) (q, k, v) = (q.Transpose(0, 1), k.Transpose(0, 1), v.Transpose(0, 1));
        int l = q.Size(0), n = q.Size(1), s = k.Size(0), hd = EmbedDim / NumHeads;
        var w = InProjWeight.Chunk(3, 0);
        var b = InProjBias?.Chunk(3, 0);
        Tensor Heads(Tensor x, int i, int len) => Functional.Linear(x, w[i], b?[i]).Reshape(len, n, NumHeads, hd).Permute(1, 2, 0, 3);
        var (qh, kh, vh) = (Heads(q, 0, l), Heads(k, 1, s), Heads(v, 2, s)); // (N, heads, len, hd)
        var mask = CombinedMask(attnMask, keyPaddingMask, n, l, s, q.DType);
        var (o, weights) = Functional.ScaledDotProductAttention(qh, kh, vh, mask, Training ? DropoutP : 0);
        var output = OutProj.Call(o.Permute(2, 0, 1, 3).Reshape(l, n, EmbedDim));
        if (BatchFirst) output = output.Transpose(0, 1);
        return (output, needWeights ? (average ? weights.Mean(1) : weights) : null);
    }

    /// <summary>The attention mask and the key padding mask as one additive mask broadcasting to (N, heads, L, S).</summary>
    private Tensor? CombinedMask(Tensor? attnMask, Tensor? keyPaddingMask, int n, int l, int s, DType dtype)
    {
        Tensor? mask = null;
        if (attnMask is not null)
        {
            bool ok = (attnMask.Rank == 2 && attnMask.Size(0) == l && attnMask.Size(1) == s) ||
                      (attnMask.Rank == 3 && attnMask.Size(0) == n * NumHeads && attnMask.Size(1) == l && attnMask.Size(2) == s);
            if (!ok) throw new ArgumentException($"{TypeName}: attn_mask must be [{l}, {s}] or [{n * NumHeads}, {l}, {s}], got {Guard.Shape(attnMask)}.", nameof(attnMask));
            mask = Additive(attnMask.Rank == 3 ? attnMask.Reshape(n, NumHeads, l, s) : attnMask, dtype);
        }
        if (keyPaddingMask is not null)
        {
            if (keyPaddingMask.Rank != 2 || keyPaddingMask.Size(0) != n || keyPaddingMask.Size(1) != s)
                throw new ArgumentException($"{TypeName}: key_padding_mask must be [{n}, {s}], got {Guard.Shape(keyPaddingMask)}.", nameof(keyPaddingMask));
            var pad = Additive(keyPaddingMask.Reshape(n, 1, 1, s), dtype);
            mask = mask is null ? pad : mask + pad;
        }
        return mask;
    }

    private static Tensor Additive(Tensor mask, DType dtype) => mask.DType == DType.Int64
        ? Tensor.Where(mask, Tensor.Full([], double.NegativeInfinity, dtype), Tensor.Zeros([], dtype))
        : mask.To(dtype);

    private void CheckShapes(Tensor q, Tensor k, Tensor v)
    {
        string layout = BatchFirst ? "N, L, E" : "L, N, E";
        int batchDim = BatchFirst ? 0 : 1, seqDim = 1 - batchDim;
        bool ok = q.Rank == 3 && k.Rank == 3 && v.Rank == 3 && q.Size(2) == EmbedDim && k.Size(2) == EmbedDim && v.Size(2) == EmbedDim &&
                  k.Size(batchDim) == q.Size(batchDim) && v.Size(batchDim) == q.Size(batchDim) && k.Size(seqDim) == v.Size(seqDim);
        if (!ok)
            throw new ArgumentException($"{TypeName}{(Path.Length > 0 ? $" '{Path}'" : "")}: expected query, key, value of shape [{layout}] with E={EmbedDim} " +
                $"and matching batch and key lengths, got {Guard.Shape(q)}, {Guard.Shape(k)}, {Guard.Shape(v)}.");
    }

    /// <inheritdoc />
    protected override string ExtraRepr() => $"embed_dim={EmbedDim}, num_heads={NumHeads}" + (BatchFirst ? ", batch_first=True" : "");
}
