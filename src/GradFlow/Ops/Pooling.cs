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
        var (cols, n, c) = PoolColumns(x, g, double.NegativeInfinity, "MaxPool2d");
        return cols.Max(1).Values.Reshape(n, c, g.OutH, g.OutW);
    }

    /// <summary>Mean over each window; padding counts as zeros unless <paramref name="countIncludePad"/> is false.</summary>
    internal static Tensor AvgPool2d(Tensor x, Window2d g, bool countIncludePad)
    {
        var (cols, n, c) = PoolColumns(x, g, 0, "AvgPool2d");
        if (countIncludePad) return cols.Mean(1).Reshape(n, c, g.OutH, g.OutW);
        Tensor counts;
        using (Autograd.NoGrad()) counts = Im2Col(OnesLike(x.Narrow(0, 0, 1).Narrow(1, 0, 1)), g).Sum(1);
        return (cols.Sum(1) / counts).Reshape(n, c, g.OutH, g.OutW);
    }

    private static (Tensor Cols, int N, int C) PoolColumns(Tensor x, Window2d g, double pad, string op)
    {
        Guard.Rank(x, 4, op);
        if (g.Ph * 2 > g.Kh || g.Pw * 2 > g.Kw)
            Guard.Throw(op, $"padding {g.Ph}x{g.Pw} must be at most half the kernel {g.Kh}x{g.Kw}.");
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
