using GradFlow.Kernels;

namespace GradFlow;

// Reductions over all elements or over given dims, with keepDim as in PyTorch.
public sealed partial class Tensor
{
    /// <summary>The sum of all elements (a 0-d tensor).</summary>
    public Tensor Sum() => Sum(AllDims(), keepDim: false);

    /// <summary>The sum over one dim.</summary>
    public Tensor Sum(int dim, bool keepDim = false) => Sum([dim], keepDim);

    /// <summary>The sum over the given dims.</summary>
    public Tensor Sum(int[] dims, bool keepDim = false)
    {
        var mask = ReducedDims(dims, nameof(Sum));
        var kept = ReduceRaw<AddOp>(mask, 0, nameof(Sum));
        var y = keepDim ? kept : kept.DropDims(mask);
        return Autograd.Record(OpNames.Sum, y, Autograd.NeedsGrad(this) ? new SumBackward(ShapeArray, kept.ShapeArray) : null, this);
    }

    /// <summary>The mean of all elements.</summary>
    public Tensor Mean() => Mean(AllDims(), keepDim: false);

    /// <summary>The mean over one dim.</summary>
    public Tensor Mean(int dim, bool keepDim = false) => Mean([dim], keepDim);

    /// <summary>The mean over the given dims.</summary>
    public Tensor Mean(int[] dims, bool keepDim = false)
    {
        Guard.Floating(this, nameof(Mean));
        int count = ReducedCount(ReducedDims(dims, nameof(Mean)));
        return Sum(dims, keepDim).Mul(1.0 / count);
    }

    /// <summary>The variance over the given dims (all dims when null), with Bessel's correction by default.</summary>
    public Tensor Var(int[]? dims = null, int correction = 1, bool keepDim = false)
    {
        Guard.Floating(this, nameof(Var));
        dims ??= AllDims();
        int count = ReducedCount(ReducedDims(dims, nameof(Var)));
        var d = this - Mean(dims, keepDim: true);
        return (d * d).Sum(dims, keepDim).Mul(1.0 / Math.Max(count - correction, 0));
    }

    /// <summary>The standard deviation over the given dims (all when null).</summary>
    public Tensor Std(int[]? dims = null, int correction = 1, bool keepDim = false) => Var(dims, correction, keepDim).Sqrt();

    /// <summary>The largest element (NaN if any element is NaN); ties share the gradient evenly.</summary>
    public Tensor Max() => ExtremeAll(max: true);

    /// <summary>The smallest element; ties share the gradient evenly.</summary>
    public Tensor Min() => ExtremeAll(max: false);

    /// <summary>The largest values along a dim and their indices (int64).</summary>
    public (Tensor Values, Tensor Indices) Max(int dim, bool keepDim = false) => ExtremeDim(dim, keepDim, max: true);

    /// <summary>The smallest values along a dim and their indices (int64).</summary>
    public (Tensor Values, Tensor Indices) Min(int dim, bool keepDim = false) => ExtremeDim(dim, keepDim, max: false);

    /// <summary>The index of the largest value along a dim (int64), or in the flattened tensor when dim is null.</summary>
    public Tensor ArgMax(int? dim = null, bool keepDim = false) =>
        dim is { } d ? ExtremeDim(d, keepDim, max: true).Indices : Reshape(-1).ExtremeDim(0, false, max: true).Indices;

    /// <summary>The index of the smallest value along a dim (int64), or in the flattened tensor.</summary>
    public Tensor ArgMin(int? dim = null, bool keepDim = false) =>
        dim is { } d ? ExtremeDim(d, keepDim, max: false).Indices : Reshape(-1).ExtremeDim(0, false, max: false).Indices;

    /// <summary>log(sum(exp(x))) over the given dims, computed stably by shifting by the maximum.</summary>
    public Tensor LogSumExp(int[] dims, bool keepDim = false)
    {
        Guard.Floating(this, nameof(LogSumExp));
        var mask = ReducedDims(dims, nameof(LogSumExp));
        var m = ReduceRaw<MaxOp>(mask, double.NegativeInfinity, nameof(LogSumExp));
        var finite = MapBinary<MulOp>(m, m.Abs().Ne(double.PositiveInfinity), nameof(LogSumExp)); // an all -inf slice shifts by 0
        var shifted = (this - finite).Exp().Sum(dims, keepDim: true).Log() + finite;
        return keepDim ? shifted : shifted.Reshape(shifted.DropDims(mask).ShapeArray);
    }

    /// <summary>log(sum(exp(x))) over one dim.</summary>
    public Tensor LogSumExp(int dim, bool keepDim = false) => LogSumExp([dim], keepDim);

