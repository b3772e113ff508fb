namespace GradFlow;

// Layer normalisation as one op (PyTorch's native_layer_norm): the forward keeps each row's mean and 1/std, so the
// backward is two passes per row (Kernels/LayerNorm.cs) instead of the dozen broadcast ops of the composed formula.
public sealed partial class Tensor
{
    /// <summary>
    /// x normalised over its trailing <paramref name="normalizedShape"/>, times <paramref name="weight"/> plus
    /// <paramref name="bias"/> (each of that shape, or null); one node. Null when the dtypes or shapes need the general
    /// path (Functional.LayerNorm then composes Mean, Sub, Mul, Div).
    /// </summary>
    internal static Tensor? LayerNorm(Tensor x, int[] normalizedShape, Tensor? weight, Tensor? bias, double eps)
    {
        int n = Shapes.Count(normalizedShape);
        if (!x.DType.IsFloatingPoint() || n == 0 || x.NumEl == 0
            || (weight is not null && (weight.DType != x.DType || !Shapes.Equal(weight.ShapeArray, normalizedShape)))
            || (bias is not null && (bias.DType != x.DType || !Shapes.Equal(bias.ShapeArray, normalizedShape))))
            return null;
        var xc = x.ContiguousRaw();
        var wc = weight?.ContiguousRaw();
        var bc = bias?.ContiguousRaw();
        int rows = x.NumEl / n;
        var y = Empty(x.ShapeArray, x.DType);
        var mean = Empty([rows], x.DType);
        var rstd = Empty([rows], x.DType);
        if (x.DType == DType.Float32)
            Kernels.LayerNorm.Forward(xc.Span<float>(), wc is null ? default : wc.Span<float>(), bc is null ? default : bc.Span<float>(),
                y.Span<float>(), mean.Span<float>(), rstd.Span<float>(), rows, n, (float)eps);
        else
            Kernels.LayerNorm.Forward(xc.Span<double>(), wc is null ? default : wc.Span<double>(), bc is null ? default : bc.Span<double>(),
                y.Span<double>(), mean.Span<double>(), rstd.Span<double>(), rows, n, eps);
        Tensor[] inputs = (weight, bias) switch
        {
            (null, null) => [x],
            (not null, null) => [x, weight],
            (null, not null) => [x, bias],
            _ => [x, weight, bias],
        };
        var node = Autograd.NeedsGrad(inputs) ? new LayerNormBackward(x, xc, weight, bias, mean, rstd, normalizedShape, eps) : null;
        return Autograd.Record(OpNames.LayerNorm, y, node, inputs);
    }
}

internal sealed class LayerNormBackward : Node
{
    private readonly int _n;
    private readonly int[] _shape;
    private readonly double _eps;
    private readonly bool _hasWeight, _hasBias, _needX, _needW, _needB;

    public LayerNormBackward(Tensor x, Tensor xc, Tensor? weight, Tensor? bias, Tensor mean, Tensor rstd, int[] normalizedShape, double eps)
    {
        (_shape, _n, _eps) = ((int[])normalizedShape.Clone(), Shapes.Count(normalizedShape), eps);
        (_hasWeight, _hasBias) = (weight is not null, bias is not null);
        (_needX, _needW, _needB) = (x.RequiresGrad, weight is { RequiresGrad: true }, bias is { RequiresGrad: true });
        // Saved: the input (in the graph, for createGraph), its contiguous copy, mean, rstd, and the weight.
        if (weight is null) Save(x, xc, mean, rstd);
        else Save(x, xc, mean, rstd, weight);
    }

    public override string Name => "NativeLayerNormBackward";

    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        var gy = g[0]!;
        Tensor? weight = _hasWeight ? Saved(4) : null;
        var (dx, dw, db) = Autograd.IsGradEnabled ? Composed(gy, Saved(0), weight) : Fused(gy, Saved(1), Saved(2), Saved(3), weight);
        return (_hasWeight, _hasBias) switch
        {
            (false, false) => [dx],
            (true, false) => [dx, dw],
            (false, true) => [dx, db],
            _ => [dx, dw, db],
        };
    }

    private (Tensor? Dx, Tensor? Dw, Tensor? Db) Fused(Tensor gy, Tensor xc, Tensor mean, Tensor rstd, Tensor? weight)
    {
        var gc = gy.ContiguousRaw();
        int rows = xc.NumEl / _n;
        var dx = _needX ? Tensor.Empty(xc.ShapeArray, xc.DType) : null;
        var dw = _needW ? Tensor.ZerosLike(weight!) : null;
        var db = _needB ? Tensor.Zeros(_shape, xc.DType) : null;
        var wc = weight?.ContiguousRaw();
        if (xc.DType == DType.Float32)
            Kernels.LayerNorm.Backward(gc.Span<float>(), xc.Span<float>(), mean.Span<float>(), rstd.Span<float>(),
                wc is null ? default : wc.Span<float>(), dx is null ? default : dx.Span<float>(),
                dw is null ? default : dw.Span<float>(), db is null ? default : db.Span<float>(), rows, _n);
        else
            Kernels.LayerNorm.Backward(gc.Span<double>(), xc.Span<double>(), mean.Span<double>(), rstd.Span<double>(),
                wc is null ? default : wc.Span<double>(), dx is null ? default : dx.Span<double>(),
                dw is null ? default : dw.Span<double>(), db is null ? default : db.Span<double>(), rows, _n);
        return (dx, dw, db);
    }

    // Under createGraph: the same formula in differentiable tensor ops, with the statistics recomputed from x so
    // that second derivatives see their dependence on x.
    private (Tensor? Dx, Tensor? Dw, Tensor? Db) Composed(Tensor gy, Tensor x, Tensor? weight)
    {
        int k = _shape.Length, lead = x.Rank - k;
        var dims = Enumerable.Range(lead, k).ToArray();
        var leadDims = Enumerable.Range(0, lead).ToArray();
        var centred = x - x.Mean(dims, keepDim: true);
        var rstd = ((centred * centred).Mean(dims, keepDim: true) + _eps).Sqrt().Reciprocal();
        var xhat = centred * rstd;
        var gw = weight is null ? gy : gy * weight;
        Tensor? dx = _needX ? rstd * (gw - gw.Mean(dims, keepDim: true) - xhat * (gw * xhat).Mean(dims, keepDim: true)) : null;
        Tensor? dw = _needW ? SumLeading(gy * xhat, leadDims) : null;
        Tensor? db = _needB ? SumLeading(gy, leadDims) : null;
        return (dx, dw, db);
    }

    private static Tensor SumLeading(Tensor t, int[] leadDims) => leadDims.Length == 0 ? t : t.Sum(leadDims);
}
