using GradFlow.Kernels;

namespace GradFlow;

/// <summary>
/// The bridge from tensors to span kernels: allocate the output, pick the contiguous fast path or
/// the strided loop, dispatch on dtype. No autograd here; the op files add that.
/// </summary>
public sealed partial class Tensor
{
    /// <summary>
    /// y = op(x) elementwise. While a listener has armed activation measures
    /// (<see cref="Instrumentation.ActivationsArmed"/>) and asks for this op's output, the same pass measures it as it
    /// writes it, as asked (<see cref="Instrumentation.RequestActivation"/>): sums and the count outside a band, or
    /// sums and each unit's maximum, a few rows at a time.
    /// </summary>
    internal static Tensor MapUnary<TOp>(Tensor x, string op) where TOp : struct, IUnaryOp
    {
        Guard.Floating(x, op);
        if (Instrumentation.ActivationsArmed && x.DType == DType.Float32 && x.IsContiguous && x.NumEl > 0)
        {
            var request = Instrumentation.RequestActivation(op, x);
            if (request.Kind != ActivationMeasureKind.None) return MapMeasured<TOp>(x, request);
        }
        var y = EmptyLike(x);
        bool flat = x.IsContiguous;
        if (x.DType == DType.Float32)
        {
            if (flat) ElementwiseParallel.Unary<TOp, float>(x.Data<float>(), x.Offset, y.Data<float>(), 0, y.NumEl);
            else Elementwise.Unary<TOp, float>(x.ShapeArray, y.Data<float>(), y.StridesArray, 0, x.Data<float>(), x.StridesArray, x.Offset);
        }
        else
        {
            if (flat) ElementwiseParallel.Unary<TOp, double>(x.Data<double>(), x.Offset, y.Data<double>(), 0, y.NumEl);
            else Elementwise.Unary<TOp, double>(x.ShapeArray, y.Data<double>(), y.StridesArray, 0, x.Data<double>(), x.StridesArray, x.Offset);
        }
        return y;
    }

    // The measuring passes of MapUnary, for a non-empty contiguous float x.
    private static Tensor MapMeasured<TOp>(Tensor x, in ActivationRequest request) where TOp : struct, IUnaryOp
    {
        var y = EmptyLike(x);
        if (request.Kind == ActivationMeasureKind.UnitMaxima)
        {
            if ((long)request.Outer * request.Units * request.Inner != y.NumEl)
                throw new InvalidOperationException($"activation measure: units ({request.Outer}, {request.Units}, {request.Inner}) do not cover an output of shape {Guard.Shape(y)}.");
            var max = Instrumentation.UnitMaxBuffer(request.Units);
            var (s, q) = StatisticsParallel.UnaryWithUnitMax<TOp>(x.Data<float>(), x.Offset, y.Data<float>(), 0, request.Outer, request.Units, request.Inner, max);
            Instrumentation.RecordActivation(new ActivationMeasure(y, request, s, q, UnitMax: max));
            return y;
        }
        var (sum, sumSq, outside) = StatisticsParallel.UnaryWithMoments<TOp>(x.Data<float>(), x.Offset, y.Data<float>(), 0, y.NumEl, request.Lo, request.Hi);
        Instrumentation.RecordActivation(new ActivationMeasure(y, request, sum, sumSq, outside));
        return y;
    }

    internal static Tensor MapBinary<TOp>(Tensor a, Tensor b, string op) where TOp : struct, IBinaryOp
    {
        Guard.NotNull(a, op, "input");
        Guard.NotNull(b, op, "other");
        Guard.SameDType(a, b, op);
        if (Shapes.Equal(a.ShapeArray, b.ShapeArray) && a.IsContiguous && b.IsContiguous)
        {
            var y = EmptyLike(a);
            switch (a.DType)
            {
                case DType.Float32: ElementwiseParallel.Binary<TOp, float>(a.Data<float>(), a.Offset, b.Data<float>(), b.Offset, y.Data<float>(), 0, y.NumEl); break;
                case DType.Float64: ElementwiseParallel.Binary<TOp, double>(a.Data<double>(), a.Offset, b.Data<double>(), b.Offset, y.Data<double>(), 0, y.NumEl); break;
                default: Elementwise.Binary<TOp, long>(a.Span<long>(), b.Span<long>(), y.Span<long>()); break;
            }
            return y;
        }
        var shape = Shapes.Broadcast(a.ShapeArray, b.ShapeArray, op);
        var result = Empty(shape, a.DType);
        BinaryInto<TOp>(result, a, b);
        return result;
    }

    /// <summary>
    /// An uninitialised tensor shaped like <paramref name="x"/>; a contiguous x lends its shape and stride arrays
    /// (never mutated once made), one allocation fewer per op.
    /// </summary>
    internal static Tensor EmptyLike(Tensor x) =>
        x.IsContiguous
            ? new Tensor(Storage.Allocate(x.DType, x.NumEl, zeroed: false), x.ShapeArray, x.StridesArray, 0)
            : Empty(x.ShapeArray, x.DType);

    /// <summary>dst = a op b, with a and b broadcast to dst's shape (dst may alias a for in-place ops).</summary>
    internal static void BinaryInto<TOp>(Tensor dst, Tensor a, Tensor b) where TOp : struct, IBinaryOp
    {
        var shape = dst.ShapeArray;
        var sa = Shapes.BroadcastStrides(a.ShapeArray, a.StridesArray, shape);
        var sb = Shapes.BroadcastStrides(b.ShapeArray, b.StridesArray, shape);
        switch (dst.DType)
        {
            case DType.Float32: Elementwise.Binary<TOp, float>(shape, dst.Data<float>(), dst.StridesArray, dst.Offset, a.Data<float>(), sa, a.Offset, b.Data<float>(), sb, b.Offset); break;
            case DType.Float64: Elementwise.Binary<TOp, double>(shape, dst.Data<double>(), dst.StridesArray, dst.Offset, a.Data<double>(), sa, a.Offset, b.Data<double>(), sb, b.Offset); break;
            default: Elementwise.Binary<TOp, long>(shape, dst.Data<long>(), dst.StridesArray, dst.Offset, a.Data<long>(), sa, a.Offset, b.Data<long>(), sb, b.Offset); break;
        }
    }

