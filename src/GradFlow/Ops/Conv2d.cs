using GradFlow.Kernels;

namespace GradFlow;

/// <summary>Stride, padding, dilation and groups of a 2-d convolution.</summary>
internal readonly record struct ConvParams(int Sh, int Sw, int Ph, int Pw, int Dh, int Dw, int Groups);

// 2-d convolution on the span kernels (Kernels/Conv: im2col + GEMM), as three ops that are each
// other's derivatives. For y = conv(x, w): dx = convBackwardInput(dy, w), dw = convBackwardWeight(x, dy).
// Both are bilinear, and <a, convBackwardInput(g, w)> = <conv(a, w), g> = <a, ...>, so their own
// gradients are again conv, convBackwardInput and convBackwardWeight: derivatives of any order.
public sealed partial class Tensor
{
    /// <summary>2-d cross-correlation (torch.conv2d): x (N, C, H, W), weight (O, C/groups, kh, kw), bias (O).</summary>
    internal static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias, (int H, int W) stride, (int H, int W) padding,
        (int H, int W) dilation, int groups)
    {
        const string op = "Conv2d";
        Guard.SameDType(x, weight, op);
        Guard.Floating(x, op);
        if (x.Rank != 4 || weight.Rank != 4 || groups <= 0 || x.ShapeArray[1] != weight.ShapeArray[1] * groups || weight.ShapeArray[0] % groups != 0)
            Guard.Throw(op, $"input {Guard.Shape(x)} (N, C, H, W) does not fit weight {Guard.Shape(weight)} (O, C/groups, kh, kw) with groups={groups}.");
        new Window2d(weight.ShapeArray[2], weight.ShapeArray[3], stride.H, stride.W, padding.H, padding.W, dilation.H, dilation.W,
            x.ShapeArray[2], x.ShapeArray[3]).Validate(op);
        if (bias is not null && (bias.Rank != 1 || bias.ShapeArray[0] != weight.ShapeArray[0] || bias.DType != x.DType))
            Guard.Throw(op, $"bias {Guard.Shape(bias)} ({bias.DType}) must be one {x.DType} value per output channel of weight {Guard.Shape(weight)}.");
        var p = new ConvParams(stride.H, stride.W, padding.H, padding.W, dilation.H, dilation.W, groups);
        return ConvForward(x, weight, p, bias);
    }

    /// <summary>
    /// The transposed convolution (torch.conv_transpose2d) is the input-gradient of a convolution: x (N, Cin, H, W),
    /// weight (Cin, Cout/groups, kh, kw); out = (in - 1) stride - 2 pad + dilation (k - 1) + outputPadding + 1.
    /// </summary>
    internal static Tensor ConvTranspose2d(Tensor x, Tensor weight, Tensor? bias, (int H, int W) stride, (int H, int W) padding,
        (int H, int W) outputPadding, int groups, (int H, int W) dilation)
    {
        const string op = "ConvTranspose2d";
        Guard.SameDType(x, weight, op);
        Guard.Floating(x, op);
        if (x.Rank != 4 || weight.Rank != 4 || groups <= 0 || x.ShapeArray[1] != weight.ShapeArray[0] || weight.ShapeArray[0] % groups != 0)
            Guard.Throw(op, $"input {Guard.Shape(x)} (N, Cin, H, W) does not fit weight {Guard.Shape(weight)} (Cin, Cout/groups, kh, kw) with groups={groups}.");
        if (outputPadding.H >= Math.Max(stride.H, dilation.H) || outputPadding.W >= Math.Max(stride.W, dilation.W) || outputPadding.H < 0 || outputPadding.W < 0)
            Guard.Throw(op, $"output padding {outputPadding} must be smaller than the stride {stride} or the dilation {dilation}.");
        int kh = weight.ShapeArray[2], kw = weight.ShapeArray[3];
        int outH = (x.ShapeArray[2] - 1) * stride.H - 2 * padding.H + dilation.H * (kh - 1) + outputPadding.H + 1;
        int outW = (x.ShapeArray[3] - 1) * stride.W - 2 * padding.W + dilation.W * (kw - 1) + outputPadding.W + 1;
        if (outH <= 0 || outW <= 0) Guard.Throw(op, $"input {Guard.Shape(x)} with weight {Guard.Shape(weight)} gives an empty output {outH}x{outW}.");
        var p = new ConvParams(stride.H, stride.W, padding.H, padding.W, dilation.H, dilation.W, groups);
        int cout = groups * weight.ShapeArray[1];
        var y = ConvBackwardInput(x, weight, [x.ShapeArray[0], cout, outH, outW], p);
        return bias is null ? y : y + bias.Reshape(1, cout, 1, 1);
    }

    internal static Tensor ConvForward(Tensor x, Tensor w, ConvParams p, Tensor? bias = null)
    {
        int n = x.ShapeArray[0], c = x.ShapeArray[1], h = x.ShapeArray[2], wd = x.ShapeArray[3];
        int o = w.ShapeArray[0], kh = w.ShapeArray[2], kw = w.ShapeArray[3];
        int oh = Conv2dKernels.OutputSize(h, kh, p.Sh, p.Ph, p.Dh), ow = Conv2dKernels.OutputSize(wd, kw, p.Sw, p.Pw, p.Dw);
        var y = Empty([n, o, oh, ow], x.DType);
        Tensor xc = x.ContiguousRaw(), wc = w.ContiguousRaw();
        Tensor? bc = bias?.ContiguousRaw();
        if (x.DType == DType.Float32)
            Conv2dKernels.Forward(xc.Span<float>(), n, c, h, wd, wc.Span<float>(), o, kh, kw, bc is null ? [] : bc.Span<float>(), p.Sh, p.Sw, p.Ph, p.Pw, p.Dh, p.Dw, p.Groups, y.Span<float>());
        else
            Conv2dKernels.Forward(xc.Span<double>(), n, c, h, wd, wc.Span<double>(), o, kh, kw, bc is null ? [] : bc.Span<double>(), p.Sh, p.Sw, p.Ph, p.Pw, p.Dh, p.Dw, p.Groups, y.Span<double>());
        if (bias is null)
            return Autograd.Record(OpNames.Conv2d, y, Autograd.NeedsGrad(x, w) ? new ConvBackward(x, w, null, p) : null, x, w);
        return Autograd.Record(OpNames.Conv2d, y, Autograd.NeedsGrad([x, w, bias]) ? new ConvBackward(x, w, bias, p) : null, [x, w, bias]);
    }

    /// <summary>The gradient of conv(x, w) with respect to x of <paramref name="inputShape"/>, given the output gradient gy.</summary>
    internal static Tensor ConvBackwardInput(Tensor gy, Tensor w, int[] inputShape, ConvParams p)
    {
        int n = inputShape[0], c = inputShape[1], h = inputShape[2], wd = inputShape[3];
        int o = w.ShapeArray[0], kh = w.ShapeArray[2], kw = w.ShapeArray[3];
        var gx = Empty(inputShape, gy.DType);
        Tensor gc = gy.ContiguousRaw(), wc = w.ContiguousRaw();
        if (gy.DType == DType.Float32)
            Conv2dKernels.BackwardInput(gc.Span<float>(), n, c, h, wd, wc.Span<float>(), o, kh, kw, p.Sh, p.Sw, p.Ph, p.Pw, p.Dh, p.Dw, p.Groups, gx.Span<float>());
        else
            Conv2dKernels.BackwardInput(gc.Span<double>(), n, c, h, wd, wc.Span<double>(), o, kh, kw, p.Sh, p.Sw, p.Ph, p.Pw, p.Dh, p.Dw, p.Groups, gx.Span<double>());
        return Autograd.Record(OpNames.Conv2dBackwardInput, gx, Autograd.NeedsGrad(gy, w) ? new ConvBackwardInputBackward(gy, w, p) : null, gy, w);
    }

    /// <summary>The gradient of conv(x, w) with respect to w of <paramref name="weightShape"/>, given the output gradient gy.</summary>
    internal static Tensor ConvBackwardWeight(Tensor x, Tensor gy, int[] weightShape, ConvParams p)
    {
        int n = x.ShapeArray[0], c = x.ShapeArray[1], h = x.ShapeArray[2], wd = x.ShapeArray[3];
        int o = weightShape[0], kh = weightShape[2], kw = weightShape[3];
        var gw = Empty(weightShape, x.DType);
        Tensor xc = x.ContiguousRaw(), gc = gy.ContiguousRaw();
        if (x.DType == DType.Float32)
            Conv2dKernels.BackwardWeight(xc.Span<float>(), n, c, h, wd, gc.Span<float>(), o, kh, kw, p.Sh, p.Sw, p.Ph, p.Pw, p.Dh, p.Dw, p.Groups, gw.Span<float>(), []);
        else
            Conv2dKernels.BackwardWeight(xc.Span<double>(), n, c, h, wd, gc.Span<double>(), o, kh, kw, p.Sh, p.Sw, p.Ph, p.Pw, p.Dh, p.Dw, p.Groups, gw.Span<double>(), []);
        return Autograd.Record(OpNames.Conv2dBackwardWeight, gw, Autograd.NeedsGrad(x, gy) ? new ConvBackwardWeightBackward(x, gy, p) : null, x, gy);
    }

    /// <summary>Weight and bias gradients in one kernel pass over gy; only when no graph of the backward is recorded.</summary>
    internal static (Tensor GradWeight, Tensor GradBias) ConvBackwardWeightAndBias(Tensor x, Tensor gy, int[] weightShape, ConvParams p)
    {
        int n = x.ShapeArray[0], c = x.ShapeArray[1], h = x.ShapeArray[2], wd = x.ShapeArray[3];
        int o = weightShape[0], kh = weightShape[2], kw = weightShape[3];
        var gw = Empty(weightShape, x.DType);
        var gb = Empty([o], x.DType);
        Tensor xc = x.ContiguousRaw(), gc = gy.ContiguousRaw();
        if (x.DType == DType.Float32)
            Conv2dKernels.BackwardWeight(xc.Span<float>(), n, c, h, wd, gc.Span<float>(), o, kh, kw, p.Sh, p.Sw, p.Ph, p.Pw, p.Dh, p.Dw, p.Groups, gw.Span<float>(), gb.Span<float>());
        else
            Conv2dKernels.BackwardWeight(xc.Span<double>(), n, c, h, wd, gc.Span<double>(), o, kh, kw, p.Sh, p.Sw, p.Ph, p.Pw, p.Dh, p.Dw, p.Groups, gw.Span<double>(), gb.Span<double>());
        return (gw, gb);
    }
}

