using System.Runtime.CompilerServices;

namespace GradFlow;

/// <summary>
/// One entry of a tensor index, as in PyTorch's basic indexing: an integer or a C# <see cref="System.Index"/>
/// (<c>^1</c> is the last) selects one position and removes the dim, a <see cref="System.Range"/> (<c>1..3</c>,
/// <c>..</c>) or <see cref="Slice"/> keeps the dim, <see cref="Ellipsis"/> stands for every dim not named, and
/// <see cref="NewAxis"/> inserts a dim of size 1. Every result is a view.
/// </summary>
public readonly struct TensorIndex
{
    private enum Kind : byte { Single, Slice, Ellipsis, NewAxis }

    private readonly Kind _kind;
    private readonly Index _start;
    private readonly Index _end;
    private readonly int _step;

    private TensorIndex(Kind kind, Index start, Index end, int step)
    {
        _kind = kind;
        _start = start;
        _end = end;
        _step = step;
    }

    /// <summary>Every dim not named by the other entries (Python's <c>...</c>).</summary>
    public static TensorIndex Ellipsis => new(Kind.Ellipsis, default, default, 1);

    /// <summary>A new dim of size 1 (Python's <c>None</c>).</summary>
    public static TensorIndex NewAxis => new(Kind.NewAxis, default, default, 1);

    /// <summary>Positions start, start+step, ... before end (Python's <c>start:end:step</c>); out-of-range bounds are clamped as in Python.</summary>
    public static TensorIndex Slice(Index start, Index end, int step = 1) => new(Kind.Slice, start, end, step);

    /// <summary>One position; a negative value counts from the end, as in Python.</summary>
    public static implicit operator TensorIndex(int index) =>
        new(Kind.Single, index < 0 ? Index.FromEnd(-index) : Index.FromStart(index), default, 1);

    /// <summary>One position (<c>^1</c> is the last).</summary>
    public static implicit operator TensorIndex(Index index) => new(Kind.Single, index, default, 1);

    /// <summary>A range of positions, keeping the dim.</summary>
    public static implicit operator TensorIndex(Range range) => new(Kind.Slice, range.Start, range.End, 1);

    internal bool ConsumesDim => _kind is Kind.Single or Kind.Slice;

    internal bool IsEllipsis => _kind == Kind.Ellipsis;

    /// <summary>Applies this entry to dim <paramref name="dim"/> of <paramref name="t"/> with recorded view ops; returns the dim the next entry applies to.</summary>
    internal Tensor Apply(Tensor t, ref int dim, int sourceDim)
    {
        switch (_kind)
        {
            case Kind.NewAxis:
                t = t.Unsqueeze(dim);
                dim++;
                return t;
            case Kind.Single:
                {
                    int size = t.Size(dim);
                    int i = _start.IsFromEnd ? size - _start.Value : _start.Value;
                    if ((uint)i >= (uint)size)
                        Guard.ThrowArg("Tensor indexer", "index", $"index {(_start.IsFromEnd ? "^" + _start.Value : _start.Value.ToString(System.Globalization.CultureInfo.InvariantCulture))} is out of range for dim {sourceDim} of size {size}.");
                    return t.Select(dim, i);
                }
            case Kind.Slice:
                {
                    if (_step <= 0) Guard.ThrowArg("Tensor indexer", "step", $"the step of the slice on dim {sourceDim} must be positive, got {_step}.");
                    int size = t.Size(dim);
                    int start = Math.Clamp(_start.IsFromEnd ? size - _start.Value : _start.Value, 0, size);
                    int end = Math.Clamp(_end.IsFromEnd ? size - _end.Value : _end.Value, start, size);
                    t = t.Slice(dim, start, end, _step);
                    dim++;
                    return t;
                }
            default:
                throw new InvalidOperationException("An ellipsis is expanded before it is applied.");
        }
    }

    /// <inheritdoc />
    public override string ToString() => _kind switch
    {
        Kind.Single => _start.ToString(),
        Kind.Slice => _step == 1 ? $"{_start}..{_end}" : $"{_start}..{_end} step {_step}",
        Kind.Ellipsis => "...",
        _ => "NewAxis",
    };
}

