namespace GradFlow.Kernels;

/// <summary>
/// Sizes of one NCHW Conv2d: input [N, C, H, W], weight [OutC, C / Groups, KH, KW], output [N, OutC, OH, OW]
/// with OH = (H + 2 PadH - DilH (KH - 1) - 1) / StrideH + 1 (PyTorch's formula). Created through
/// <see cref="Create"/>, which rejects inconsistent sizes with a message naming the op and the shapes.
/// </summary>
internal readonly record struct Conv2dGeometry(
    int N, int C, int H, int W, int OutC, int KH, int KW,
    int StrideH, int StrideW, int PadH, int PadW, int DilH, int DilW, int Groups, int OH, int OW)
{
    public int InPerGroup => C / Groups;

    public int OutPerGroup => OutC / Groups;

    /// <summary>Rows of the unfolded input: one per (input channel of the group, kernel row, kernel column).</summary>
    public int ColRows => InPerGroup * KH * KW;

    /// <summary>Columns of the unfolded input: one per output pixel.</summary>
    public int ColCols => OH * OW;

    public int InputLength => N * C * H * W;

    public int WeightLength => OutC * ColRows;

    public int OutputLength => N * OutC * OH * OW;

    /// <summary>A 1x1, stride-1, unpadded convolution is a plain GEMM on the input: no unfold needed.</summary>
    public bool IsPointwise => KH == 1 && KW == 1 && StrideH == 1 && StrideW == 1 && PadH == 0 && PadW == 0;

    public static int OutputSize(int input, int kernel, int stride, int pad, int dilation) =>
        ((input + (2 * pad) - (dilation * (kernel - 1)) - 1) / stride) + 1;

    public static Conv2dGeometry Create(string op, int n, int c, int h, int w, int outC, int kh, int kw,
        int strideH, int strideW, int padH, int padW, int dilH, int dilW, int groups)
    {
        string shapes = $"input [{n}, {c}, {h}, {w}], weight [{outC}, {(groups > 0 ? c / groups : c)}, {kh}, {kw}], " +
            $"stride ({strideH}, {strideW}), padding ({padH}, {padW}), dilation ({dilH}, {dilW}), groups {groups}";
        Require(n >= 0 && c > 0 && h > 0 && w > 0 && outC > 0 && kh > 0 && kw > 0, op, "sizes must be positive", shapes);
        Require(strideH > 0 && strideW > 0 && dilH > 0 && dilW > 0, op, "stride and dilation must be positive", shapes);
        Require(padH >= 0 && padW >= 0, op, "padding must be non-negative", shapes);
        Require(groups > 0 && c % groups == 0 && outC % groups == 0, op,
            "groups must divide both the input and the output channels", shapes);
        int oh = OutputSize(h, kh, strideH, padH, dilH);
        int ow = OutputSize(w, kw, strideW, padW, dilW);
        Require(oh > 0 && ow > 0, op, $"the output would be {oh} x {ow}; the dilated kernel is larger than the padded input", shapes);
        return new(n, c, h, w, outC, kh, kw, strideH, strideW, padH, padW, dilH, dilW, groups, oh, ow);
    }

    public void RequireLength(string op, string argument, int actual, int expected)
    {
        if (actual != expected)
        {
            Guard.ThrowArg(op, argument, $"{argument} has length {actual} but needs {expected} for input [{N}, {C}, {H}, {W}], " +
                $"weight [{OutC}, {InPerGroup}, {KH}, {KW}], output [{N}, {OutC}, {OH}, {OW}].");
        }
    }

    private static void Require(bool condition, string op, string problem, string shapes)
    {
        if (!condition) Guard.Throw(op, $"{problem}; got {shapes}.");
    }
}
