namespace GradFlow;

// Views share storage with their base (no copy); their backward maps the gradient back to the
// base's shape: reshape back, transpose back, sum over expanded dims, embed a slice in zeros.
public sealed partial class Tensor
{
    /// <summary>The same data with a new shape (one size may be -1); copies only when the layout requires it.</summary>
    public Tensor Reshape(params ReadOnlySpan<int> shape)
    {
        var s = InferShape(shape, nameof(Reshape));
        var strides = IsContiguous ? Shapes.ContiguousStrides(s) : Shapes.ViewStrides(ShapeArray, StridesArray, s);
        var y = strides is not null ? AsStridedView(s, strides, Offset) : new Tensor(ContiguousRaw().Storage, s);
        return Autograd.Record(OpNames.Reshape, y, Autograd.NeedsGrad(this) ? new ReshapeBackward(ShapeArray) : null, this);
    }

    /// <summary>A view with a new shape; the layout must allow it (use Reshape otherwise).</summary>
    public Tensor View(params ReadOnlySpan<int> shape)
    {
        if (!IsContiguous && Shapes.ViewStrides(ShapeArray, StridesArray, InferShape(shape, nameof(View))) is null)
            Guard.ThrowInvalid(nameof(View), $"the tensor of shape {Guard.Shape(this)} with strides {Guard.Shape(StridesArray)} cannot be viewed as {Guard.Shape(shape)}; use Reshape, or Contiguous() first.");
        return Reshape(shape);
    }

    /// <summary>Merges dims startDim..endDim into one.</summary>
    public Tensor Flatten(int startDim = 0, int endDim = -1)
    {
        if (Rank == 0) return Reshape(1);
        int s = Guard.Dim(startDim, Rank, nameof(Flatten), nameof(startDim)), e = Guard.Dim(endDim, Rank, nameof(Flatten), nameof(endDim));
        if (s > e) Guard.Throw(nameof(Flatten), $"startDim {startDim} comes after endDim {endDim} for shape {Guard.Shape(this)}.");
        var shape = new List<int>();
        for (int d = 0; d < s; d++) shape.Add(ShapeArray[d]);
        int merged = 1;
        for (int d = s; d <= e; d++) merged *= ShapeArray[d];
        shape.Add(merged);
        for (int d = e + 1; d < Rank; d++) shape.Add(ShapeArray[d]);
        return Reshape(shape.ToArray());
    }

