using GradFlow.Kernels;

namespace GradFlow;

// Scaled dot-product attention as one op with two outputs (the attended values and the weights), in the manner of
// PyTorch's fused attention kernels: one node instead of MatMul, Mul, Add, Softmax, MatMul and their backward
// nodes, heads read in place from strided views of the projections (Kernels/Attention.cs), and the output and
// input gradients laid out as their operands are, so merging heads back into (..., L, E) is a view, not a copy.
public sealed partial class Tensor
{
    /// <summary>
    /// softmax(q k^T * scale + mask) v for q (..., L, d), k (..., S, d), v (..., S, dv) with equal batch dims and an
    /// additive <paramref name="mask"/> (no gradient) broadcasting to (..., L, S); returns the output and the weights.
    /// Dropout with probability <paramref name="dropoutP"/> (below 1) applies to the weights that mix v, not to those returned.
    /// Null when the operands need the general path (broadcast batch dims, mixed dtypes, a mask that needs a gradient).
    /// </summary>
    internal static (Tensor Output, Tensor Weights)? Attention(Tensor q, Tensor k, Tensor v, Tensor? mask, double scale,
        double dropoutP = 0, Generator? generator = null)
    {
        int rank = q.Rank;
        if (rank < 2 || k.Rank != rank || v.Rank != rank || !q.DType.IsFloatingPoint() || k.DType != q.DType || v.DType != q.DType
            || !Shapes.Equal(q.ShapeArray.AsSpan(0, rank - 2), k.ShapeArray.AsSpan(0, rank - 2))
            || !Shapes.Equal(q.ShapeArray.AsSpan(0, rank - 2), v.ShapeArray.AsSpan(0, rank - 2))
            || q.ShapeArray[^1] != k.ShapeArray[^1] || k.ShapeArray[^2] != v.ShapeArray[^2] || q.NumEl == 0 || k.NumEl == 0 || v.NumEl == 0)
            return null;
        int l = q.ShapeArray[^2], s = k.ShapeArray[^2], dv = v.ShapeArray[^1];
        var batchShape = q.ShapeArray[..(rank - 2)];
        int[] scoreShape = [.. batchShape, l, s];
        if (mask is not null && (mask.RequiresGrad || mask.DType != q.DType || !BroadcastsTo(mask.ShapeArray, scoreShape)))
            return null;
        if (dropoutP >= 1) return null;
        var (qs, ks, vs) = (GemmRows(q), GemmRows(k), GemmRows(v));
        var drop = DropMultiplier(scoreShape, q.DType, dropoutP, generator);
        var output = EmptyInLayoutOf(qs, [.. batchShape, l, dv]);
        var weights = Empty(scoreShape, q.DType);
        int batch = Shapes.Count(batchShape);
        MaskBatch? mb = mask is null ? null : MaskLayout(mask, scoreShape, batch);
        if (q.DType == DType.Float32)
            Kernels.Attention.Forward(batch, l, s, q.ShapeArray[^1], dv, (float)scale, qs.Data<float>(), Batches(qs), ks.Data<float>(), Batches(ks),
                vs.Data<float>(), Batches(vs), mask is null ? default : mask.Data<float>(), mb, drop is null ? default : drop.Span<float>(),
                weights.Span<float>(), output.Data<float>(), Batches(output));
        else
            Kernels.Attention.Forward(batch, l, s, q.ShapeArray[^1], dv, scale, qs.Data<double>(), Batches(qs), ks.Data<double>(), Batches(ks),
                vs.Data<double>(), Batches(vs), mask is null ? default : mask.Data<double>(), mb, drop is null ? default : drop.Span<double>(),
                weights.Span<double>(), output.Data<double>(), Batches(output));
        var node = Autograd.NeedsGrad([q, k, v]) ? new AttentionBackward(q, k, v, qs, ks, vs, mask, drop, weights, scale) : null;
        var outs = Autograd.Record(OpNames.ScaledDotProductAttention, [output, weights], node, [q, k, v]);
        return (outs[0], outs[1]);
    }

