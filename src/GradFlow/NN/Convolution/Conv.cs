namespace GradFlow.NN;

/// <summary>
/// The parameters shared by the convolutions: "weight" and optional "bias", initialised as PyTorch
/// (weight kaiming_uniform(a = sqrt(5)), bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))).
/// </summary>
public abstract class ConvBase : Module
{
    /// <summary>Registers a weight of <paramref name="weightShape"/> and, optionally, a bias of <paramref name="biasSize"/>.</summary>
    protected ConvBase(int inChannels, int outChannels, int groups, int[] weightShape, int biasSize, bool bias, DType dtype, Generator? generator)
    {
        if (inChannels <= 0 || outChannels <= 0 || groups <= 0 || inChannels % groups != 0 || outChannels % groups != 0)
            Guard.Throw(GetType().Name, $"in_channels={inChannels} and out_channels={outChannels} must be positive and divisible by groups={groups}.");
        if (weightShape.Any(s => s <= 0)) Guard.Throw(GetType().Name, $"kernel size must be positive, got weight shape {Guard.Shape(weightShape)}.");
        (InChannels, OutChannels, Groups) = (inChannels, outChannels, groups);
        Weight = RegisterParameter("weight", Tensor.Zeros(weightShape, dtype));
        if (bias) Bias = RegisterParameter("bias", Tensor.Zeros([biasSize], dtype));
        ResetParameters(generator);
    }

    /// <summary>Input channels.</summary>
    public int InChannels { get; }

    /// <summary>Output channels.</summary>
    public int OutChannels { get; }

    /// <summary>Channel groups (each output group sees only its input group).</summary>
    public int Groups { get; }

    /// <summary>The filters.</summary>
    public Tensor Weight { get; }

    /// <summary>The bias per output channel, or null.</summary>
    public Tensor? Bias { get; }

    /// <summary>Re-draws the parameters with PyTorch's default initialisation.</summary>
    public void ResetParameters(Generator? generator = null)
    {
        Init.KaimingUniform(Weight, a: Math.Sqrt(5), generator: generator);
        if (Bias is null) return;
        double bound = 1 / Math.Sqrt(Init.CalculateFans(Weight).FanIn);
        Init.Uniform(Bias, -bound, bound, generator);
    }

    /// <summary>Checks an (N, C, spatial...) or unbatched input's channel count.</summary>
    protected void CheckChannels(Tensor input, int spatialDims)
    {
        int rank = input?.Rank ?? 0;
        bool ok = input is not null && (rank == spatialDims + 1 || rank == spatialDims + 2) && input.Size(-spatialDims - 1) == InChannels;
        string dims = spatialDims == 1 ? "L" : "H, W";
        CheckInput(input!, $"[N, {InChannels}, {dims}] or [{InChannels}, {dims}]", ok);
    }
}

/// <summary>2-d convolution (torch.nn.Conv2d): weight (out, in/groups, kh, kw).</summary>
public sealed class Conv2d : ConvBase
{
    /// <summary>Creates the layer.</summary>
    public Conv2d(int inChannels, int outChannels, (int H, int W) kernelSize, (int H, int W)? stride = null, (int H, int W)? padding = null,
        (int H, int W)? dilation = null, int groups = 1, bool bias = true, DType dtype = DType.Float32, Generator? generator = null)
        : base(inChannels, outChannels, groups, [outChannels, inChannels / Math.Max(groups, 1), kernelSize.H, kernelSize.W], outChannels, bias, dtype, generator)
    {
        (KernelSize, Stride, Padding, Dilation) = (kernelSize, stride ?? (1, 1), padding ?? (0, 0), dilation ?? (1, 1));
    }

    /// <summary>Creates the layer with a square kernel.</summary>
    public Conv2d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, int dilation = 1, int groups = 1,
        bool bias = true, DType dtype = DType.Float32, Generator? generator = null)
        : this(inChannels, outChannels, (kernelSize, kernelSize), (stride, stride), (padding, padding), (dilation, dilation), groups, bias, dtype, generator) { }

    /// <summary>The kernel size.</summary>
    public (int H, int W) KernelSize { get; }

    /// <summary>The stride.</summary>
    public (int H, int W) Stride { get; }

    /// <summary>The zero padding on each side.</summary>
    public (int H, int W) Padding { get; }

    /// <summary>The spacing between kernel taps.</summary>
    public (int H, int W) Dilation { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        CheckChannels(input, 2);
        return Functional.Conv2d(input, Weight, Bias, Stride, Padding, Dilation, Groups);
    }

    /// <inheritdoc />
    protected override string ExtraRepr() =>
        $"{InChannels}, {OutChannels}, kernel_size={Py(KernelSize.H, KernelSize.W)}, stride={Py(Stride.H, Stride.W)}" +
        (Padding != (0, 0) ? $", padding={Py(Padding.H, Padding.W)}" : "") + (Dilation != (1, 1) ? $", dilation={Py(Dilation.H, Dilation.W)}" : "") +
        (Groups != 1 ? $", groups={Groups}" : "") + (Bias is null ? ", bias=False" : "");
}

