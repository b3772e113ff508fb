using System.Globalization;

namespace GradFlow.NN;

/// <summary>Layer normalisation over the trailing dims (torch.nn.LayerNorm): "weight" ones and "bias" zeros of the normalized shape.</summary>
public sealed class LayerNorm : Module
{
    /// <summary>Creates the layer.</summary>
    public LayerNorm(int[] normalizedShape, double eps = 1e-5, bool elementwiseAffine = true, DType dtype = DType.Float32)
    {
        Guard.NotNull(normalizedShape, nameof(LayerNorm), nameof(normalizedShape));
        if (normalizedShape.Length == 0 || normalizedShape.Any(s => s <= 0))
            Guard.ThrowArg(nameof(LayerNorm), nameof(normalizedShape), $"must be non-empty and positive, got {Guard.Shape(normalizedShape)}.");
        (NormalizedShape, Eps) = ((int[])normalizedShape.Clone(), eps);
        if (elementwiseAffine)
        {
            Weight = RegisterParameter("weight", Tensor.Ones(normalizedShape, dtype));
            Bias = RegisterParameter("bias", Tensor.Zeros(normalizedShape, dtype));
        }
    }

    /// <summary>Creates the layer over the last dim of size <paramref name="normalizedShape"/>.</summary>
    public LayerNorm(int normalizedShape, double eps = 1e-5, bool elementwiseAffine = true, DType dtype = DType.Float32)
        : this([normalizedShape], eps, elementwiseAffine, dtype) { }

    /// <summary>The trailing shape normalised over.</summary>
    public int[] NormalizedShape { get; }

    /// <summary>Added to the variance.</summary>
    public double Eps { get; }

    /// <summary>The elementwise scale, or null.</summary>
    public Tensor? Weight { get; }

    /// <summary>The elementwise shift, or null.</summary>
    public Tensor? Bias { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        int k = NormalizedShape.Length;
        CheckInput(input, "[*, " + string.Join(", ", NormalizedShape) + "]", input.Rank >= k && Shapes.Equal(input.Shape[^k..], NormalizedShape));
        return Functional.LayerNorm(input, NormalizedShape, Weight, Bias, Eps);
    }

    /// <inheritdoc />
    protected override string ExtraRepr() => string.Create(CultureInfo.InvariantCulture,
        $"{Py(NormalizedShape)}, eps={Eps}, elementwise_affine={Py(Weight is not null)}");
}

/// <summary>Group normalisation (Wu and He 2018; torch.nn.GroupNorm): "weight" ones and "bias" zeros per channel.</summary>
public sealed class GroupNorm : Module
{
    /// <summary>Creates the layer.</summary>
    public GroupNorm(int numGroups, int numChannels, double eps = 1e-5, bool affine = true, DType dtype = DType.Float32)
    {
        if (numGroups <= 0 || numChannels <= 0 || numChannels % numGroups != 0)
            Guard.Throw(nameof(GroupNorm), $"num_channels={numChannels} must be divisible by num_groups={numGroups}.");
        (NumGroups, NumChannels, Eps) = (numGroups, numChannels, eps);
        if (affine)
        {
            Weight = RegisterParameter("weight", Tensor.Ones([numChannels], dtype));
            Bias = RegisterParameter("bias", Tensor.Zeros([numChannels], dtype));
        }
    }

    /// <summary>The number of channel groups.</summary>
    public int NumGroups { get; }

    /// <summary>The number of channels.</summary>
    public int NumChannels { get; }

    /// <summary>Added to the variance.</summary>
    public double Eps { get; }

    /// <summary>The scale per channel, or null.</summary>
    public Tensor? Weight { get; }

    /// <summary>The shift per channel, or null.</summary>
    public Tensor? Bias { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        CheckInput(input, $"[N, {NumChannels}, *]", input.Rank >= 2 && input.Size(1) == NumChannels);
        return Functional.GroupNorm(input, NumGroups, Weight, Bias, Eps);
    }

    /// <inheritdoc />
    protected override string ExtraRepr() => string.Create(CultureInfo.InvariantCulture, $"{NumGroups}, {NumChannels}, eps={Eps}, affine={Py(Weight is not null)}");
}