    /// <summary>
    /// Self-attention over a packed projection: <paramref name="qkv"/> is (N, L, 3E) when <paramref name="batchFirst"/>,
    /// else (L, N, 3E), holding q, k and v side by side, each split into <paramref name="heads"/> heads. Returns the
    /// heads' outputs merged back, (N, L, E) or (L, N, E), and the weights (N, heads, L, L). One input, so the backward
    /// writes q's, k's and v's gradients straight into one (.., 3E) tensor (no Cat of three). Null when the operands
    /// need the general path.
    /// </summary>
    internal static (Tensor Output, Tensor Weights)? PackedAttention(Tensor qkv, int heads, bool batchFirst, Tensor? mask, double scale,
        double dropoutP = 0, Generator? generator = null)
    {
        if (qkv.Rank != 3 || !qkv.IsContiguous || !qkv.DType.IsFloatingPoint() || qkv.NumEl == 0 || qkv.ShapeArray[2] % (3 * heads) != 0) return null;
        var lay = new PackedLayout(qkv.ShapeArray, heads, batchFirst);
        if (mask is not null && (mask.RequiresGrad || mask.DType != qkv.DType || !BroadcastsTo(mask.ShapeArray, lay.ScoreShape))) return null;
        if (dropoutP >= 1) return null;
        var drop = DropMultiplier(lay.ScoreShape, qkv.DType, dropoutP, generator);
        var output = Empty(lay.OutputShape, qkv.DType);
        var weights = Empty(lay.ScoreShape, qkv.DType);
        MaskBatch? mb = mask is null ? null : MaskLayout(mask, lay.ScoreShape, lay.Batch);
        var (qb, kb, vb) = (lay.Part(0, qkv.Offset), lay.Part(1, qkv.Offset), lay.Part(2, qkv.Offset));
        if (qkv.DType == DType.Float32)
        {
            var x = qkv.Data<float>();
            Kernels.Attention.Forward(lay.Batch, lay.L, lay.L, lay.Hd, lay.Hd, (float)scale, x, qb, x, kb, x, vb,
                mask is null ? default : mask.Data<float>(), mb, drop is null ? default : drop.Span<float>(), weights.Span<float>(), output.Data<float>(), lay.Output());
        }
        else
        {
            var x = qkv.Data<double>();
            Kernels.Attention.Forward(lay.Batch, lay.L, lay.L, lay.Hd, lay.Hd, scale, x, qb, x, kb, x, vb,
                mask is null ? default : mask.Data<double>(), mb, drop is null ? default : drop.Span<double>(), weights.Span<double>(), output.Data<double>(), lay.Output());
        }
        var node = Autograd.NeedsGrad(qkv) ? new PackedAttentionBackward(qkv, lay, mask, drop, weights, scale) : null;
        var outs = Autograd.Record(OpNames.ScaledDotProductAttention, [output, weights], node, [qkv]);
        return (outs[0], outs[1]);
    }

    // The dropout multiplier, drawn as Functional.Dropout draws it (uniforms below 1 - p kept, scaled by 1 / (1 - p)),
    // so the fused and composed paths agree for the same generator state.
    private static Tensor? DropMultiplier(int[] shape, DType dtype, double p, Generator? generator)
    {
        if (p <= 0) return null;
        using (Autograd.NoGrad()) return Rand(shape, dtype, generator).Lt(1 - p) * (1 / (1 - p));
    }

    private static bool BroadcastsTo(int[] shape, int[] target)
    {
        if (shape.Length > target.Length) return false;
        for (int i = 1; i <= shape.Length; i++)
            if (shape[^i] != 1 && shape[^i] != target[^i]) return false;
        return true;
    }

    /// <summary>The tensor itself when GEMM can read its last two dims as row-major matrices, else a contiguous copy.</summary>
    internal static Tensor GemmRows(Tensor t)
    {
        int rows = t.ShapeArray[^2], cols = t.ShapeArray[^1];
        bool unitColumns = cols == 1 || t.StridesArray[^1] == 1;
        bool rowsApart = rows == 1 || t.StridesArray[^2] >= cols;
        return unitColumns && rowsApart ? t : t.ContiguousRaw();
    }

    /// <summary>The start of each batch entry's matrix and its row stride.</summary>
    internal static MatrixBatch Batches(Tensor t)
    {
        int rank = t.Rank, batch = Shapes.Count(t.ShapeArray.AsSpan(0, rank - 2));
        var offsets = BatchOffsets(t.ShapeArray.AsSpan(0, rank - 2), t.StridesArray.AsSpan(0, rank - 2), t.Offset, batch);
        int ld = t.ShapeArray[^2] == 1 ? Math.Max(t.ShapeArray[^1], 1) : t.StridesArray[^2];
        return new MatrixBatch(offsets, ld);
    }

