using System.Numerics;

namespace GradFlow.Kernels;

/// <summary>
/// NCHW 2-D convolution on spans, with stride, zero padding, dilation and groups (PyTorch's Conv2d
/// semantics): input [n, c, h, w], weight [outC, c / groups, kh, kw], bias [outC] or empty,
/// output [n, outC, oh, ow] with oh = <see cref="OutputSize"/>(h, kh, strideH, padH, dilH).
/// Every method overwrites its output span.
/// </summary>
public static class Conv2dKernels
{
    /// <summary>Output extent along one axis: (input + 2 pad - dilation (kernel - 1) - 1) / stride + 1.</summary>
    public static int OutputSize(int input, int kernel, int stride, int padding, int dilation) =>
        Conv2dGeometry.OutputSize(input, kernel, stride, padding, dilation);

    /// <summary>Forward convolution: output = conv(input, weight) + bias.</summary>
    /// <exception cref="ArgumentException">Sizes are inconsistent or a span has the wrong length.</exception>
    public static void Forward(ReadOnlySpan<float> input, int n, int c, int h, int w, ReadOnlySpan<float> weight,
        int outC, int kh, int kw, ReadOnlySpan<float> bias, int strideH, int strideW, int padH, int padW,
        int dilH, int dilW, int groups, Span<float> output) =>
        ForwardCore(input, weight, bias, output,
            Conv2dGeometry.Create("Conv2d", n, c, h, w, outC, kh, kw, strideH, strideW, padH, padW, dilH, dilW, groups));

    /// <summary>Forward convolution: output = conv(input, weight) + bias.</summary>
    /// <exception cref="ArgumentException">Sizes are inconsistent or a span has the wrong length.</exception>
    public static void Forward(ReadOnlySpan<double> input, int n, int c, int h, int w, ReadOnlySpan<double> weight,
        int outC, int kh, int kw, ReadOnlySpan<double> bias, int strideH, int strideW, int padH, int padW,
        int dilH, int dilW, int groups, Span<double> output) =>
        ForwardCore(input, weight, bias, output,
            Conv2dGeometry.Create("Conv2d", n, c, h, w, outC, kh, kw, strideH, strideW, padH, padW, dilH, dilW, groups));

    /// <summary>Gradient of the loss with respect to the input, given the output gradient.</summary>
    /// <exception cref="ArgumentException">Sizes are inconsistent or a span has the wrong length.</exception>
    public static void BackwardInput(ReadOnlySpan<float> gradOutput, int n, int c, int h, int w,
        ReadOnlySpan<float> weight, int outC, int kh, int kw, int strideH, int strideW, int padH, int padW,
        int dilH, int dilW, int groups, Span<float> gradInput) =>
        BackwardInputCore(gradOutput, weight, gradInput,
            Conv2dGeometry.Create("Conv2d backward", n, c, h, w, outC, kh, kw, strideH, strideW, padH, padW, dilH, dilW, groups));

    /// <summary>Gradient of the loss with respect to the input, given the output gradient.</summary>
    /// <exception cref="ArgumentException">Sizes are inconsistent or a span has the wrong length.</exception>
    public static void BackwardInput(ReadOnlySpan<double> gradOutput, int n, int c, int h, int w,
        ReadOnlySpan<double> weight, int outC, int kh, int kw, int strideH, int strideW, int padH, int padW,
        int dilH, int dilW, int groups, Span<double> gradInput) =>
        BackwardInputCore(gradOutput, weight, gradInput,
            Conv2dGeometry.Create("Conv2d backward", n, c, h, w, outC, kh, kw, strideH, strideW, padH, padW, dilH, dilW, groups));

