namespace GradFlow;

// Index-based reads and writes along a dim. Indices are int64 tensors and are checked against the
// dim size before any write, so a bad index is an ArgumentException, never memory corruption.
public sealed partial class Tensor
{
    /// <summary>out[..., j, ...] = this[..., index[..., j, ...], ...] along <paramref name="dim"/> (torch.gather).</summary>
    public Tensor Gather(int dim, Tensor index)
    {
        int d = CheckIndexTensor(dim, index, nameof(Gather), sameRank: true);
        var y = Empty(index.ShapeArray, DType);
        var idx = index.ContiguousRaw().Span<long>();
        var src = ContiguousRaw();
        if (AlongRows(index.ShapeArray, d, ShapeArray))
        {
            switch (DType)
            {
                case DType.Float32: GatherRows(src.Span<float>(), idx, y.Span<float>(), ShapeArray[d], index.ShapeArray[d], d); break;
                case DType.Float64: GatherRows(src.Span<double>(), idx, y.Span<double>(), ShapeArray[d], index.ShapeArray[d], d); break;
                default: GatherRows(src.Span<long>(), idx, y.Span<long>(), ShapeArray[d], index.ShapeArray[d], d); break;
            }
        }
        else ForEachIndexed(index.ShapeArray, d, idx, ShapeArray, nameof(Gather), (outPos, srcPos) => CopyElement(src, srcPos, y, outPos));
        return Autograd.Record(OpNames.Gather, y, Autograd.NeedsGrad(this) ? new GatherBackward(ShapeArray, d, index) : null, this);
    }

    /// <summary>A copy of this tensor with src written at the indexed positions along <paramref name="dim"/> (torch.scatter).</summary>
    public Tensor Scatter(int dim, Tensor index, Tensor src) => ScatterCore(dim, index, src, accumulate: false, OpNames.Scatter);

    /// <summary>A copy of this tensor with src added at the indexed positions along <paramref name="dim"/> (torch.scatter_add).</summary>
    public Tensor ScatterAdd(int dim, Tensor index, Tensor src) => ScatterCore(dim, index, src, accumulate: true, OpNames.ScatterAdd);

    private Tensor ScatterCore(int dim, Tensor index, Tensor src, bool accumulate, string op)
    {
        int d = CheckIndexTensor(dim, index, op, sameRank: true);
        Guard.NotNull(src, op, nameof(src));
        Guard.SameDType(this, src, op);
        if (!Shapes.Equal(src.ShapeArray, index.ShapeArray))
            Guard.ThrowArg(op, nameof(src), $"src of shape {Guard.Shape(src)} must have the shape of index {Guard.Shape(index)}.");
        var y = CloneRaw();
        var s = src.ContiguousRaw();
        var idx = index.ContiguousRaw().Span<long>();
        if (AlongRows(index.ShapeArray, d, ShapeArray))
        {
            switch (DType)
            {
                case DType.Float32: ScatterRows(s.Span<float>(), idx, y.Span<float>(), ShapeArray[d], index.ShapeArray[d], d, accumulate, op); break;
                case DType.Float64: ScatterRows(s.Span<double>(), idx, y.Span<double>(), ShapeArray[d], index.ShapeArray[d], d, accumulate, op); break;
                default: ScatterRows(s.Span<long>(), idx, y.Span<long>(), ShapeArray[d], index.ShapeArray[d], d, accumulate, op); break;
            }
        }
        else
        {
            ForEachIndexed(index.ShapeArray, d, idx, ShapeArray, op, (idxPos, outPos) =>
            {
                if (accumulate) AddElement(s, idxPos, y, outPos); else CopyElement(s, idxPos, y, outPos);
            });
        }
        var node = Autograd.NeedsGrad(this, src) ? new ScatterBackward(d, index, accumulate) : null;
        return Autograd.Record(op, y, node, this, src);
    }

    /// <summary>The slices at <paramref name="index"/> (a 1-d int64 tensor) along a dim (torch.index_select).</summary>
    public Tensor IndexSelect(int dim, Tensor index)
    {
        int d = Guard.IndexedDim(dim, this, nameof(IndexSelect));
        var idx = CheckIndexVector(index, ShapeArray[d], nameof(IndexSelect));
        var shape = (int[])ShapeArray.Clone();
        shape[d] = idx.Length;
        var y = Empty(shape, DType);
        if (d == 0 && IsContiguous) CopyRows(this, idx, y);
        else
        {
            for (int i = 0; i < idx.Length; i++)
                CopyRaw(Slice(d, (int)idx[i], (int)idx[i] + 1).Detach(), y.SliceRaw(d, i));
        }
        return Autograd.Record(OpNames.IndexSelect, y, Autograd.NeedsGrad(this) ? new IndexSelectBackward(ShapeArray, d, index) : null, this);
    }