internal sealed class ConvBackward : Node
{
    private readonly ConvParams _p;
    private readonly bool _needX, _needW, _hasBias, _needB;

    public ConvBackward(Tensor x, Tensor w, Tensor? bias, ConvParams p)
    {
        (_p, _needX, _needW, _hasBias, _needB) = (p, x.RequiresGrad, w.RequiresGrad, bias is not null, bias?.RequiresGrad ?? false);
        Save(x, w);
    }

    public override string Name => "ConvolutionBackward";

    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        Tensor x = Saved(0), w = Saved(1), gy = g[0]!;
        Tensor? gx = _needX ? Tensor.ConvBackwardInput(gy, w, x.ShapeArray, _p) : null;
        if (!_hasBias) return [gx, _needW ? Tensor.ConvBackwardWeight(x, gy, w.ShapeArray, _p) : null];
        if (_needW && _needB && !Autograd.IsGradEnabled)
        {
            var (gw, gb) = Tensor.ConvBackwardWeightAndBias(x, gy, w.ShapeArray, _p);
            return [gx, gw, gb];
        }
        return [gx, _needW ? Tensor.ConvBackwardWeight(x, gy, w.ShapeArray, _p) : null, _needB ? gy.Sum([0, 2, 3]) : null];
    }
}

internal sealed class ConvBackwardInputBackward : Node
{
    private readonly ConvParams _p;
    private readonly bool _needGy, _needW;