    /// <summary>Gradients with respect to the weight and (when <paramref name="gradBias"/> is not empty) the bias.</summary>
    /// <exception cref="ArgumentException">Sizes are inconsistent or a span has the wrong length.</exception>
    public static void BackwardWeight(ReadOnlySpan<float> input, int n, int c, int h, int w,
        ReadOnlySpan<float> gradOutput, int outC, int kh, int kw, int strideH, int strideW, int padH, int padW,
        int dilH, int dilW, int groups, Span<float> gradWeight, Span<float> gradBias) =>
        BackwardWeightCore(input, gradOutput, gradWeight, gradBias,
            Conv2dGeometry.Create("Conv2d backward", n, c, h, w, outC, kh, kw, strideH, strideW, padH, padW, dilH, dilW, groups));

    /// <summary>Gradients with respect to the weight and (when <paramref name="gradBias"/> is not empty) the bias.</summary>
    /// <exception cref="ArgumentException">Sizes are inconsistent or a span has the wrong length.</exception>
    public static void BackwardWeight(ReadOnlySpan<double> input, int n, int c, int h, int w,
        ReadOnlySpan<double> gradOutput, int outC, int kh, int kw, int strideH, int strideW, int padH, int padW,
        int dilH, int dilW, int groups, Span<double> gradWeight, Span<double> gradBias) =>
        BackwardWeightCore(input, gradOutput, gradWeight, gradBias,
            Conv2dGeometry.Create("Conv2d backward", n, c, h, w, outC, kh, kw, strideH, strideW, padH, padW, dilH, dilW, groups));

    /// <summary>Forward with the direct kernel allowed or not (tests compare the two paths).</summary>
    internal static unsafe void ForwardCore<T>(ReadOnlySpan<T> input, ReadOnlySpan<T> weight, ReadOnlySpan<T> bias,
        Span<T> output, Conv2dGeometry g, bool allowDirect = true) where T : unmanaged, INumber<T>
    {
        const string op = "Conv2d";
        g.RequireLength(op, nameof(input), input.Length, g.InputLength);
        g.RequireLength(op, nameof(weight), weight.Length, g.WeightLength);
        if (!bias.IsEmpty)
        {
            g.RequireLength(op, nameof(bias), bias.Length, g.OutC);
        }

        g.RequireLength(op, nameof(output), output.Length, g.OutputLength);
        fixed (T* x = input, wt = weight, b = bias, y = output)
        {
            Conv2dCore<T>.Forward(g, x, wt, bias.IsEmpty ? null : b, y, allowDirect);
        }
    }

    private static unsafe void BackwardInputCore<T>(ReadOnlySpan<T> gradOutput, ReadOnlySpan<T> weight,
        Span<T> gradInput, Conv2dGeometry g) where T : unmanaged, INumber<T>
    {
        const string op = "Conv2d backward";
        g.RequireLength(op, nameof(gradOutput), gradOutput.Length, g.OutputLength);
        g.RequireLength(op, nameof(weight), weight.Length, g.WeightLength);
        g.RequireLength(op, nameof(gradInput), gradInput.Length, g.InputLength);
        fixed (T* dy = gradOutput, wt = weight, dx = gradInput)
        {
            Conv2dCore<T>.BackwardInput(g, dy, wt, dx);
        }
    }

    /// <summary>Backward-weight with the direct kernel allowed or not (tests compare the two paths).</summary>
    internal static unsafe void BackwardWeightCore<T>(ReadOnlySpan<T> input, ReadOnlySpan<T> gradOutput,
        Span<T> gradWeight, Span<T> gradBias, Conv2dGeometry g, bool allowDirect = true) where T : unmanaged, INumber<T>
    {
        const string op = "Conv2d backward";
        g.RequireLength(op, nameof(input), input.Length, g.InputLength);
        g.RequireLength(op, nameof(gradOutput), gradOutput.Length, g.OutputLength);
        g.RequireLength(op, nameof(gradWeight), gradWeight.Length, g.WeightLength);
        if (!gradBias.IsEmpty)
        {
            g.RequireLength(op, nameof(gradBias), gradBias.Length, g.OutC);
        }

        fixed (T* x = input, dy = gradOutput, dw = gradWeight, db = gradBias)
        {
            Conv2dCore<T>.BackwardWeight(g, x, dy, dw, gradBias.IsEmpty ? null : db, allowDirect);
        }
    }
}