    /// <summary>
    /// An activation's input gradient op(g, y) in one pass, when no graph is being recorded and g and the saved
    /// output y are contiguous float tensors of one shape; null otherwise (the caller composes tensor ops). While a
    /// listener wants the backward flow (<see cref="Instrumentation.FlowArmed"/>), the same pass sums the squares of g and
    /// of the result for it.
    /// </summary>
    internal static Tensor? FusedGrad<TOp>(Tensor g, Tensor y) where TOp : struct, IBinaryOp
    {
        if (Autograd.IsGradEnabled || !FusibleGrad(g, y)) return null;
        if (g.DType != DType.Float32 || !Instrumentation.FlowArmed) return RawGrad<TOp>(g, y);
        var dx = EmptyLike(g);
        var (gs, ds) = StatisticsParallel.GradAndSquares<TOp>(g.Data<float>(), g.Offset, y.Data<float>(), y.Offset, dx.Data<float>(), 0, dx.NumEl);
        Instrumentation.RecordFlow(g, gs, dx, ds);
        return dx;
    }

    /// <summary>Whether <see cref="RawGrad{TOp}"/> takes g and y: contiguous float tensors of one shape and dtype.</summary>
    internal static bool FusibleGrad(Tensor g, Tensor y) =>
        g.DType == y.DType && g.DType.IsFloatingPoint() && Shapes.Equal(g.ShapeArray, y.ShapeArray) && g.IsContiguous && y.IsContiguous;

    /// <summary>op(g, y) in one pass, recorded by no graph and measured for no listener; g and y as <see cref="FusibleGrad"/> requires.</summary>
    internal static Tensor RawGrad<TOp>(Tensor g, Tensor y) where TOp : struct, IBinaryOp
    {
        var dx = EmptyLike(g);
        const int grain = ElementwiseParallel.MinPerThreadActivationGrad;
        if (g.DType == DType.Float32) ElementwiseParallel.Binary<TOp, float>(g.Data<float>(), g.Offset, y.Data<float>(), y.Offset, dx.Data<float>(), 0, dx.NumEl, grain);
        else ElementwiseParallel.Binary<TOp, double>(g.Data<double>(), g.Offset, y.Data<double>(), y.Offset, dx.Data<double>(), 0, dx.NumEl, grain);
        return dx;
    }

    /// <summary>y = x op s (or s op x when <paramref name="scalarLeft"/>).</summary>
    internal static Tensor MapScalar<TOp>(Tensor x, double s, bool scalarLeft, string op) where TOp : struct, IBinaryOp
    {
        Guard.NotNull(x, op, "input");
        if (x.DType == DType.Int64 && !double.IsInteger(s))
            Guard.ThrowArg(op, "other", $"the scalar {s} is not an integer, so it cannot apply to an int64 tensor of shape {Guard.Shape(x)}; convert with To(DType.Float32) first.");
        var c = x.IsContiguous ? x : x.ContiguousRaw();
        var y = EmptyLike(c);
        switch (x.DType)
        {
            case DType.Float32:
                if (scalarLeft) Elementwise.BinaryScalarLeft<TOp, float>((float)s, c.Span<float>(), y.Span<float>());
                else Elementwise.BinaryScalarRight<TOp, float>(c.Span<float>(), (float)s, y.Span<float>());
                break;
            case DType.Float64:
                if (scalarLeft) Elementwise.BinaryScalarLeft<TOp, double>(s, c.Span<double>(), y.Span<double>());
                else Elementwise.BinaryScalarRight<TOp, double>(c.Span<double>(), s, y.Span<double>());
                break;
            default:
                if (scalarLeft) Elementwise.BinaryScalarLeft<TOp, long>((long)s, c.Span<long>(), y.Span<long>());
                else Elementwise.BinaryScalarRight<TOp, long>(c.Span<long>(), (long)s, y.Span<long>());
                break;
        }
        return y;
    }

    /// <summary>Copies src (broadcast to dst's shape) into dst, elementwise through strides.</summary>
    internal static void CopyRaw(Tensor src, Tensor dst)
    {
        var ss = Shapes.BroadcastStrides(src.ShapeArray, src.StridesArray, dst.ShapeArray);
        switch (dst.DType)
        {
            case DType.Float32: Elementwise.Copy(dst.ShapeArray, dst.Data<float>(), dst.StridesArray, dst.Offset, src.Data<float>(), ss, src.Offset); break;
            case DType.Float64: Elementwise.Copy(dst.ShapeArray, dst.Data<double>(), dst.StridesArray, dst.Offset, src.Data<double>(), ss, src.Offset); break;
            default: Elementwise.Copy(dst.ShapeArray, dst.Data<long>(), dst.StridesArray, dst.Offset, src.Data<long>(), ss, src.Offset); break;
        }
    }

    /// <summary>A contiguous copy (or this tensor if already contiguous), with no autograd.</summary>
    internal Tensor ContiguousRaw()
    {
        if (IsContiguous) return this;
        var y = Empty(ShapeArray, DType);
        CopyRaw(this, y);
        return y;
    }
}
