namespace GradFlow.Kernels;

/// <summary>
/// Sizes of one NCHW 2-D pooling with PyTorch's defaults (ceil_mode false): OH = (H + 2 PadH - KH) / StrideH + 1,
/// padding at most half the kernel. Window (oy, ox) starts at (oy StrideH - PadH, ox StrideW - PadW).
/// </summary>
internal readonly record struct Pool2dGeometry(
    int N, int C, int H, int W, int KH, int KW, int StrideH, int StrideW, int PadH, int PadW, int OH, int OW)
{
    public int Planes => N * C;

    public int InputLength => N * C * H * W;

    public int OutputLength => N * C * OH * OW;

    public static Pool2dGeometry Create(string op, int n, int c, int h, int w, int kh, int kw,
        int strideH, int strideW, int padH, int padW)
    {
        string shapes = $"input [{n}, {c}, {h}, {w}], kernel ({kh}, {kw}), stride ({strideH}, {strideW}), padding ({padH}, {padW})";
        Require(n >= 0 && c >= 0 && h > 0 && w > 0 && kh > 0 && kw > 0, op, "sizes must be positive", shapes);
        Require(strideH > 0 && strideW > 0, op, "stride must be positive", shapes);
        Require(padH >= 0 && padW >= 0 && padH <= kh / 2 && padW <= kw / 2, op,
            "padding must be between 0 and half the kernel size", shapes);
        int oh = ((h + (2 * padH) - kh) / strideH) + 1;
        int ow = ((w + (2 * padW) - kw) / strideW) + 1;
        Require(oh > 0 && ow > 0, op, $"the output would be {oh} x {ow}; the kernel is larger than the padded input", shapes);
        return new(n, c, h, w, kh, kw, strideH, strideW, padH, padW, oh, ow);
    }

    public void RequireLength(string op, string argument, int actual, int expected)
    {
        if (actual != expected)
        {
            Guard.ThrowArg(op, argument, $"{argument} has length {actual} but needs {expected} for input [{N}, {C}, {H}, {W}], " +
                $"output [{N}, {C}, {OH}, {OW}].");
        }
    }

    private static void Require(bool condition, string op, string problem, string shapes)
    {
        if (!condition) Guard.Throw(op, $"{problem}; got {shapes}.");
    }
}