    private int[] InferShape(ReadOnlySpan<int> shape, string op)
    {
        var s = shape.ToArray();
        int infer = -1, known = 1;
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == -1)
            {
                if (infer >= 0) Guard.ThrowArg(op, nameof(shape), $"only one dim may be -1, got {Guard.Shape(s)}.");
                infer = i;
            }
            else if (s[i] < 0) Guard.ThrowArg(op, nameof(shape), $"invalid size {s[i]} in {Guard.Shape(s)}.");
            else known *= s[i];
        }
        if (infer >= 0)
        {
            if (known == 0 || NumEl % known != 0)
                Guard.ThrowArg(op, nameof(shape), $"shape {Guard.Shape(s)} is invalid for input of shape {Guard.Shape(this)} ({NumEl} elements).");
            s[infer] = NumEl / known;
        }
        else if (known != NumEl)
            Guard.ThrowArg(op, nameof(shape), $"shape {Guard.Shape(s)} ({known} elements) is invalid for input of shape {Guard.Shape(this)} ({NumEl} elements).");
        return s;
    }

    /// <summary>Swaps two dims (a view).</summary>
    public Tensor Transpose(int dim0, int dim1)
    {
        int a = Guard.Dim(dim0, Rank, nameof(Transpose), nameof(dim0)), b = Guard.Dim(dim1, Rank, nameof(Transpose), nameof(dim1));
        if (Rank < 2) return Autograd.Record(OpNames.Transpose, Detach(), Autograd.NeedsGrad(this) ? new ReshapeBackward(ShapeArray) : null, this);
        var perm = new int[Rank];
        for (int i = 0; i < Rank; i++) perm[i] = i;
        (perm[a], perm[b]) = (perm[b], perm[a]);
        return Permute(perm);
    }

    /// <summary>The transpose of a matrix (dims reversed; a vector or scalar is returned as is).</summary>
    public Tensor T
    {
        get
        {
            if (Rank > 2) Guard.ThrowInvalid(nameof(T), $"T expects a tensor of rank at most 2, got shape {Guard.Shape(this)}; use Transpose or Permute.");
            return Rank == 2 ? Transpose(0, 1) : this;
        }
    }

    /// <summary>Reorders the dims (a view): output dim i is input dim dims[i].</summary>
    public Tensor Permute(params ReadOnlySpan<int> dims)
    {
        if (dims.Length != Rank) Guard.ThrowArg(nameof(Permute), nameof(dims), $"got {dims.Length} dims for a tensor of shape {Guard.Shape(this)}.");
        var perm = new int[Rank];
        var seen = new bool[Rank];
        for (int i = 0; i < Rank; i++)
        {
            perm[i] = Guard.Dim(dims[i], Rank, nameof(Permute), nameof(dims));
            if (seen[perm[i]]) Guard.ThrowArg(nameof(Permute), nameof(dims), $"dim {dims[i]} repeats in {Guard.Shape(dims)}.");
            seen[perm[i]] = true;
        }
        var shape = new int[Rank];
        var strides = new int[Rank];
        for (int i = 0; i < Rank; i++) { shape[i] = ShapeArray[perm[i]]; strides[i] = StridesArray[perm[i]]; }
        var y = AsStridedView(shape, strides, Offset);
        return Autograd.Record(OpNames.Permute, y, Autograd.NeedsGrad(this) ? new PermuteBackward(perm) : null, this);
    }

    /// <summary>Removes all dims of size 1, or only <paramref name="dim"/> if it has size 1.</summary>
    public Tensor Squeeze(int? dim = null)
    {
        var shape = new List<int>();
        int only = dim is { } d0 ? Guard.Dim(d0, Rank, nameof(Squeeze)) : -1;
        for (int d = 0; d < Rank; d++)
            if (ShapeArray[d] != 1 || (only >= 0 && d != only)) shape.Add(ShapeArray[d]);
        return Reshape(shape.ToArray());
    }

    /// <summary>Inserts a dim of size 1 at <paramref name="dim"/> (which may be Rank).</summary>
    public Tensor Unsqueeze(int dim)
    {
        int d = Guard.Dim(dim, Rank + 1, nameof(Unsqueeze));
        var shape = new int[Rank + 1];
        for (int i = 0, j = 0; i <= Rank; i++) shape[i] = i == d ? 1 : ShapeArray[j++];
        return Reshape(shape);
    }

    /// <summary>Broadcasts size-1 dims to a larger shape without copying (-1 keeps a size).</summary>
    public Tensor Expand(params ReadOnlySpan<int> shape)
    {
        var y = ExpandRaw(shape);
        return Autograd.Record(OpNames.Expand, y, Autograd.NeedsGrad(this) ? new ExpandBackward(ShapeArray) : null, this);
    }

    internal Tensor ExpandRaw(ReadOnlySpan<int> shape)
    {
        if (shape.Length < Rank) Guard.ThrowArg(nameof(Expand), nameof(shape), $"cannot expand shape {Guard.Shape(this)} to fewer dims {Guard.Shape(shape)}.");
        var s = shape.ToArray();
        int lead = s.Length - Rank;
        for (int i = 0; i < s.Length; i++)
        {
            int own = i < lead ? 1 : ShapeArray[i - lead];
            if (s[i] < -1) Guard.ThrowArg(nameof(Expand), nameof(shape), $"invalid size {s[i]} in {Guard.Shape(shape)} for shape {Guard.Shape(this)}.");
            if (s[i] == -1)
            {
                if (i < lead) Guard.ThrowArg(nameof(Expand), nameof(shape), $"-1 is not allowed for a new leading dim in {Guard.Shape(shape)}.");
                s[i] = own;
            }
            if (own != s[i] && own != 1)
                Guard.ThrowArg(nameof(Expand), nameof(shape), $"cannot expand shape {Guard.Shape(this)} to {Guard.Shape(shape)} (dim {i}: {own} is not 1).");
        }
        if (Shapes.Equal(s, ShapeArray)) return Detach();
        return AsStridedView(s, Shapes.BroadcastStrides(ShapeArray, StridesArray, s), Offset);
    }

    /// <summary>Elements start..end-1 (step apart) along a dim, as a view (x[:, start:end:step]).</summary>
    public Tensor Slice(int dim, int start, int end, int step = 1)
    {
        int d = Guard.IndexedDim(dim, this, nameof(Slice));
        int size = ShapeArray[d];
        if (step <= 0) Guard.ThrowArg(nameof(Slice), nameof(step), $"step must be positive, got {step}.");
        if (start < 0) start += size;
        if (end < 0) end += size;
        start = Math.Clamp(start, 0, size);
        end = Math.Clamp(end, start, size);
        var shape = (int[])ShapeArray.Clone();
        var strides = (int[])StridesArray.Clone();
        shape[d] = (end - start + step - 1) / step;
        strides[d] *= step;
        var y = AsStridedView(shape, strides, Offset + start * StridesArray[d]);
        return Autograd.Record(OpNames.Slice, y, Autograd.NeedsGrad(this) ? new SliceBackward(ShapeArray, d, start, step) : null, this);
    }

    /// <summary><paramref name="length"/> elements from <paramref name="start"/> along a dim, as a view.</summary>
    public Tensor Narrow(int dim, int start, int length)
    {
        int d = Guard.IndexedDim(dim, this, nameof(Narrow));
        if (start < 0 || length < 0 || start + length > ShapeArray[d])
            Guard.Throw(nameof(Narrow), $"start {start} and length {length} do not fit dim {dim} of shape {Guard.Shape(this)}.");
        return Slice(d, start, start + length);
    }

    /// <summary>Index <paramref name="index"/> along a dim, removing the dim (x[:, i]).</summary>
    public Tensor Select(int dim, int index)
    {
        int d = Guard.IndexedDim(dim, this, nameof(Select));
        int size = ShapeArray[d];
        if (index < -size || index >= size)
            Guard.ThrowArg(nameof(Select), nameof(index), $"index {index} is out of range for dim {dim} of shape {Guard.Shape(this)}.");
        if (index < 0) index += size;
        return Slice(d, index, index + 1).Squeeze(d);
    }

    /// <summary>Indexes the leading dims in turn (t[i] is row i, t[i, j] a 0-d tensor of a matrix); a view. Assigning writes in place (see <see cref="IndexPut"/>).</summary>
    [System.Runtime.CompilerServices.IndexerName("At")]
    public Tensor this[params int[] index]
    {
        get
        {
            Guard.NotNull(index, "Tensor indexer", nameof(index));
            return IndexView(Array.ConvertAll(index, i => (TensorIndex)i), "Tensor indexer");
        }
        set
        {
            Guard.NotNull(index, "Tensor indexer", nameof(index));
            IndexPut(Array.ConvertAll(index, i => (TensorIndex)i), value);
        }
    }

    /// <summary>A contiguous tensor with the same values: this tensor if already contiguous, else a copy.</summary>
    public Tensor Contiguous() => IsContiguous ? this : Clone();

    /// <summary>A copy that owns its data; gradients flow through to this tensor.</summary>
    public Tensor Clone()
    {
        var y = Empty(ShapeArray, DType);
        CopyRaw(this, y);
        return Autograd.Record(OpNames.Clone, y, Autograd.NeedsGrad(this) ? new ScaleBackward(1) : null, this);
    }

    /// <summary>This tensor converted to another dtype (a copy unless the dtype is the same).</summary>
    public Tensor To(DType dtype)
    {
        if (dtype == DType) return this;
        var y = Empty(ShapeArray, dtype);
        ConvertRaw(this, y);
        var node = Autograd.NeedsGrad(this) && dtype.IsFloatingPoint() ? new ToBackward(DType) : null;
        return Autograd.Record(OpNames.To, y, node, this);
    }

    /// <summary>Writes x's values into y (contiguous, same shape) in y's dtype, through double as PyTorch's casts round.</summary>
    internal static void ConvertRaw(Tensor x, Tensor y)
    {
        var c = x.IsContiguous ? x : x.ContiguousRaw();
        switch (c.DType)
        {
            case DType.Float32: ConvertFrom<float>(c.Span<float>(), y); break;
            case DType.Float64: ConvertFrom<double>(c.Span<double>(), y); break;
            default: ConvertFrom<long>(c.Span<long>(), y); break;
        }
    }

    private static void ConvertFrom<T>(ReadOnlySpan<T> src, Tensor y) where T : unmanaged, System.Numerics.INumberBase<T>
    {
        switch (y.DType)
        {
            case DType.Float32: { var d = y.Span<float>(); for (int i = 0; i < d.Length; i++) d[i] = (float)double.CreateTruncating(src[i]); break; }
            case DType.Float64: { var d = y.Span<double>(); for (int i = 0; i < d.Length; i++) d[i] = double.CreateTruncating(src[i]); break; }
            case DType.Bool: { var d = y.Span<long>(); for (int i = 0; i < d.Length; i++) d[i] = T.IsZero(src[i]) ? 0 : 1; break; }
            default: { var d = y.Span<long>(); for (int i = 0; i < d.Length; i++) d[i] = (long)double.CreateTruncating(src[i]); break; }
        }
    }

    /// <summary>Embeds a gradient slice into zeros of the base shape: the backward of Slice, itself differentiable.</summary>
    internal static Tensor EmbedSlice(Tensor g, int[] baseShape, int dim, int start, int step)
    {
        var y = EmptyZeroed(baseShape, g.DType);
        var view = y.AsStridedView(g.ShapeArray, MulAt(y.StridesArray, dim, step), start * y.StridesArray[dim]);
        CopyRaw(g, view);
        return Autograd.Record(OpNames.EmbedSlice, y, Autograd.NeedsGrad(g) ? new EmbedSliceBackward(dim, start, g.ShapeArray[dim], step) : null, g);
    }

    private static int[] MulAt(int[] strides, int dim, int step)
    {
        var s = (int[])strides.Clone();
        s[dim] *= step;
        return s;
    }
}