    // Rows of a contiguous tensor are runs of memory: one array copy each, and no view objects per row (a data
    // loader's batch of 128 images made 100 KB of them).
    private static void CopyRows(Tensor x, ReadOnlySpan<long> idx, Tensor y)
    {
        int row = 1;
        for (int k = 1; k < x.Rank; k++) row *= x.ShapeArray[k];
        Array src = x.Storage.Data, dst = y.Storage.Data;
        for (int i = 0; i < idx.Length; i++)
            Array.Copy(src, x.Offset + (idx[i] * row), dst, y.Offset + ((long)i * row), row);
    }

    /// <summary>A copy of this tensor with source's slices added at <paramref name="index"/> along a dim (torch.index_add).</summary>
    public Tensor IndexAdd(int dim, Tensor index, Tensor source)
    {
        int d = Guard.IndexedDim(dim, this, nameof(IndexAdd));
        Guard.NotNull(source, nameof(IndexAdd), nameof(source));
        Guard.SameDType(this, source, nameof(IndexAdd));
        var idx = CheckIndexVector(index, ShapeArray[d], nameof(IndexAdd));
        bool ok = source.Rank == Rank && source.ShapeArray[d] == idx.Length;
        for (int k = 0; ok && k < Rank; k++) ok = k == d || source.ShapeArray[k] == ShapeArray[k];
        if (!ok) Guard.ThrowArg(nameof(IndexAdd), nameof(source), $"source of shape {Guard.Shape(source)} does not fit self {Guard.Shape(this)} with {idx.Length} indices along dim {d}.");
        var y = CloneRaw();
        for (int i = 0; i < idx.Length; i++)
        {
            var dst = y.SliceRaw(d, (int)idx[i]);
            BinaryInto<Kernels.AddOp>(dst, dst, source.SliceRaw(d, i));
        }
        var node = Autograd.NeedsGrad(this, source) ? new IndexAddBackward(d, index) : null;
        return Autograd.Record(OpNames.IndexAdd, y, node, this, source);
    }

    internal Tensor CloneRaw()
    {
        var y = Empty(ShapeArray, DType);
        CopyRaw(this, y);
        return y;
    }

    private Tensor SliceRaw(int d, int i)
    {
        var shape = (int[])ShapeArray.Clone();
        shape[d] = 1;
        return AsStridedView(shape, StridesArray, Offset + i * StridesArray[d]);
    }

    private int CheckIndexTensor(int dim, Tensor index, string op, bool sameRank)
    {
        Guard.NotNull(index, op, nameof(index));
        int d = Guard.IndexedDim(dim, this, op);
        if (index.DType != DType.Int64) Guard.ThrowArg(op, nameof(index), $"index must be int64, got {index.DType.Name()} of shape {Guard.Shape(index)}.");
        if (sameRank && index.Rank != Rank) Guard.ThrowArg(op, nameof(index), $"index of shape {Guard.Shape(index)} must have the rank of input {Guard.Shape(this)}.");
        for (int k = 0; k < Rank; k++)
            if (k != d && index.ShapeArray[k] > ShapeArray[k])
                Guard.ThrowArg(op, nameof(index), $"index of shape {Guard.Shape(index)} is larger than input {Guard.Shape(this)} in dim {k}.");
        return d;
    }

    private static long[] CheckIndexVector(Tensor index, int size, string op)
    {
        Guard.NotNull(index, op, nameof(index));
        if (index.DType != DType.Int64 || index.Rank > 1)
            Guard.ThrowArg(op, nameof(index), $"index must be a 1-d int64 tensor, got {index.DType.Name()} of shape {Guard.Shape(index)}.");
        var idx = index.ToArray<long>();
        for (int i = 0; i < idx.Length; i++)
        {
            if (idx[i] < -size || idx[i] >= size) Guard.ThrowArg(op, nameof(index), $"index {idx[i]} is out of range for a dim of size {size}.");
            if (idx[i] < 0) idx[i] += size;
        }
        return idx;
    }

    // Along the last dim, with the index as large as the target in every other dim, index row r meets target row r:
    // typed loops over rows instead of a visit per element (MaxPool2d's createGraph backward and its own backward
    // scatter and gather this way, once per curvature product). Same positions in the same order as ForEachIndexed.
    private static bool AlongRows(int[] idxShape, int d, int[] targetShape)
    {
        if (d != idxShape.Length - 1) return false;
        for (int k = 0; k < d; k++)
            if (idxShape[k] != targetShape[k]) return false;
        return true;
    }