    private static MaskBatch MaskLayout(Tensor mask, int[] scoreShape, int batch)
    {
        var strides = Shapes.BroadcastStrides(mask.ShapeArray, mask.StridesArray, scoreShape);
        int rank = scoreShape.Length;
        var offsets = BatchOffsets(scoreShape.AsSpan(0, rank - 2), strides.AsSpan(0, rank - 2), mask.Offset, batch);
        return new MaskBatch(offsets, strides[^2], strides[^1]);
    }

    private static int[] BatchOffsets(ReadOnlySpan<int> shape, ReadOnlySpan<int> strides, int offset, int count)
    {
        var offsets = new int[count];
        for (int i = 0; i < count; i++)
        {
            int off = offset;
            for (int d = shape.Length - 1, rest = i; d >= 0; d--)
            {
                off += rest % shape[d] * strides[d];
                rest /= shape[d];
            }
            offsets[i] = off;
        }
        return offsets;
    }

    /// <summary>
    /// An uninitialised tensor of <paramref name="shape"/> whose dims are laid out in memory in the order of
    /// <paramref name="like"/>'s strides (largest first; the last dim innermost): for heads viewed out of a
    /// (N, L, E) projection, (N, L, heads, d) memory seen as (N, heads, L, d).
    /// </summary>
    internal static Tensor EmptyInLayoutOf(Tensor like, int[] shape)
    {
        int rank = shape.Length;
        var order = Enumerable.Range(0, rank - 1).OrderByDescending(d => like.StridesArray[d]).Append(rank - 1).ToArray();
        var strides = new int[rank];
        int stride = 1;
        for (int i = rank - 1; i >= 0; i--)
        {
            strides[order[i]] = stride;
            stride *= shape[order[i]];
        }
        return Empty([stride], like.DType).AsStridedView(shape, strides, 0);
    }
}

internal sealed class AttentionBackward : Node
{
    private readonly double _scale;
    private readonly bool _needQ, _needK, _needV;
    private readonly int _maskAt, _dropAt;

    public AttentionBackward(Tensor q, Tensor k, Tensor v, Tensor qs, Tensor ks, Tensor vs, Tensor? mask, Tensor? drop, Tensor weights, double scale)
        : base(2)
    {
        _scale = scale;
        (_needQ, _needK, _needV) = (q.RequiresGrad, k.RequiresGrad, v.RequiresGrad);
        // The operands as in the graph (for createGraph), the GEMM-ready ones, the weights, the mask, the dropout multiplier.
        var saved = new List<Tensor> { q, k, v, qs, ks, vs, weights };
        _maskAt = mask is null ? -1 : saved.Count;
        if (mask is not null) saved.Add(mask);
        _dropAt = drop is null ? -1 : saved.Count;
        if (drop is not null) saved.Add(drop);
        Save([.. saved]);
    }

    public override string Name => "ScaledDotProductAttentionBackward";

    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        if (Autograd.IsGradEnabled) return Composed(g[0], g[1]);
        Tensor q = Saved(3), k = Saved(4), v = Saved(5), p = Saved(6);
        int rank = q.Rank, l = q.ShapeArray[^2], s = k.ShapeArray[^2], d = q.ShapeArray[^1], dv = v.ShapeArray[^1];
        var gOut = Tensor.GemmRows(g[0] ?? Tensor.Zeros([.. q.ShapeArray[..(rank - 2)], l, dv], q.DType));
        var gW = g[1]?.ContiguousRaw();
        var dq = _needQ ? Tensor.EmptyInLayoutOf(q, q.ShapeArray) : null;
        var dk = _needK ? Tensor.EmptyInLayoutOf(k, k.ShapeArray) : null;
        var dvT = _needV ? Tensor.EmptyInLayoutOf(v, v.ShapeArray) : null;
        int batch = p.NumEl / Math.Max(l * s, 1);
        var none = new MatrixBatch([], 1);
        var drop = _dropAt < 0 ? null : Saved(_dropAt);
        if (q.DType == DType.Float32)
            Kernels.Attention.Backward(batch, l, s, d, dv, (float)_scale, q.Data<float>(), Tensor.Batches(q), k.Data<float>(), Tensor.Batches(k),
                v.Data<float>(), Tensor.Batches(v), p.Span<float>(), drop is null ? default : drop.Span<float>(), gOut.Data<float>(), Tensor.Batches(gOut), gW is null ? default : gW.Span<float>(),
                dq is null ? default : dq.Data<float>(), dq is null ? none : Tensor.Batches(dq),
                dk is null ? default : dk.Data<float>(), dk is null ? none : Tensor.Batches(dk),
                dvT is null ? default : dvT.Data<float>(), dvT is null ? none : Tensor.Batches(dvT));
        else
            Kernels.Attention.Backward(batch, l, s, d, dv, _scale, q.Data<double>(), Tensor.Batches(q), k.Data<double>(), Tensor.Batches(k),
                v.Data<double>(), Tensor.Batches(v), p.Span<double>(), drop is null ? default : drop.Span<double>(), gOut.Data<double>(), Tensor.Batches(gOut), gW is null ? default : gW.Span<double>(),
                dq is null ? default : dq.Data<double>(), dq is null ? none : Tensor.Batches(dq),
                dk is null ? default : dk.Data<double>(), dk is null ? none : Tensor.Batches(dk),
                dvT is null ? default : dvT.Data<double>(), dvT is null ? none : Tensor.Batches(dvT));
        return [dq, dk, dvT];
    }

    // Under createGraph: the same formulas in differentiable ops (AttentionGrads.Composed).
    private Tensor?[] Composed(Tensor? gOut, Tensor? gW)
    {
        var (dq, dk, dv) = AttentionGrads.Composed(Saved(0), Saved(1), Saved(2), _maskAt < 0 ? null : Saved(_maskAt), _dropAt < 0 ? null : Saved(_dropAt),
            _scale, gOut, gW, _needQ, _needK, _needV);
        return [dq, dk, dv];
    }
}