internal sealed class ReshapeBackward(int[] inputShape) : Node
{
    protected internal override Tensor?[] Backward(Tensor?[] g) => [g[0]!.Reshape(inputShape)];
}

internal sealed class PermuteBackward(int[] perm) : Node
{
    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        var inverse = new int[perm.Length];
        for (int i = 0; i < perm.Length; i++) inverse[perm[i]] = i;
        return [g[0]!.Permute(inverse)];
    }
}

internal sealed class ExpandBackward(int[] inputShape) : Node
{
    protected internal override Tensor?[] Backward(Tensor?[] g) => [Tensor.SumTo(g[0]!, inputShape)];
}

internal sealed class SliceBackward(int[] inputShape, int dim, int start, int step) : Node
{
    protected internal override Tensor?[] Backward(Tensor?[] g) => [Tensor.EmbedSlice(g[0]!, inputShape, dim, start, step)];
}

internal sealed class EmbedSliceBackward(int dim, int start, int length, int step) : Node
{
    protected internal override Tensor?[] Backward(Tensor?[] g) => [g[0]!.Slice(dim, start, start + (length - 1) * step + 1, step)];
}

internal sealed class ToBackward(DType source) : Node
{
    protected internal override Tensor?[] Backward(Tensor?[] g) => [g[0]!.To(source)];
}