/// <summary>1-d convolution (torch.nn.Conv1d): weight (out, in/groups, k).</summary>
public sealed class Conv1d : ConvBase
{
    /// <summary>Creates the layer.</summary>
    public Conv1d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, int dilation = 1, int groups = 1,
        bool bias = true, DType dtype = DType.Float32, Generator? generator = null)
        : base(inChannels, outChannels, groups, [outChannels, inChannels / Math.Max(groups, 1), kernelSize], outChannels, bias, dtype, generator)
    {
        (KernelSize, Stride, Padding, Dilation) = (kernelSize, stride, padding, dilation);
    }

    /// <summary>The kernel size.</summary>
    public int KernelSize { get; }

    /// <summary>The stride.</summary>
    public int Stride { get; }

    /// <summary>The zero padding on each side.</summary>
    public int Padding { get; }

    /// <summary>The spacing between kernel taps.</summary>
    public int Dilation { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        CheckChannels(input, 1);
        return Functional.Conv1d(input, Weight, Bias, Stride, Padding, Dilation, Groups);
    }

    /// <inheritdoc />
    protected override string ExtraRepr() =>
        $"{InChannels}, {OutChannels}, kernel_size={Py(KernelSize)}, stride={Py(Stride)}" + (Padding != 0 ? $", padding={Py(Padding)}" : "") +
        (Dilation != 1 ? $", dilation={Py(Dilation)}" : "") + (Groups != 1 ? $", groups={Groups}" : "") + (Bias is null ? ", bias=False" : "");
}

/// <summary>Transposed 2-d convolution (torch.nn.ConvTranspose2d): weight (in, out/groups, kh, kw).</summary>
public sealed class ConvTranspose2d : ConvBase
{
    /// <summary>Creates the layer.</summary>
    public ConvTranspose2d(int inChannels, int outChannels, (int H, int W) kernelSize, (int H, int W)? stride = null, (int H, int W)? padding = null,
        (int H, int W)? outputPadding = null, int groups = 1, bool bias = true, (int H, int W)? dilation = null,
        DType dtype = DType.Float32, Generator? generator = null)
        : base(inChannels, outChannels, groups, [inChannels, outChannels / Math.Max(groups, 1), kernelSize.H, kernelSize.W], outChannels, bias, dtype, generator)
    {
        (KernelSize, Stride, Padding, OutputPadding, Dilation) = (kernelSize, stride ?? (1, 1), padding ?? (0, 0), outputPadding ?? (0, 0), dilation ?? (1, 1));
    }

    /// <summary>Creates the layer with a square kernel.</summary>
    public ConvTranspose2d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, int outputPadding = 0,
        int groups = 1, bool bias = true, int dilation = 1, DType dtype = DType.Float32, Generator? generator = null)
        : this(inChannels, outChannels, (kernelSize, kernelSize), (stride, stride), (padding, padding), (outputPadding, outputPadding),
            groups, bias, (dilation, dilation), dtype, generator)
    { }

    /// <summary>The kernel size.</summary>
    public (int H, int W) KernelSize { get; }

    /// <summary>The stride.</summary>
    public (int H, int W) Stride { get; }

    /// <summary>The padding removed from each side of the output.</summary>
    public (int H, int W) Padding { get; }

    /// <summary>Extra size added to one side of the output.</summary>
    public (int H, int W) OutputPadding { get; }

    /// <summary>The spacing between kernel taps.</summary>
    public (int H, int W) Dilation { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        CheckChannels(input, 2);
        return Functional.ConvTranspose2d(input, Weight, Bias, Stride, Padding, OutputPadding, Groups, Dilation);
    }

    /// <inheritdoc />
    protected override string ExtraRepr() =>
        $"{InChannels}, {OutChannels}, kernel_size={Py(KernelSize.H, KernelSize.W)}, stride={Py(Stride.H, Stride.W)}" +
        (Padding != (0, 0) ? $", padding={Py(Padding.H, Padding.W)}" : "") + (OutputPadding != (0, 0) ? $", output_padding={Py(OutputPadding.H, OutputPadding.W)}" : "") +
        (Groups != 1 ? $", groups={Groups}" : "") + (Bias is null ? ", bias=False" : "");
}