    private static void GatherRows<T>(ReadOnlySpan<T> src, ReadOnlySpan<long> idx, Span<T> dst, int size, int width, int d)
    {
        for (int r = 0, p = 0; p < idx.Length; r++)
        {
            var row = src.Slice(r * size, size);
            for (int end = p + width; p < end; p++) dst[p] = row[(int)RowIndex(idx[p], size, d, nameof(Gather))];
        }
    }

    private static void ScatterRows<T>(ReadOnlySpan<T> src, ReadOnlySpan<long> idx, Span<T> dst, int size, int width, int d,
        bool accumulate, string op) where T : System.Numerics.INumber<T>
    {
        for (int r = 0, p = 0; p < idx.Length; r++)
        {
            var row = dst.Slice(r * size, size);
            for (int end = p + width; p < end; p++)
            {
                ref T target = ref row[(int)RowIndex(idx[p], size, d, op)];
                target = accumulate ? target + src[p] : src[p];
            }
        }
    }

    private static long RowIndex(long j, int size, int d, string op)
    {
        if (j < -size || j >= size) Guard.ThrowArg(op, "index", $"index {j} is out of range for dim {d} of size {size}.");
        return j < 0 ? j + size : j;
    }

    /// <summary>
    /// Visits every position p of the index tensor; the target is p with its dim-d coordinate replaced by
    /// index[p]. Gather calls visit(p, target-in-input); scatter calls visit(p, target-in-output).
    /// </summary>
    private static void ForEachIndexed(int[] idxShape, int d, ReadOnlySpan<long> idx, int[] targetShape, string op,
        Action<int, int> visit)
    {
        var targetStrides = Shapes.ContiguousStrides(targetShape);
        int n = idx.Length, size = targetShape[d];
        var counter = new int[idxShape.Length];
        for (int p = 0; p < n; p++)
        {
            long j = idx[p];
            if (j < -size || j >= size) Guard.ThrowArg(op, "index", $"index {j} is out of range for dim {d} of size {size}.");
            if (j < 0) j += size;
            int t = 0;
            for (int k = 0; k < counter.Length; k++) t += (k == d ? (int)j : counter[k]) * targetStrides[k];
            visit(p, t);
            for (int k = counter.Length - 1; k >= 0; k--)
            {
                if (++counter[k] < idxShape[k]) break;
                counter[k] = 0;
            }
        }
    }

    private static void CopyElement(Tensor src, int srcPos, Tensor dst, int dstPos)
    {
        switch (dst.DType)
        {
            case DType.Float32: dst.Data<float>()[dstPos] = src.Data<float>()[src.Offset + srcPos]; break;
            case DType.Float64: dst.Data<double>()[dstPos] = src.Data<double>()[src.Offset + srcPos]; break;
            default: dst.Data<long>()[dstPos] = src.Data<long>()[src.Offset + srcPos]; break;
        }
    }

    private static void AddElement(Tensor src, int srcPos, Tensor dst, int dstPos)
    {
        switch (dst.DType)
        {
            case DType.Float32: dst.Data<float>()[dstPos] += src.Data<float>()[src.Offset + srcPos]; break;
            case DType.Float64: dst.Data<double>()[dstPos] += src.Data<double>()[src.Offset + srcPos]; break;
            default: dst.Data<long>()[dstPos] += src.Data<long>()[src.Offset + srcPos]; break;
        }
    }
}

internal sealed class GatherBackward(int[] inputShape, int dim, Tensor index) : Node
{
    protected internal override Tensor?[] Backward(Tensor?[] g) => [Tensor.Zeros(inputShape, g[0]!.DType).ScatterAdd(dim, index, g[0]!)];
}

internal sealed class ScatterBackward(int dim, Tensor index, bool accumulate) : Node
{
    // Scatter overwrites: the overwritten positions of self get no gradient. ScatterAdd passes it all.
    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        var gy = g[0]!;
        var gSelf = accumulate ? gy : gy.Scatter(dim, index, Tensor.Zeros(index.ShapeArray, gy.DType));
        return [gSelf, gy.Gather(dim, index)];
    }
}

internal sealed class IndexSelectBackward(int[] inputShape, int dim, Tensor index) : Node
{
    protected internal override Tensor?[] Backward(Tensor?[] g) => [Tensor.Zeros(inputShape, g[0]!.DType).IndexAdd(dim, index, g[0]!)];
}

internal sealed class IndexAddBackward(int dim, Tensor index) : Node
{
    protected internal override Tensor?[] Backward(Tensor?[] g) => [g[0], g[0]!.IndexSelect(dim, index)];
}
