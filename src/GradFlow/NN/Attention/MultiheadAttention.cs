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

    // Heads are views: a projection (N, L, E) (or (L, N, E)) is seen as (N, heads, L, hd) without a copy, the fused
    // attention writes its output as (N, L, heads, hd) memory, and merging heads back is a view too. Self-attention
    // (one tensor for query, key and value) projects once with the packed weight and splits the result.
    private (Tensor Output, Tensor? Weights) Attend(Tensor q, Tensor k, Tensor v, Tensor? keyPaddingMask, Tensor? attnMask, bool needWeights, bool average)
    {
        CheckShapes(q, k, v);
        int seqDim = BatchFirst ? 1 : 0, hd = EmbedDim / NumHeads;
        int l = q.Size(seqDim), n = q.Size(1 - seqDim), s = k.Size(seqDim);
        Tensor Heads(Tensor x, int len) => BatchFirst
            ? x.Reshape(n, len, NumHeads, hd).Permute(0, 2, 1, 3)
            : x.Reshape(len, n, NumHeads, hd).Permute(1, 2, 0, 3);
        var mask = CombinedMask(attnMask, keyPaddingMask, n, l, s, q.DType);
        double dropout = Training ? DropoutP : 0;
        Tensor qh, kh, vh; // (N, heads, len, hd)
        if (ReferenceEquals(q, k) && ReferenceEquals(k, v))
        {
            var packed = Functional.Linear(q, InProjWeight, InProjBias);
            if (Tensor.PackedAttention(packed, NumHeads, BatchFirst, mask, 1 / Math.Sqrt(hd), dropout) is { } fused)
                return (OutProj.Call(fused.Output), needWeights ? (average ? fused.Weights.Mean(1) : fused.Weights) : null);
            var qkv = packed.Chunk(3, -1);
            (qh, kh, vh) = (Heads(qkv[0], l), Heads(qkv[1], s), Heads(qkv[2], s));
        }
        else
        {
            var w = InProjWeight.Chunk(3, 0);
            var b = InProjBias?.Chunk(3, 0);
            (qh, kh, vh) = (Heads(Functional.Linear(q, w[0], b?[0]), l), Heads(Functional.Linear(k, w[1], b?[1]), s), Heads(Functional.Linear(v, w[2], b?[2]), s));
        }
        var (o, weights) = Functional.ScaledDotProductAttention(qh, kh, vh, mask, dropout);
        var merged = BatchFirst ? o.Permute(0, 2, 1, 3).Reshape(n, l, EmbedDim) : o.Permute(2, 0, 1, 3).Reshape(l, n, EmbedDim);
        var output = OutProj.Call(merged);
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
            if (!ok) Guard.ThrowArg(TypeName, nameof(attnMask), $"attn_mask must be [{l}, {s}] or [{n * NumHeads}, {l}, {s}], got {Guard.Shape(attnMask)}.");
            mask = Additive(attnMask.Rank == 3 ? attnMask.Reshape(n, NumHeads, l, s) : attnMask, dtype);
        }
        if (keyPaddingMask is not null)
        {
            if (keyPaddingMask.Rank != 2 || keyPaddingMask.Size(0) != n || keyPaddingMask.Size(1) != s)
                Guard.ThrowArg(TypeName, nameof(keyPaddingMask), $"key_padding_mask must be [{n}, {s}], got {Guard.Shape(keyPaddingMask)}.");
            var pad = Additive(keyPaddingMask.Reshape(n, 1, 1, s), dtype);
            mask = mask is null ? pad : mask + pad;
        }
        return mask;
    }

    private static Tensor Additive(Tensor mask, DType dtype) => Functional.Additive(mask, dtype);

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
