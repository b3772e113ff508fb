using System.Globalization;

namespace GradFlow.NN;

/// <summary>max(x, 0) (torch.nn.ReLU).</summary>
public sealed class ReLU : Module
{
    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.Relu(input);
}

/// <summary>The logistic function (torch.nn.Sigmoid).</summary>
public sealed class Sigmoid : Module
{
    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.Sigmoid(input);
}

/// <summary>Hyperbolic tangent (torch.nn.Tanh).</summary>
public sealed class Tanh : Module
{
    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.Tanh(input);
}

/// <summary>x where positive, else negativeSlope * x (torch.nn.LeakyReLU).</summary>
public sealed class LeakyReLU(double negativeSlope = 0.01) : Module
{
    /// <summary>The slope for negative inputs.</summary>
    public double NegativeSlope { get; } = negativeSlope;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.LeakyRelu(input, NegativeSlope);

    /// <inheritdoc />
    protected override string ExtraRepr() => $"negative_slope={NegativeSlope.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>ELU (torch.nn.ELU).</summary>
public sealed class ELU(double alpha = 1.0) : Module
{
    /// <summary>The negative saturation value.</summary>
    public double Alpha { get; } = alpha;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.Elu(input, Alpha);

    /// <inheritdoc />
    protected override string ExtraRepr() => $"alpha={Alpha.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>SELU (torch.nn.SELU).</summary>
public sealed class SELU : Module
{
    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.Selu(input);
}

/// <summary>GELU, exact (erf) or with the tanh approximation (torch.nn.GELU(approximate='tanh')).</summary>
public sealed class GELU(bool tanhApproximation = false) : Module
{
    /// <summary>True for the tanh approximation.</summary>
    public bool TanhApproximation { get; } = tanhApproximation;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.Gelu(input, TanhApproximation);

    /// <inheritdoc />
    protected override string ExtraRepr() => $"approximate='{(TanhApproximation ? "tanh" : "none")}'";
}

/// <summary>x * sigmoid(x) (torch.nn.SiLU).</summary>
public sealed class SiLU : Module
{
    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.Silu(input);
}

/// <summary>Smooth ReLU log(1 + e^(beta x)) / beta (torch.nn.Softplus).</summary>
public sealed class Softplus(double beta = 1, double threshold = 20) : Module
{
    /// <summary>The sharpness.</summary>
    public double Beta { get; } = beta;

    /// <summary>Above beta x = threshold the function is taken as linear.</summary>
    public double Threshold { get; } = threshold;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.Softplus(input, Beta, Threshold);

    /// <inheritdoc />
    protected override string ExtraRepr() => FormattableString.Invariant($"beta={Beta}, threshold={Threshold}");
}

/// <summary>Clamps to [minVal, maxVal] (torch.nn.Hardtanh).</summary>
public sealed class Hardtanh(double minVal = -1, double maxVal = 1) : Module
{
    /// <summary>The lower bound.</summary>
    public double MinVal { get; } = minVal;

    /// <summary>The upper bound.</summary>
    public double MaxVal { get; } = maxVal;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.Hardtanh(input, MinVal, MaxVal);

    /// <inheritdoc />
    protected override string ExtraRepr() => FormattableString.Invariant($"min_val={MinVal}, max_val={MaxVal}");
}

/// <summary>Softmax along a dim (torch.nn.Softmax).</summary>
public sealed class Softmax(int dim) : Module
{
    /// <summary>The dim that sums to one.</summary>
    public int Dim { get; } = dim;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.Softmax(input, Dim);

    /// <inheritdoc />
    protected override string ExtraRepr() => $"dim={Dim}";
}

/// <summary>Log-softmax along a dim (torch.nn.LogSoftmax).</summary>
public sealed class LogSoftmax(int dim) : Module
{
    /// <summary>The normalised dim.</summary>
    public int Dim { get; } = dim;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.LogSoftmax(input, Dim);

    /// <inheritdoc />
    protected override string ExtraRepr() => $"dim={Dim}";
}

/// <summary>Leaky ReLU with a learned slope, one shared or one per channel (torch.nn.PReLU); weight initialised to 0.25 by default.</summary>
public sealed class PReLU : Module
{
    /// <summary>Creates the layer with <paramref name="numParameters"/> slopes (1, or the channel count).</summary>
    public PReLU(int numParameters = 1, double init = 0.25, DType dtype = DType.Float32)
    {
        if (numParameters < 1) Guard.ThrowArg(nameof(PReLU), nameof(numParameters), $"needs at least one parameter, got {numParameters}.");
        Weight = RegisterParameter("weight", Tensor.Full([numParameters], init, dtype));
    }

    /// <summary>The negative slopes.</summary>
    public Tensor Weight { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.PRelu(input, Weight);

    /// <inheritdoc />
    protected override string ExtraRepr() => $"num_parameters={Weight.NumEl}";
}
