namespace GradFlow.Kernels;

/// <summary>
/// NCHW 2-D max and average pooling on spans, with PyTorch's defaults: ceil_mode false, padding at most
/// half the kernel, average pooling with count_include_pad true. Output [n, c, oh, ow] with
/// oh = (h + 2 padH - kh) / strideH + 1. Every method overwrites its output span.
/// </summary>
public static class Pool2dKernels
{
    /// <summary>Max pooling; <paramref name="indices"/> receives each maximum's offset within its [h, w] plane.</summary>
    /// <exception cref="ArgumentException">Sizes are inconsistent or a span has the wrong length.</exception>
    public static void MaxPool2dForward(ReadOnlySpan<float> input, int n, int c, int h, int w, int kh, int kw, int strideH, int strideW, int padH, int padW, Span<float> output, Span<int> indices) =>
        MaxForward(input, output, indices, Pool2dGeometry.Create("MaxPool2d", n, c, h, w, kh, kw, strideH, strideW, padH, padW));

    /// <summary>Max pooling; <paramref name="indices"/> receives each maximum's offset within its [h, w] plane.</summary>
    /// <exception cref="ArgumentException">Sizes are inconsistent or a span has the wrong length.</exception>
    public static void MaxPool2dForward(ReadOnlySpan<double> input, int n, int c, int h, int w, int kh, int kw, int strideH, int strideW, int padH, int padW, Span<double> output, Span<int> indices) =>
        MaxForward(input, output, indices, Pool2dGeometry.Create("MaxPool2d", n, c, h, w, kh, kw, strideH, strideW, padH, padW));

    /// <summary>Max pooling backward: scatters each output gradient to the input position its index names.</summary>
    /// <exception cref="ArgumentException">Sizes are inconsistent or a span has the wrong length.</exception>
    public static void MaxPool2dBackward(ReadOnlySpan<float> gradOutput, ReadOnlySpan<int> indices, int n, int c, int h, int w, int kh, int kw, int strideH, int strideW, int padH, int padW, Span<float> gradInput) =>
        MaxBackward(gradOutput, indices, gradInput, Pool2dGeometry.Create("MaxPool2d backward", n, c, h, w, kh, kw, strideH, strideW, padH, padW));

    /// <summary>Max pooling backward: scatters each output gradient to the input position its index names.</summary>
    /// <exception cref="ArgumentException">Sizes are inconsistent or a span has the wrong length.</exception>
    public static void MaxPool2dBackward(ReadOnlySpan<double> gradOutput, ReadOnlySpan<int> indices, int n, int c, int h, int w, int kh, int kw, int strideH, int strideW, int padH, int padW, Span<double> gradInput) =>
        MaxBackward(gradOutput, indices, gradInput, Pool2dGeometry.Create("MaxPool2d backward", n, c, h, w, kh, kw, strideH, strideW, padH, padW));

    /// <summary>Average pooling (count_include_pad = true).</summary>
    /// <exception cref="ArgumentException">Sizes are inconsistent or a span has the wrong length.</exception>
    public static void AvgPool2dForward(ReadOnlySpan<float> input, int n, int c, int h, int w, int kh, int kw, int strideH, int strideW, int padH, int padW, Span<float> output) =>
        AvgForward(input, output, Pool2dGeometry.Create("AvgPool2d", n, c, h, w, kh, kw, strideH, strideW, padH, padW));

    /// <summary>Average pooling (count_include_pad = true).</summary>
    /// <exception cref="ArgumentException">Sizes are inconsistent or a span has the wrong length.</exception>
    public static void AvgPool2dForward(ReadOnlySpan<double> input, int n, int c, int h, int w, int kh, int kw, int strideH, int strideW, int padH, int padW, Span<double> output) =>
        AvgForward(input, output, Pool2dGeometry.Create("AvgPool2d", n, c, h, w, kh, kw, strideH, strideW, padH, padW));

    /// <summary>Average pooling backward: each output gradient spread evenly over its window.</summary>
    /// <exception cref="ArgumentException">Sizes are inconsistent or a span has the wrong length.</exception>
    public static void AvgPool2dBackward(ReadOnlySpan<float> gradOutput, int n, int c, int h, int w, int kh, int kw, int strideH, int strideW, int padH, int padW, Span<float> gradInput) =>
        AvgBackward(gradOutput, gradInput, Pool2dGeometry.Create("AvgPool2d backward", n, c, h, w, kh, kw, strideH, strideW, padH, padW));

    /// <summary>Average pooling backward: each output gradient spread evenly over its window.</summary>
    /// <exception cref="ArgumentException">Sizes are inconsistent or a span has the wrong length.</exception>
    public static void AvgPool2dBackward(ReadOnlySpan<double> gradOutput, int n, int c, int h, int w, int kh, int kw, int strideH, int strideW, int padH, int padW, Span<double> gradInput) =>
        AvgBackward(gradOutput, gradInput, Pool2dGeometry.Create("AvgPool2d backward", n, c, h, w, kh, kw, strideH, strideW, padH, padW));

    private static void MaxForward<T>(ReadOnlySpan<T> input, Span<T> output, Span<int> indices, Pool2dGeometry g)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        const string op = "MaxPool2d";
        g.RequireLength(op, nameof(input), input.Length, g.InputLength);
        g.RequireLength(op, nameof(output), output.Length, g.OutputLength);
        g.RequireLength(op, nameof(indices), indices.Length, g.OutputLength);
        Pool2dCore<T>.MaxForward(g, input, output, indices);
    }

    private static void MaxBackward<T>(ReadOnlySpan<T> gradOutput, ReadOnlySpan<int> indices, Span<T> gradInput, Pool2dGeometry g)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        const string op = "MaxPool2d backward";
        g.RequireLength(op, nameof(gradOutput), gradOutput.Length, g.OutputLength);
        g.RequireLength(op, nameof(indices), indices.Length, g.OutputLength);
        g.RequireLength(op, nameof(gradInput), gradInput.Length, g.InputLength);
        Pool2dCore<T>.MaxBackward(g, gradOutput, indices, gradInput);
    }

    private static void AvgForward<T>(ReadOnlySpan<T> input, Span<T> output, Pool2dGeometry g)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        const string op = "AvgPool2d";
        g.RequireLength(op, nameof(input), input.Length, g.InputLength);
        g.RequireLength(op, nameof(output), output.Length, g.OutputLength);
        Pool2dCore<T>.AvgForward(g, input, output);
    }

    private static void AvgBackward<T>(ReadOnlySpan<T> gradOutput, Span<T> gradInput, Pool2dGeometry g)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        const string op = "AvgPool2d backward";
        g.RequireLength(op, nameof(gradOutput), gradOutput.Length, g.OutputLength);
        g.RequireLength(op, nameof(gradInput), gradInput.Length, g.InputLength);
        Pool2dCore<T>.AvgBackward(g, gradOutput, gradInput);
    }
}
