namespace GradFlow;

/// <summary>
/// The sliding-window geometry of a 2-d convolution or pooling: kernel, stride, padding and dilation
/// per spatial dim, and the image and output sizes. out = floor((in + 2 pad - dilation (k - 1) - 1) / stride) + 1.
/// </summary>
internal readonly record struct Window2d(int Kh, int Kw, int Sh, int Sw, int Ph, int Pw, int Dh, int Dw, int H, int W)
{
    public int OutH => (H + 2 * Ph - Dh * (Kh - 1) - 1) / Sh + 1;
    public int OutW => (W + 2 * Pw - Dw * (Kw - 1) - 1) / Sw + 1;

    public void Validate(string op)
    {
        if (Kh <= 0 || Kw <= 0 || Sh <= 0 || Sw <= 0 || Dh <= 0 || Dw <= 0 || Ph < 0 || Pw < 0)
            Guard.Throw(op, $"kernel {Kh}x{Kw}, stride {Sh}x{Sw} and dilation {Dh}x{Dw} must be positive and padding {Ph}x{Pw} non-negative.");
        if (H + 2 * Ph < Dh * (Kh - 1) + 1 || W + 2 * Pw < Dw * (Kw - 1) + 1)
            Guard.Throw(op, $"the (dilated) kernel {Dh * (Kh - 1) + 1}x{Dw * (Kw - 1) + 1} is larger than the padded input {H + 2 * Ph}x{W + 2 * Pw}.");
    }
}

// im2col and its adjoint col2im (torch.nn.functional.unfold / fold), the building blocks of
// convolution and pooling: a convolution is then one matrix product per group. Each op is the
// other's backward (both are linear), so gradients of any order come for free.
public sealed partial class Tensor
{
    /// <summary>
    /// (N, C, H, W) to columns (N, C*kh*kw, L): column l holds the window at output position l, rows ordered
    /// (channel, kernel row, kernel col). Positions in the padding read <paramref name="padValue"/>.
    /// </summary>
    internal static Tensor Im2Col(Tensor x, Window2d g, double padValue = 0)
    {
        const string op = OpNames.Unfold;
        Guard.Floating(x, op);
        Guard.Rank(x, 4, op);
        g.Validate(op);
        int n = x.ShapeArray[0], c = x.ShapeArray[1];
        var cols = Empty([n, c * g.Kh * g.Kw, g.OutH * g.OutW], x.DType);
        var src = x.ContiguousRaw();
        if (x.DType == DType.Float32) Im2ColLoop(src.Span<float>(), cols.Span<float>(), n * c, g, (float)padValue);
        else Im2ColLoop(src.Span<double>(), cols.Span<double>(), n * c, g, padValue);
        return Autograd.Record(op, cols, Autograd.NeedsGrad(x) ? new Im2ColBackward(g) : null, x);
    }

    /// <summary>Columns (N, C*kh*kw, L) summed back into an (N, C, H, W) image: the adjoint of <see cref="Im2Col"/>.</summary>
    internal static Tensor Col2Im(Tensor cols, Window2d g)
    {
        const string op = OpNames.Fold;
        Guard.Floating(cols, op);
        Guard.Rank(cols, 3, op);
        g.Validate(op);
        int k = g.Kh * g.Kw;
        if (cols.ShapeArray[1] % k != 0 || cols.ShapeArray[2] != g.OutH * g.OutW)
            Guard.Throw(op, $"columns of shape {Guard.Shape(cols)} do not fit a {g.Kh}x{g.Kw} kernel with {g.OutH}x{g.OutW} positions.");
        int n = cols.ShapeArray[0], c = cols.ShapeArray[1] / k;
        var image = EmptyZeroed([n, c, g.H, g.W], cols.DType);
        var src = cols.ContiguousRaw();
        if (cols.DType == DType.Float32) Col2ImLoop(src.Span<float>(), image.Span<float>(), n * c, g);
        else Col2ImLoop(src.Span<double>(), image.Span<double>(), n * c, g);
        return Autograd.Record(op, image, Autograd.NeedsGrad(cols) ? new Col2ImBackward(g) : null, cols);
    }

    private static void Im2ColLoop<T>(ReadOnlySpan<T> x, Span<T> cols, int planes, Window2d g, T pad)
    {
        int oh = g.OutH, ow = g.OutW, plane = g.H * g.W, l = oh * ow;
        int row = 0;
        for (int p = 0; p < planes; p++)
        {
            var img = x.Slice(p * plane, plane);
            for (int i = 0; i < g.Kh; i++)
                for (int j = 0; j < g.Kw; j++, row++)
                {
                    var dst = cols.Slice(row * l, l);
                    for (int oy = 0; oy < oh; oy++)
                    {
                        int y = oy * g.Sh - g.Ph + i * g.Dh;
                        bool rowIn = (uint)y < (uint)g.H;
                        for (int ox = 0; ox < ow; ox++)
                        {
                            int xx = ox * g.Sw - g.Pw + j * g.Dw;
                            dst[oy * ow + ox] = rowIn && (uint)xx < (uint)g.W ? img[y * g.W + xx] : pad;
                        }
                    }
                }
        }
    }

    private static void Col2ImLoop<T>(ReadOnlySpan<T> cols, Span<T> image, int planes, Window2d g) where T : System.Numerics.INumber<T>
    {
        int oh = g.OutH, ow = g.OutW, plane = g.H * g.W, l = oh * ow;
        int row = 0;
        for (int p = 0; p < planes; p++)
        {
            var img = image.Slice(p * plane, plane);
            for (int i = 0; i < g.Kh; i++)
                for (int j = 0; j < g.Kw; j++, row++)
                {
                    var src = cols.Slice(row * l, l);
                    for (int oy = 0; oy < oh; oy++)
                    {
                        int y = oy * g.Sh - g.Ph + i * g.Dh;
                        if ((uint)y >= (uint)g.H) continue;
                        for (int ox = 0; ox < ow; ox++)
                        {
                            int xx = ox * g.Sw - g.Pw + j * g.Dw;
                            if ((uint)xx < (uint)g.W) img[y * g.W + xx] += src[oy * ow + ox];
                        }
                    }
                }
        }
    }
}

internal sealed class Im2ColBackward(Window2d g) : Node
{
    protected internal override Tensor?[] Backward(Tensor?[] grad) => [Tensor.Col2Im(grad[0]!, g)];
}

internal sealed class Col2ImBackward(Window2d g) : Node
{
    protected internal override Tensor?[] Backward(Tensor?[] grad) => [Tensor.Im2Col(grad[0]!, g)];
}
