namespace GradFlow;

// The affine map of a linear layer as one op, as PyTorch's addmm: y = x W^T + b over the last dim of x.
// The bias is written into y first and GEMM accumulates the product onto it (beta = 1), so the forward is
// one GEMM and one row broadcast, and the graph holds one node instead of Transpose, MatMul and Add.
public sealed partial class Tensor
{
    /// <summary>
    /// x W^T + b for x (..., in), W (out, in), b (out) or null, one node; null when the dtypes or shapes
    /// need the general path (Functional.Linear then composes MatMul and Add).
    /// </summary>
    internal static Tensor? Linear(Tensor x, Tensor w, Tensor? b)
    {
        int outF = w.ShapeArray[0], inF = w.ShapeArray[1];
        if (x.DType != w.DType || !x.DType.IsFloatingPoint() || inF == 0 || x.NumEl == 0
            || (b is not null && (b.Rank != 1 || b.ShapeArray[0] != outF || b.DType != x.DType)))
            return null;
        // A strided input (batch_first attention transposes its input) is copied once, which costs far less than
        // the batched product's copies of an expanded weight. The node checks x's version and reads the copy.
        var xc = x.ContiguousRaw();
        int rows = x.NumEl / inF;
        var shape = (int[])x.ShapeArray.Clone();
        shape[^1] = outF;
        var y = Empty(shape, x.DType);
        var y2 = y.AsStridedView([rows, outF], [outF, 1], 0);
        var wt = w.AsStridedView([inF, outF], [w.StridesArray[1], w.StridesArray[0]], w.Offset);
        if (b is not null) FillRows(y, b.ContiguousRaw(), rows, outF);
        Mm(xc.AsStridedView([rows, inF], [inF, 1], xc.Offset), wt, y2, accumulate: b is not null);
        bool needs = b is null ? Autograd.NeedsGrad(x, w) : Autograd.NeedsGrad([x, w, b]);
        var node = needs ? new LinearBackward(x, xc, w, b) : null;
        return b is null ? Autograd.Record(OpNames.Linear, y, node, x, w) : Autograd.Record(OpNames.Linear, y, node, [x, w, b]);
    }

    private static void FillRows(Tensor y, Tensor b, int rows, int n)
    {
        if (y.DType == DType.Float32)
        {
            var src = b.Span<float>();
            var dst = y.Span<float>();
            for (int r = 0; r < rows; r++) src.CopyTo(dst.Slice(r * n, n));
        }
        else
        {
            var src = b.Span<double>();
            var dst = y.Span<double>();
            for (int r = 0; r < rows; r++) src.CopyTo(dst.Slice(r * n, n));
        }
    }
}

internal sealed class LinearBackward : Node
{
    private readonly bool _needX, _needW, _needB, _hasBias;

    public LinearBackward(Tensor x, Tensor xc, Tensor w, Tensor? b)
    {
        (_needX, _needW) = (x.RequiresGrad, w.RequiresGrad);
        (_hasBias, _needB) = (b is not null, b is not null && b.RequiresGrad);
        if (ReferenceEquals(x, xc)) Save(x, w);
        else Save(x, w, xc);
    }

    public override string Name => "AddmmBackward";

    // y = x W^T + b, with X and dY flattened to (rows, features): dX = dY W, dW = dY^T X, db = column sums of dY.
    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        Tensor w = Saved(1), gy = g[0]!;
        // A strided input's contiguous copy, unless the backward is recorded: the copy is not in the graph, x is.
        var x = SavedCount == 3 && !Autograd.IsGradEnabled ? Saved(2) : Saved(0);
        int outF = w.ShapeArray[0], inF = w.ShapeArray[1];
        var gy2 = gy.Rank == 2 ? gy : gy.Reshape(-1, outF);
        Tensor? gx = _needX ? gy.MatMul(w) : null;
        Tensor? gw = _needW ? gy2.T.MatMul(x.Rank == 2 ? x : x.Reshape(-1, inF)) : null;
        if (!_hasBias) return [gx, gw];
        return [gx, gw, _needB ? gy2.Sum(0) : null];
    }
}