internal static class AttentionGrads
{
    // The weights are recomputed from q and k so that second derivatives see their dependence on them.
    public static (Tensor? Dq, Tensor? Dk, Tensor? Dv) Composed(Tensor q, Tensor k, Tensor v, Tensor? mask, Tensor? drop, double scale,
        Tensor? gOut, Tensor? gW, bool needQ, bool needK, bool needV)
    {
        var scores = q.MatMul(k.Transpose(-1, -2)) * scale;
        if (mask is not null) scores = scores + mask;
        var p = scores.Softmax(-1);
        var mix = drop is null ? p : p * drop;
        Tensor? dp = gOut?.MatMul(v.Transpose(-1, -2));
        if (dp is not null && drop is not null) dp = dp * drop;
        if (gW is not null) dp = dp is null ? gW : dp + gW;
        Tensor? dq = null, dk = null, dv = null;
        if (dp is not null && (needQ || needK))
        {
            var ds = p * (dp - (dp * p).Sum(-1, keepDim: true));
            if (needQ) dq = ds.MatMul(k) * scale;
            if (needK) dk = ds.Transpose(-1, -2).MatMul(q) * scale;
        }
        if (needV) dv = gOut is null ? Tensor.ZerosLike(v) : mix.Transpose(-1, -2).MatMul(gOut);
        return (dq, dk, dv);
    }
}

/// <summary>
/// Where the heads of a packed (N, L, 3E) or (L, N, 3E) projection and of the merged (.., E) output sit: batch entry
/// b = n * heads + h of part i (0 q, 1 k, 2 v) starts at n * (stride of n) + i * E + h * hd, rows one position apart.
/// </summary>
internal sealed class PackedLayout
{
    public PackedLayout(int[] shape, int heads, bool batchFirst)
    {
        (Heads, BatchFirst) = (heads, batchFirst);
        (N, L) = batchFirst ? (shape[0], shape[1]) : (shape[1], shape[0]);
        E = shape[2] / 3;
        Hd = E / heads;
        Batch = N * heads;
        ScoreShape = [N, heads, L, L];
        OutputShape = batchFirst ? [N, L, E] : [L, N, E];
    }

    public int Heads { get; }
    public bool BatchFirst { get; }
    public int N { get; }
    public int L { get; }
    public int E { get; }
    public int Hd { get; }
    public int Batch { get; }
    public int[] ScoreShape { get; }
    public int[] OutputShape { get; }

    /// <summary>Part <paramref name="part"/> (q, k, v) of a contiguous (.., 3E) tensor starting at <paramref name="offset"/>.</summary>
    public MatrixBatch Part(int part, int offset) => Heads3(3 * E, offset + (part * E));

    /// <summary>The merged (.., E) output, contiguous from 0.</summary>
    public MatrixBatch Output() => Heads3(E, 0);

