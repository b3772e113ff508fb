namespace GradFlow.NN;

/// <summary>Max over windows (torch.nn.MaxPool2d); the stride defaults to the kernel size.</summary>
public sealed class MaxPool2d((int H, int W) kernelSize, (int H, int W)? stride = null, (int H, int W)? padding = null, (int H, int W)? dilation = null) : Module
{
    /// <summary>Creates the layer with a square window.</summary>
    public MaxPool2d(int kernelSize, int? stride = null, int padding = 0, int dilation = 1)
        : this((kernelSize, kernelSize), (stride ?? kernelSize, stride ?? kernelSize), (padding, padding), (dilation, dilation)) { }

    /// <summary>The window size.</summary>
    public (int H, int W) KernelSize { get; } = kernelSize;

    /// <summary>The step between windows.</summary>
    public (int H, int W) Stride { get; } = stride ?? kernelSize;

    /// <summary>The implicit -inf padding on each side.</summary>
    public (int H, int W) Padding { get; } = padding ?? (0, 0);

    /// <summary>The spacing between window taps.</summary>
    public (int H, int W) Dilation { get; } = dilation ?? (1, 1);

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        CheckInput(input, "[N, C, H, W] or [C, H, W]", input.Rank is 3 or 4);
        return Functional.MaxPool2d(input, KernelSize, Stride, Padding, Dilation);
    }

    /// <inheritdoc />
    protected override string ExtraRepr() =>
        $"kernel_size={Py(KernelSize.H, KernelSize.W)}, stride={Py(Stride.H, Stride.W)}, padding={Py(Padding.H, Padding.W)}, dilation={Py(Dilation.H, Dilation.W)}";
}

/// <summary>Mean over windows (torch.nn.AvgPool2d); the stride defaults to the kernel size.</summary>
public sealed class AvgPool2d((int H, int W) kernelSize, (int H, int W)? stride = null, (int H, int W)? padding = null, bool countIncludePad = true) : Module
{
    /// <summary>Creates the layer with a square window.</summary>
    public AvgPool2d(int kernelSize, int? stride = null, int padding = 0, bool countIncludePad = true)
        : this((kernelSize, kernelSize), (stride ?? kernelSize, stride ?? kernelSize), (padding, padding), countIncludePad) { }

    /// <summary>The window size.</summary>
    public (int H, int W) KernelSize { get; } = kernelSize;

    /// <summary>The step between windows.</summary>
    public (int H, int W) Stride { get; } = stride ?? kernelSize;

    /// <summary>The implicit zero padding on each side.</summary>
    public (int H, int W) Padding { get; } = padding ?? (0, 0);

    /// <summary>Whether padded zeros count in the mean's denominator.</summary>
    public bool CountIncludePad { get; } = countIncludePad;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        CheckInput(input, "[N, C, H, W] or [C, H, W]", input.Rank is 3 or 4);
        return Functional.AvgPool2d(input, KernelSize, Stride, Padding, CountIncludePad);
    }

    /// <inheritdoc />
    protected override string ExtraRepr() => $"kernel_size={Py(KernelSize.H, KernelSize.W)}, stride={Py(Stride.H, Stride.W)}, padding={Py(Padding.H, Padding.W)}";
}

/// <summary>Average pooling to a fixed output size (torch.nn.AdaptiveAvgPool2d).</summary>
public sealed class AdaptiveAvgPool2d((int H, int W) outputSize) : Module
{
    /// <summary>Creates the layer with a square output.</summary>
    public AdaptiveAvgPool2d(int outputSize) : this((outputSize, outputSize)) { }

    /// <summary>The output's spatial size.</summary>
    public (int H, int W) OutputSize { get; } = outputSize;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        CheckInput(input, "[N, C, H, W] or [C, H, W]", input.Rank is 3 or 4);
        return Functional.AdaptiveAvgPool2d(input, OutputSize);
    }

    /// <inheritdoc />
    protected override string ExtraRepr() => $"output_size={Py(OutputSize.H, OutputSize.W)}";
}
