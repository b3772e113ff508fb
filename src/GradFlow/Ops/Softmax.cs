namespace GradFlow;

// Softmax and log-softmax along a dim. The kernel works on contiguous rows; another dim is moved
// last, computed, and moved back.
public sealed partial class Tensor
{
    /// <summary>exp(x) / sum(exp(x)) along a dim.</summary>
    public Tensor Softmax(int dim)
    {
        int d = Guard.Dim(dim, Rank, nameof(Softmax));
        var y = SoftmaxRaw(d, log: false);
        return Autograd.Record(OpNames.Softmax, y, Autograd.NeedsGrad(this) ? new SoftmaxBackward(y, d) : null, this);
    }

    /// <summary>x - log(sum(exp(x))) along a dim, computed stably.</summary>
    public Tensor LogSoftmax(int dim)
    {
        int d = Guard.Dim(dim, Rank, nameof(LogSoftmax));
        var y = SoftmaxRaw(d, log: true);
        return Autograd.Record(OpNames.LogSoftmax, y, Autograd.NeedsGrad(this) ? new LogSoftmaxBackward(y, d) : null, this);
    }

    private Tensor SoftmaxRaw(int d, bool log)
    {
        Guard.Floating(this, log ? nameof(LogSoftmax) : nameof(Softmax));
        if (Rank == 0) return log ? ZerosLike(this) : OnesLike(this);
        int last = Rank - 1;
        var x = d == last ? ContiguousRaw() : SwapRaw(d, last).ContiguousRaw();
        var y = Empty(x.ShapeArray, DType);
        int n = x.ShapeArray[last], rows = n == 0 ? 0 : x.NumEl / n;
        if (DType == DType.Float32) Kernels.Softmax.Forward(x.Span<float>(), y.Span<float>(), rows, n, log);
        else Kernels.Softmax.Forward(x.Span<double>(), y.Span<double>(), rows, n, log);
        return d == last ? y : y.SwapRaw(d, last).ContiguousRaw();
    }

    private Tensor SwapRaw(int a, int b)
    {
        var shape = (int[])ShapeArray.Clone();
        var strides = (int[])StridesArray.Clone();
        (shape[a], shape[b]) = (shape[b], shape[a]);
        (strides[a], strides[b]) = (strides[b], strides[a]);
        return AsStridedView(shape, strides, Offset);
    }
}

internal sealed class SoftmaxBackward : Node
{
    private readonly int _dim;

    public SoftmaxBackward(Tensor y, int dim)
    {
        _dim = dim;
        Save(y);
    }

    // dx = y * (g - sum(g * y)): one kernel (two passes a row) over the last dim when no graph is recorded.
    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        var y = Saved(0);
        if (!Autograd.IsGradEnabled && _dim == y.Rank - 1 && y.IsContiguous && g[0]!.DType == y.DType && y.NumEl > 0)
            return [Fused(g[0]!.ContiguousRaw(), y)];
        return [y * (g[0]! - (g[0]! * y).Sum(_dim, keepDim: true))];
    }

    private static Tensor Fused(Tensor g, Tensor y)
    {
        var dx = Tensor.Empty(y.ShapeArray, y.DType);
        int n = y.ShapeArray[^1], rows = y.NumEl / n;
        if (y.DType == DType.Float32) Kernels.Softmax.Backward(y.Span<float>(), g.Span<float>(), dx.Span<float>(), rows, n);
        else Kernels.Softmax.Backward(y.Span<double>(), g.Span<double>(), dx.Span<double>(), rows, n);
        return dx;
    }
}

internal sealed class LogSoftmaxBackward : Node
{
    private readonly int _dim;

    public LogSoftmaxBackward(Tensor y, int dim)
    {
        _dim = dim;
        Save(y);
    }

    // dx = g - softmax(x) * sum(g), with softmax(x) = exp(y)
    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        var y = Saved(0);
        return [g[0]! - y.Exp() * g[0]!.Sum(_dim, keepDim: true)];
    }
}