    /// <summary>The p-norm over all elements, or over the given dims (p = 2 by default; p may be 1, 2, any positive value or infinity).</summary>
    public Tensor Norm(double p = 2, int[]? dims = null, bool keepDim = false)
    {
        Guard.Floating(this, nameof(Norm));
        dims ??= AllDims();
        if (p == 2)
        {
            var mask = ReducedDims(dims, nameof(Norm));
            var sq = MapBinary<MulOp>(this, this, nameof(Norm));
            var kept = sq.ReduceRaw<AddOp>(mask, 0, nameof(Norm));
            kept = MapUnary<SqrtOp>(kept, OpNames.Norm);
            var y = keepDim ? kept : kept.DropDims(mask);
            return Autograd.Record(OpNames.Norm, y, Autograd.NeedsGrad(this) ? new Norm2Backward(this, y, kept.ShapeArray) : null, this);
        }
        if (double.IsPositiveInfinity(p)) return AmaxComposite(Abs(), dims, keepDim);
        if (p <= 0 || double.IsNaN(p)) Guard.ThrowArg(nameof(Norm), nameof(p), $"p must be positive, got {p}.");
        if (p == 1) return Abs().Sum(dims, keepDim);
        return Abs().Pow(p).Sum(dims, keepDim).Pow(1.0 / p);
    }

    private static Tensor AmaxComposite(Tensor x, int[] dims, bool keepDim)
    {
        var mask = x.ReducedDims(dims, nameof(Norm));
        var m = x.ReduceRaw<MaxOp>(mask, double.NegativeInfinity, nameof(Norm));
        // Gradient shared evenly among the maximal elements of each slice, as torch.amax.
        var ties = x.Eq(m);
        var share = ties / ties.Sum(dims, keepDim: true);
        var y = (x * share).Sum(dims, keepDim: true);
        return keepDim ? y : y.Reshape(y.DropDims(mask).ShapeArray);
    }

    internal int[] AllDims()
    {
        var d = new int[Rank];
        for (int i = 0; i < Rank; i++) d[i] = i;
        return d;
    }

    private bool[] ReducedDims(int[] dims, string op)
    {
        Guard.NotNull(dims, op, nameof(dims));
        var mask = new bool[Rank];
        foreach (int dim in dims)
        {
            int d = Guard.Dim(dim, Rank, op, nameof(dims));
            if (Rank == 0) continue;
            if (mask[d]) Guard.ThrowArg(op, nameof(dims), $"dim {dim} appears twice in {Guard.Shape(dims)}.");
            mask[d] = true;
        }
        return mask;
    }

    private int ReducedCount(bool[] mask)
    {
        int n = 1;
        for (int d = 0; d < Rank; d++) if (mask[d]) n *= ShapeArray[d];
        return n;
    }

    /// <summary>Reduces the masked dims with the op, keeping them as size 1; no autograd.</summary>
    internal Tensor ReduceRaw<TOp>(bool[] mask, double init, string op) where TOp : struct, IBinaryOp
    {
        var keptShape = (int[])ShapeArray.Clone();
        for (int d = 0; d < Rank; d++) if (mask[d]) keptShape[d] = 1;
        var y = Empty(keptShape, DType);
        y.FillRaw(init);
        if (y.NumEl == 1 && IsContiguous)
        {
            switch (DType)
            {
                case DType.Float32: y.Span<float>()[0] = Reduction.Fold<TOp, float>(Span<float>(), (float)init); break;
                case DType.Float64: y.Span<double>()[0] = Reduction.Fold<TOp, double>(Span<double>(), init); break;
                default: y.Span<long>()[0] = Reduction.Fold<TOp, long>(Span<long>(), InitLong(init)); break;
            }
            return y;
        }
        if (IsContiguous && DType.IsFloatingPoint() && LeadingSplit(mask) is (int outer, int inner) && outer > 1 && inner >= 64)
        {
            if (DType == DType.Float32) Reduction.ReduceLeading<TOp, float>(Data<float>(), Offset, outer, inner, y.Data<float>());
            else Reduction.ReduceLeading<TOp, double>(Data<double>(), Offset, outer, inner, y.Data<double>());
            return y;
        }
        var ds = Shapes.BroadcastStrides(keptShape, y.StridesArray, ShapeArray);
        switch (DType)
        {
            case DType.Float32: Reduction.Reduce<TOp, float>(ShapeArray, y.Data<float>(), ds, 0, Data<float>(), StridesArray, Offset); break;
            case DType.Float64: Reduction.Reduce<TOp, double>(ShapeArray, y.Data<double>(), ds, 0, Data<double>(), StridesArray, Offset); break;
            default:
                if (init != 0) y.Span<long>().Fill(InitLong(init));
                Reduction.Reduce<TOp, long>(ShapeArray, y.Data<long>(), ds, 0, Data<long>(), StridesArray, Offset);
                break;
        }
        return y;
    }

    /// <summary>(outer, inner) when the mask reduces exactly the leading dims (at least one) and keeps the rest; else null.</summary>
    private (int Outer, int Inner)? LeadingSplit(bool[] mask)
    {
        int lead = 0;
        while (lead < Rank && mask[lead]) lead++;
        if (lead == 0 || lead == Rank) return null;
        for (int d = lead; d < Rank; d++) if (mask[d]) return null;
        int outer = 1, inner = 1;
        for (int d = 0; d < lead; d++) outer *= ShapeArray[d];
        for (int d = lead; d < Rank; d++) inner *= ShapeArray[d];
        return (outer, inner);
    }