    public ConvBackwardInputBackward(Tensor gy, Tensor w, ConvParams p)
    {
        (_p, _needGy, _needW) = (p, gy.RequiresGrad, w.RequiresGrad);
        Save(gy, w);
    }

    // gx = convBackwardInput(gy, w): d/dgy = conv(g, w), d/dw = convBackwardWeight(g, gy).
    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        Tensor gy = Saved(0), w = Saved(1), gg = g[0]!;
        return [_needGy ? Tensor.ConvForward(gg, w, _p) : null, _needW ? Tensor.ConvBackwardWeight(gg, gy, w.ShapeArray, _p) : null];
    }
}

internal sealed class ConvBackwardWeightBackward : Node
{
    private readonly ConvParams _p;
    private readonly bool _needX, _needGy;

    public ConvBackwardWeightBackward(Tensor x, Tensor gy, ConvParams p)
    {
        (_p, _needX, _needGy) = (p, x.RequiresGrad, gy.RequiresGrad);
        Save(x, gy);
    }

    // gw = convBackwardWeight(x, gy): d/dx = convBackwardInput(gy, g), d/dgy = conv(x, g).
    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        Tensor x = Saved(0), gy = Saved(1), gg = g[0]!;
        return [_needX ? Tensor.ConvBackwardInput(gy, gg, x.ShapeArray, _p) : null, _needGy ? Tensor.ConvForward(x, gg, _p) : null];
    }
}
