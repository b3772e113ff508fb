using GradFlow.Kernels;

namespace GradFlow;

// 2-d pooling over (N, C, H, W), built on Im2Col: each plane becomes the columns of its windows,
// reduced along the kernel dim. Max pooling pads with -inf so padding never wins; its gradient goes
// to the first maximal element of each window (as PyTorch). Adaptive average pooling is two
// averaging matrices, P_h x P_w^T.
public sealed partial class Tensor
{
    /// <summary>Max over each window; x is (N, C, H, W).</summary>
    internal static Tensor MaxPool2d(Tensor x, Window2d g)
    {
        CheckPool(x, g, "MaxPool2d");
        if (x.Rank == 4 && g.Dh == 1 && g.Dw == 1 && x.IsContiguous && x.DType != DType.Int64 && g.Ph * 2 <= g.Kh && g.Pw * 2 <= g.Kw)
            return MaxPool2dDirect(x, g);
        var (cols, n, c) = PoolColumns(x, g, double.NegativeInfinity, "MaxPool2d");
        return cols.Max(1).Values.Reshape(n, c, g.OutH, g.OutW);
    }

    // Undilated max pooling straight on the planes (Kernels/Conv/Pool2dCore): no window columns, and the
    // winners' plane offsets are kept for backward. Same winners as the column path: the first maximum, NaN wins.
    // The int32 offsets live in an int64 tensor of half the length, so a training step's arena recycles them
    // (a new int[] per step was a large-object allocation: 1.4 MB for the cnn bench's first pooling).
    // Without a graph (an evaluation pass) the winners go to a pooled scratch array instead: no tensor for them, so a
    // forward outside an arena leaves 0.9 MB less large-object garbage a step on the cnn bench.
    private static Tensor MaxPool2dDirect(Tensor x, Window2d g)
    {
        int n = x.ShapeArray[0], c = x.ShapeArray[1];
        var y = Empty([n, c, g.OutH, g.OutW], x.DType);
        if (!Autograd.NeedsGrad(x))
        {
            int[] scratch = System.Buffers.ArrayPool<int>.Shared.Rent(y.NumEl);
            MaxPool2dKernel(x, g, y, scratch.AsSpan(0, y.NumEl));
            System.Buffers.ArrayPool<int>.Shared.Return(scratch);
            return Autograd.Record(OpNames.MaxPool2d, y, null, x);
        }
        var indices = Empty([(y.NumEl + 1) / 2], DType.Int64);
        MaxPool2dKernel(x, g, y, MaxPool2dBackward.Offsets(indices, y.NumEl));
        return Autograd.Record(OpNames.MaxPool2d, y, new MaxPool2dBackward(x.ShapeArray, g, indices, y.NumEl), x);
    }

    private static void MaxPool2dKernel(Tensor x, Window2d g, Tensor y, Span<int> at)
    {
        int n = x.ShapeArray[0], c = x.ShapeArray[1];
        if (x.DType == DType.Float32)
            Pool2dKernels.MaxPool2dForward(x.Span<float>(), n, c, g.H, g.W, g.Kh, g.Kw, g.Sh, g.Sw, g.Ph, g.Pw, y.Span<float>(), at);
        else
            Pool2dKernels.MaxPool2dForward(x.Span<double>(), n, c, g.H, g.W, g.Kh, g.Kw, g.Sh, g.Sw, g.Ph, g.Pw, y.Span<double>(), at);
    }

    /// <summary>Mean over each window; padding counts as zeros unless <paramref name="countIncludePad"/> is false.</summary>
    internal static Tensor AvgPool2d(Tensor x, Window2d g, bool countIncludePad)
    {
        CheckPool(x, g, "AvgPool2d");
        var (cols, n, c) = PoolColumns(x, g, 0, "AvgPool2d");
        if (countIncludePad) return cols.Mean(1).Reshape(n, c, g.OutH, g.OutW);
        Tensor counts;
        using (Autograd.NoGrad()) counts = Im2Col(OnesLike(x.Narrow(0, 0, 1).Narrow(1, 0, 1)), g).Sum(1);
        return (cols.Sum(1) / counts).Reshape(n, c, g.OutH, g.OutW);
    }

    // As PyTorch checks pooling: positive kernel, stride and dilation; padding at most half the kernel; a
    // window that fits the padded input (so the output is at least 1x1, never a window hanging off the edge).
    // Checked before any size is computed from them, so a zero stride is this error, not a DivideByZeroException.
    private static void CheckPool(Tensor x, Window2d g, string op)
    {
        Guard.Rank(x, 4, op);
        g.Validate(op);
        if (g.Ph * 2 > g.Kh || g.Pw * 2 > g.Kw)
            Guard.Throw(op, $"padding {g.Ph}x{g.Pw} must be at most half the kernel {g.Kh}x{g.Kw}.");
    }

    private static (Tensor Cols, int N, int C) PoolColumns(Tensor x, Window2d g, double pad, string op)
    {
        int n = x.ShapeArray[0], c = x.ShapeArray[1];
        return (Im2Col(x.Reshape(n * c, 1, g.H, g.W), g, pad), n, c);
    }