    private static long InitLong(double init) =>
        double.IsNegativeInfinity(init) ? long.MinValue : double.IsPositiveInfinity(init) ? long.MaxValue : (long)init;

    /// <summary>A view without the masked (size-1) dims.</summary>
    internal Tensor DropDims(bool[] mask)
    {
        var shape = new List<int>();
        for (int d = 0; d < Rank; d++) if (!mask[d]) shape.Add(ShapeArray[d]);
        var s = shape.ToArray();
        return AsStridedView(s, Shapes.ContiguousStrides(s), Offset);
    }

    private Tensor ExtremeAll(bool max)
    {
        string op = max ? OpNames.Max : OpNames.Min;
        if (NumEl == 0) Guard.ThrowInvalid(op, $"cannot reduce an empty tensor of shape {Guard.Shape(this)}.");
        var mask = ReducedDims(AllDims(), op);
        var kept = max ? ReduceRaw<MaxOp>(mask, double.NegativeInfinity, op) : ReduceRaw<MinOp>(mask, double.PositiveInfinity, op);
        var y = kept.DropDims(mask);
        return Autograd.Record(op, y, Autograd.NeedsGrad(this) ? new ExtremeAllBackward(this, y) : null, this);
    }

    private (Tensor Values, Tensor Indices) ExtremeDim(int dim, bool keepDim, bool max)
    {
        string op = max ? OpNames.Max : OpNames.Min;
        int d = Guard.Dim(dim, Rank, op);
        if (Rank == 0) return (Autograd.Record(op, Detach(), Autograd.NeedsGrad(this) ? new ScaleBackward(1) : null, this), Zeros([], DType.Int64));
        int size = ShapeArray[d];
        if (size == 0) Guard.ThrowInvalid(op, $"cannot reduce dim {dim} of size 0 in shape {Guard.Shape(this)}.");
        int outer = 1, inner = 1;
        for (int i = 0; i < d; i++) outer *= ShapeArray[i];
        for (int i = d + 1; i < Rank; i++) inner *= ShapeArray[i];
        var keptShape = (int[])ShapeArray.Clone();
        keptShape[d] = 1;
        var values = Empty(keptShape, DType);
        var indices = Empty(keptShape, DType.Int64);
        var c = ContiguousRaw();
        switch (DType)
        {
            case DType.Float32: Reduction.ArgExtreme(c.Span<float>(), outer, size, inner, max, values.Span<float>(), indices.Span<long>()); break;
            case DType.Float64: Reduction.ArgExtreme(c.Span<double>(), outer, size, inner, max, values.Span<double>(), indices.Span<long>()); break;
            default: Reduction.ArgExtreme(c.Span<long>(), outer, size, inner, max, values.Span<long>(), indices.Span<long>()); break;
        }
        if (!keepDim)
        {
            var mask = new bool[Rank];
            mask[d] = true;
            values = values.DropDims(mask);
            indices = indices.DropDims(mask);
        }
        var node = Autograd.NeedsGrad(this) ? new ExtremeDimBackward(ShapeArray, d, keepDim, indices) : null;
        Autograd.Record(op, values, node, this);
        return (values, indices);
    }
}

internal sealed class SumBackward(int[] inputShape, int[] keptShape) : Node
{
    // Every input element contributed once: the gradient is broadcast back (a stride-0 view, no copy).
    protected internal override Tensor?[] Backward(Tensor?[] g) => [g[0]!.Reshape(keptShape).Expand(inputShape)];
}

internal sealed class Norm2Backward : Node
{
    private readonly int[] _keptShape;

    public Norm2Backward(Tensor x, Tensor norm, int[] keptShape)
    {
        _keptShape = keptShape;
        Save(x, norm);
    }

    // d||x||/dx = x / ||x||, taken as 0 where the norm is 0 (PyTorch's subgradient). The saved norm is
    // this op's output, so a second derivative flows through it.
    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        Tensor x = Saved(0), n = Saved(1).Reshape(_keptShape);
        var safe = Tensor.Where(n.Eq(0.0), Tensor.OnesLike(n), n);
        var scale = g[0]!.Reshape(n.ShapeArray) / safe;
        return [Tensor.Where(n.Eq(0.0), Tensor.ZerosLike(n), scale) * x];
    }
}

internal sealed class ExtremeAllBackward : Node
{
    public ExtremeAllBackward(Tensor x, Tensor y) => Save(x, y);

    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        Tensor x = Saved(0), y = Saved(1);
        var ties = x.Eq(y);
        return [ties * (g[0]! / ties.Sum())];
    }
}

internal sealed class ExtremeDimBackward(int[] inputShape, int dim, bool keepDim, Tensor indices) : Node
{
    // The gradient goes to the selected element of each slice.
    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        var gk = keepDim ? g[0]! : g[0]!.Unsqueeze(dim);
        var idx = keepDim ? indices : indices.Unsqueeze(dim);
        return [Tensor.Zeros(inputShape, gk.DType).Scatter(dim, idx, gk)];
    }
}