// Basic indexing with C# indices and ranges, read and write (PyTorch's x[..., 1:3, -1] and x[...] = v).
public sealed partial class Tensor
{
    /// <summary>
    /// A view of the indexed part (<c>x[.., ^1]</c>, <c>x[1..3, .., 0]</c>); assigning writes into it in place
    /// (<c>x[0] = 0.5</c>, <c>x[.., 0] = other</c>, the value broadcast to the part). Reads are recorded views,
    /// so gradients flow through them; a write is recorded as an in-place op (PyTorch's CopySlices): the
    /// tensor's gradient then flows to the value for the written part and to the tensor's previous value for
    /// the rest. The version counter makes a backward through an op that saved the old values fail.
    /// </summary>
    /// <exception cref="ArgumentException">An index out of range (naming the dim, the index and the size), too many indices, or a value that does not broadcast.</exception>
    /// <exception cref="InvalidOperationException">A write, with grad mode on, into a leaf that requires grad or into a view of a tensor that requires grad.</exception>
    [IndexerName("At")]
    public Tensor this[params TensorIndex[] index]
    {
        get => IndexView(index, nameof(TensorIndex));
        set => IndexPut(index, value);
    }

    /// <summary>The view an index names, made of recorded Slice/Select/Unsqueeze ops (differentiable).</summary>
    private Tensor IndexView(TensorIndex[] index, string op)
    {
        Guard.NotNull(index, op, nameof(index));
        int consumed = 0, ellipses = 0;
        foreach (var e in index)
        {
            if (e.ConsumesDim) consumed++;
            if (e.IsEllipsis) ellipses++;
        }
        if (ellipses > 1) Guard.ThrowArg("Tensor indexer", nameof(index), "an index can have only one Ellipsis.");
        if (consumed > Rank)
            Guard.ThrowArg("Tensor indexer", nameof(index), $"got {consumed} indices for a tensor of shape {Guard.Shape(this)} ({Rank} dims).");
        var t = this;
        int dim = 0, sourceDim = 0;
        foreach (var e in index)
        {
            if (e.IsEllipsis)
            {
                int skip = Rank - consumed;
                dim += skip;
                sourceDim += skip;
                continue;
            }
            bool consumes = e.ConsumesDim;
            t = e.Apply(t, ref dim, sourceDim);
            if (consumes) sourceDim++;
        }
        return t;
    }

    /// <summary>Writes <paramref name="value"/> (broadcast, converted to this dtype) into the indexed part, in place. Returns this.</summary>
    public Tensor IndexPut(TensorIndex[] index, Tensor value)
    {
        const string op = nameof(IndexPut);
        Guard.NotNull(value, op, nameof(value));
        bool record = Autograd.IsGradEnabled && (RequiresGrad || value.RequiresGrad);
        if (Autograd.IsGradEnabled && RequiresGrad)
        {
            if (IsLeaf)
                Guard.ThrowInvalid(op, $"a leaf tensor of shape {Guard.Shape(this)} that requires grad cannot be written in place while grad mode is on (a parameter?); use Autograd.NoGrad() or write into a Clone().");
            if (GradFn is SliceBackward or ReshapeBackward or PermuteBackward or ExpandBackward)
                Guard.ThrowInvalid(op, $"the tensor of shape {Guard.Shape(this)} is a view ({GradFn.Name}) of a tensor that requires grad; write into the tensor it views, or into a Clone().");
        }
        Tensor part;
        using (Autograd.NoGrad()) part = IndexView(index, op);
        for (int d = 0; d < Rank; d++)
            if (StridesArray[d] == 0 && ShapeArray[d] > 1)
                Guard.ThrowInvalid(op, $"the tensor of shape {Guard.Shape(this)} is an expanded view: several of its elements share one memory location. Clone() it first.");
        var src = value.DType == DType ? value : value.To(DType);
        if (!BroadcastsTo(src.ShapeArray, part.ShapeArray))
            Guard.ThrowArg(op, nameof(value), $"a value of shape {Guard.Shape(value)} cannot be broadcast to the indexed part of shape {Guard.Shape(part)} (tensor {Guard.Shape(this)}).");
        CopyRaw(src, part);
        BumpVersion();
        if (record) Autograd.Record(op, this, new IndexPutBackward(index, src.ShapeArray), this, src);
        return this;
    }

    /// <summary>A 0-d float64 tensor holding <paramref name="value"/>, so that <c>x[0] = 0.5</c> reads as in PyTorch (a write converts it to the target's dtype).</summary>
    public static implicit operator Tensor(double value) => Full([], value, DType.Float64);
}

// PyTorch's CopySlices: the written part's gradient goes to the value (summed over broadcast dims), the rest to the old tensor.
internal sealed class IndexPutBackward(TensorIndex[] index, int[] valueShape) : Node
{
    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        var gy = g[0]!;
        var gValue = Tensor.SumTo(gy[index], valueShape);
        var gOld = gy.Clone();
        gOld.IndexPut(index, Tensor.Zeros([], gy.DType));
        return [gOld, gValue];
    }
}