    private MatrixBatch Heads3(int width, int offset)
    {
        // Strides of n and of a position in a (.., width) tensor.
        int sn = BatchFirst ? L * width : width, sl = BatchFirst ? width : N * width;
        var offsets = new int[Batch];
        for (int n = 0; n < N; n++)
            for (int h = 0; h < Heads; h++) offsets[(n * Heads) + h] = offset + (n * sn) + (h * Hd);
        return new MatrixBatch(offsets, sl);
    }

    /// <summary>Part i of a (.., 3E) tensor, or the (.., E) output, as a differentiable (N, heads, L, hd) view.</summary>
    public Tensor HeadsOf(Tensor x) => BatchFirst
        ? x.Reshape(N, L, Heads, Hd).Permute(0, 2, 1, 3)
        : x.Reshape(L, N, Heads, Hd).Permute(1, 2, 0, 3);

    /// <summary>(N, heads, L, hd) back to (.., E).</summary>
    public Tensor Merge(Tensor x) => BatchFirst
        ? x.Permute(0, 2, 1, 3).Reshape(N, L, E)
        : x.Permute(2, 0, 1, 3).Reshape(L, N, E);
}

internal sealed class PackedAttentionBackward : Node
{
    private readonly PackedLayout _layout;
    private readonly double _scale;
    private readonly int _maskAt, _dropAt;

    public PackedAttentionBackward(Tensor qkv, PackedLayout layout, Tensor? mask, Tensor? drop, Tensor weights, double scale) : base(2)
    {
        (_layout, _scale) = (layout, scale);
        var saved = new List<Tensor> { qkv, weights };
        _maskAt = mask is null ? -1 : saved.Count;
        if (mask is not null) saved.Add(mask);
        _dropAt = drop is null ? -1 : saved.Count;
        if (drop is not null) saved.Add(drop);
        Save([.. saved]);
    }

    public override string Name => "ScaledDotProductAttentionBackward";

    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        var lay = _layout;
        Tensor qkv = Saved(0), p = Saved(1);
        if (Autograd.IsGradEnabled)
        {
            var parts = qkv.Chunk(3, -1);
            var (dq, dk, dv) = AttentionGrads.Composed(lay.HeadsOf(parts[0]), lay.HeadsOf(parts[1]), lay.HeadsOf(parts[2]),
                _maskAt < 0 ? null : Saved(_maskAt), _dropAt < 0 ? null : Saved(_dropAt), _scale, g[0] is null ? null : lay.HeadsOf(g[0]!), g[1], true, true, true);
            Tensor Zero() => Tensor.Zeros([lay.N, lay.Heads, lay.L, lay.Hd], qkv.DType);
            return [Tensor.Cat([lay.Merge(dq ?? Zero()), lay.Merge(dk ?? Zero()), lay.Merge(dv ?? Zero())], -1)];
        }
        var gOut = (g[0] ?? Tensor.Zeros(lay.OutputShape, qkv.DType)).ContiguousRaw();
        var gW = g[1]?.ContiguousRaw();
        var dqkv = Tensor.Empty(qkv.ShapeArray, qkv.DType);
        int l = lay.L, hd = lay.Hd;
        var (qb, kb, vb) = (lay.Part(0, qkv.Offset), lay.Part(1, qkv.Offset), lay.Part(2, qkv.Offset));
        var (dqb, dkb, dvb) = (lay.Part(0, 0), lay.Part(1, 0), lay.Part(2, 0));
        var gb = lay.Output();
        var drop = _dropAt < 0 ? null : Saved(_dropAt);
        if (qkv.DType == DType.Float32)
        {
            var x = qkv.Data<float>();
            var d = dqkv.Data<float>();
            var go = gOut.Data<float>().AsSpan(gOut.Offset);
            Kernels.Attention.Backward(lay.Batch, l, l, hd, hd, (float)_scale, x, qb, x, kb, x, vb, p.Span<float>(), drop is null ? default : drop.Span<float>(), go, gb,
                gW is null ? default : gW.Span<float>(), d, dqb, d, dkb, d, dvb);
        }
        else
        {
            var x = qkv.Data<double>();
            var d = dqkv.Data<double>();
            var go = gOut.Data<double>().AsSpan(gOut.Offset);
            Kernels.Attention.Backward(lay.Batch, l, l, hd, hd, _scale, x, qb, x, kb, x, vb, p.Span<double>(), drop is null ? default : drop.Span<double>(), go, gb,
                gW is null ? default : gW.Span<double>(), d, dqb, d, dkb, d, dvb);
        }
        return [dqkv];
    }
}
