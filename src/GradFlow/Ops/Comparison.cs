using GradFlow.Kernels;

namespace GradFlow;

// Comparisons give a Bool tensor (PyTorch's torch.bool); they are not differentiable. Where selects between two
// tensors by a condition (Bool, or any dtype read as non-zero = true).
public sealed partial class Tensor
{
    /// <summary>1 where this == other.</summary>
    public Tensor Eq(Tensor other) => Compare<EqOp>(other, OpNames.Eq);
    /// <summary>1 where this != other.</summary>
    public Tensor Ne(Tensor other) => Compare<NeOp>(other, OpNames.Ne);
    /// <summary>1 where this &lt; other.</summary>
    public Tensor Lt(Tensor other) => Compare<LtOp>(other, OpNames.Lt);
    /// <summary>1 where this &lt;= other.</summary>
    public Tensor Le(Tensor other) => Compare<LeOp>(other, OpNames.Le);
    /// <summary>1 where this &gt; other.</summary>
    public Tensor Gt(Tensor other) => Compare<GtOp>(other, OpNames.Gt);
    /// <summary>1 where this &gt;= other.</summary>
    public Tensor Ge(Tensor other) => Compare<GeOp>(other, OpNames.Ge);
    /// <summary>1 where this == s.</summary>
    public Tensor Eq(double s) => Compare<EqOp>(s, OpNames.Eq);
    /// <summary>1 where this != s.</summary>
    public Tensor Ne(double s) => Compare<NeOp>(s, OpNames.Ne);
    /// <summary>1 where this &lt; s.</summary>
    public Tensor Lt(double s) => Compare<LtOp>(s, OpNames.Lt);
    /// <summary>1 where this &lt;= s.</summary>
    public Tensor Le(double s) => Compare<LeOp>(s, OpNames.Le);
    /// <summary>1 where this &gt; s.</summary>
    public Tensor Gt(double s) => Compare<GtOp>(s, OpNames.Gt);
    /// <summary>1 where this &gt;= s.</summary>
    public Tensor Ge(double s) => Compare<GeOp>(s, OpNames.Ge);

    private Tensor Compare<TOp>(Tensor other, string op) where TOp : struct, IBinaryOp
    {
        Guard.NotNull(other, op, nameof(other));
        var (a, b) = PromoteBool(this, other);
        return Autograd.Record(op, ToBoolRaw(MapBinary<TOp>(a, b, op)), null, this, other);
    }

    private Tensor Compare<TOp>(double s, string op) where TOp : struct, IBinaryOp =>
        Autograd.Record(op, ToBoolRaw(MapScalar<TOp>(this, s, false, op)), null, this);

    /// <summary>Elementwise <paramref name="a"/> where <paramref name="condition"/> is non-zero, else <paramref name="b"/>, broadcasting all three.</summary>
    public static Tensor Where(Tensor condition, Tensor a, Tensor b)
    {
        Guard.NotNull(condition, nameof(Where), nameof(condition));
        Guard.SameDType(a, b, nameof(Where));
        var shape = Shapes.Broadcast(Shapes.Broadcast(condition.ShapeArray, a.ShapeArray, nameof(Where)), b.ShapeArray, nameof(Where));
        var mask = Empty(shape, DType.Bool); // rented like the output, not a double[] per call
        ConvertRaw(condition.ExpandRaw(shape), mask);
        var ac = a.ExpandRaw(shape).ContiguousRaw();
        var bc = b.ExpandRaw(shape).ContiguousRaw();
        var y = Empty(shape, a.DType);
        switch (a.DType)
        {
            case DType.Float32: Select(mask.Span<long>(), ac.Span<float>(), bc.Span<float>(), y.Span<float>()); break;
            case DType.Float64: Select(mask.Span<long>(), ac.Span<double>(), bc.Span<double>(), y.Span<double>()); break;
            default: Select(mask.Span<long>(), ac.Span<long>(), bc.Span<long>(), y.Span<long>()); break;
        }
        var node = Autograd.NeedsGrad(a, b) ? new WhereBackward(condition, a.ShapeArray, b.ShapeArray) : null;
        return Autograd.Record(OpNames.Where, y, node, a, b);
    }

    private static void Select<T>(ReadOnlySpan<long> mask, ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y)
    {
        for (int i = 0; i < y.Length; i++) y[i] = mask[i] != 0 ? a[i] : b[i];
    }
}

internal sealed class WhereBackward(Tensor condition, int[] aShape, int[] bShape) : Node
{
    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        var zero = Tensor.ZerosLike(g[0]!);
        return [Tensor.SumTo(Tensor.Where(condition, g[0]!, zero), aShape), Tensor.SumTo(Tensor.Where(condition, zero, g[0]!), bShape)];
    }
}