    /// <summary>Average pooling to a fixed output size: output cell i covers rows floor(i H / oh) to ceil((i + 1) H / oh).</summary>
    internal static Tensor AdaptiveAvgPool2d(Tensor x, int outH, int outW)
    {
        const string op = "AdaptiveAvgPool2d";
        Guard.Rank(x, 4, op);
        if (outH <= 0 || outW <= 0) Guard.Throw(op, $"output size {outH}x{outW} must be positive.");
        var ph = AveragingMatrix(x.ShapeArray[2], outH, x.DType);
        var pw = AveragingMatrix(x.ShapeArray[3], outW, x.DType);
        return ph.MatMul(x).MatMul(pw.T);
    }

    private static Tensor AveragingMatrix(int size, int outSize, DType dtype)
    {
        var m = new double[outSize * size];
        for (int i = 0; i < outSize; i++)
        {
            int start = i * size / outSize, end = ((i + 1) * size + outSize - 1) / outSize;
            for (int k = start; k < end; k++) m[i * size + k] = 1.0 / (end - start);
        }
        return FromArray(m, outSize, size).To(dtype);
    }
}

internal sealed class MaxPool2dBackward(int[] inputShape, Window2d g, Tensor indices, int count) : Node
{
    /// <summary>The first <paramref name="count"/> int32 plane offsets stored in the int64 tensor <paramref name="storage"/>.</summary>
    internal static Span<int> Offsets(Tensor storage, int count) =>
        System.Runtime.InteropServices.MemoryMarshal.Cast<long, int>(storage.Span<long>())[..count];

    // Each output's gradient goes to its window's winner: a scatter-add into each input plane, by the span kernel. With
    // createGraph the kernel's result is recorded as an op whose backward gathers at the winners
    // (MaxPool2dGradBackward); a strided gradient takes ScatterAdd, itself differentiable (its backward gathers).
    protected internal override Tensor?[] Backward(Tensor?[] grads)
    {
        var gy = grads[0]!;
        int n = inputShape[0], c = inputShape[1];
        ReadOnlySpan<int> offsets = Offsets(indices, count);
        if (gy.IsContiguous)
        {
            var gx = Tensor.Empty(inputShape, gy.DType);
            if (gy.DType == DType.Float32)
                Pool2dKernels.MaxPool2dBackward(gy.Span<float>(), offsets, n, c, g.H, g.W, g.Kh, g.Kw, g.Sh, g.Sw, g.Ph, g.Pw, gx.Span<float>());
            else
                Pool2dKernels.MaxPool2dBackward(gy.Span<double>(), offsets, n, c, g.H, g.W, g.Kh, g.Kw, g.Sh, g.Sw, g.Ph, g.Pw, gx.Span<double>());
            if (!Autograd.IsGradEnabled) return [gx];
            return [Autograd.Record(OpNames.MaxPool2dBackward, gx, Autograd.NeedsGrad(gy) ? new MaxPool2dGradBackward(inputShape, g, indices, count) : null, gy)];
        }
        var planes = Tensor.Zeros([n * c, g.H * g.W], gy.DType).ScatterAdd(1, Index(n, c, g, indices, count), gy.Reshape(n * c, g.OutH * g.OutW));
        return [planes.Reshape(inputShape)];
    }

    // The winners' plane offsets as the int64 index of Gather/ScatterAdd along the flattened planes (rented like any tensor of the backward).
    internal static Tensor Index(int n, int c, Window2d g, Tensor indices, int count)
    {
        var index = Tensor.Empty([n * c, g.OutH * g.OutW], DType.Int64);
        var wide = index.Span<long>();
        ReadOnlySpan<int> offsets = Offsets(indices, count);
        for (int i = 0; i < count; i++) wide[i] = offsets[i];
        return index;
    }
}

// The node of max pooling's input gradient, recorded under createGraph: gx is linear in gy (each output's gradient
// copied to its window's winner, the winners fixed by the forward), so d/dgy reads the incoming gradient at the
// winners: a typed gather without a graph, Gather on the int64 index when recording (third order) or strided.
internal sealed class MaxPool2dGradBackward(int[] inputShape, Window2d g, Tensor indices, int count) : Node
{
    protected internal override Tensor?[] Backward(Tensor?[] grads)
    {
        var ggx = grads[0]!;
        int n = inputShape[0], c = inputShape[1];
        if (Autograd.IsGradEnabled || !ggx.IsContiguous)
        {
            var planes = ggx.Reshape(n * c, g.H * g.W);
            return [planes.Gather(1, MaxPool2dBackward.Index(n, c, g, indices, count)).Reshape(n, c, g.OutH, g.OutW)];
        }
        var ggy = Tensor.Empty([n, c, g.OutH, g.OutW], ggx.DType);
        ReadOnlySpan<int> offsets = MaxPool2dBackward.Offsets(indices, count);
        if (ggx.DType == DType.Float32) GatherWinners(ggx.Span<float>(), offsets, g.H * g.W, g.OutH * g.OutW, ggy.Span<float>());
        else GatherWinners(ggx.Span<double>(), offsets, g.H * g.W, g.OutH * g.OutW, ggy.Span<double>());
        return [ggy];
    }

    private static void GatherWinners<T>(ReadOnlySpan<T> planes, ReadOnlySpan<int> offsets, int plane, int outPlane, Span<T> dst)
    {
        for (int p = 0, o = 0; o < dst.Length; p++)
        {
            var src = planes.Slice(p * plane, plane);
            for (int end = o + outPlane; o < end; o++) dst[o] = src[offsets[o]];
        }
    }
}
