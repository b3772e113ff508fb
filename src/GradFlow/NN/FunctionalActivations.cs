namespace GradFlow.NN;

/// <summary>
/// Stateless forms of the layers, activations and losses (torch.nn.functional). Modules call these;
/// use them directly when the parameters live elsewhere. The class is split by concept over the
/// NN/Functional*.cs files.
/// </summary>
public static partial class Functional
{
    /// <summary>max(x, 0).</summary>
    public static Tensor Relu(Tensor input) => input.Relu();

    /// <summary>The logistic function.</summary>
    public static Tensor Sigmoid(Tensor input) => input.Sigmoid();

    /// <summary>Hyperbolic tangent.</summary>
    public static Tensor Tanh(Tensor input) => input.Tanh();

    /// <summary>x where x &gt; 0, else negativeSlope * x.</summary>
    public static Tensor LeakyRelu(Tensor input, double negativeSlope = 0.01) =>
        Tensor.Where(input.Gt(0.0), input, input * negativeSlope);

    /// <summary>x where x &gt; 0, else weight * x, the weight being one value or one per channel (dim 1).</summary>
    public static Tensor PRelu(Tensor input, Tensor weight)
    {
        Guard.NotNull(weight, nameof(PRelu), nameof(weight));
        var w = weight;
        if (weight.NumEl > 1)
        {
            if (input.Rank < 2 || input.Size(1) != weight.NumEl)
                Guard.ThrowArg(nameof(PRelu), nameof(weight), $"{weight.NumEl} weights need input channels (dim 1) of that size, got input {Guard.Shape(input)}.");
            var shape = new int[input.Rank];
            Array.Fill(shape, 1);
            shape[1] = weight.NumEl;
            w = weight.Reshape(shape);
        }
        return Tensor.Where(input.Gt(0.0), input, input * w);
    }

    /// <summary>x where x &gt; 0, else alpha * (e^x - 1) (Clevert et al. 2015).</summary>
    public static Tensor Elu(Tensor input, double alpha = 1.0) =>
        // exp of min(x, 0): the unused branch never overflows, so its zero gradient stays zero (not 0 * inf).
        Tensor.Where(input.Gt(0.0), input, (input.Clamp(max: 0).Exp() - 1.0) * alpha);

    /// <summary>Self-normalising ELU (Klambauer et al. 2017) with its fixed scale and alpha.</summary>
    public static Tensor Selu(Tensor input) => Elu(input, SeluAlpha) * SeluScale;

    internal const double SeluAlpha = 1.6732632423543772848170429916717;
    internal const double SeluScale = 1.0507009873554804934193349852946;

    /// <summary>GELU (Hendrycks and Gimpel 2016): x * Phi(x) exactly with erf, or the tanh approximation.</summary>
    public static Tensor Gelu(Tensor input, bool tanhApproximation = false)
    {
        if (!tanhApproximation) return input * ((input * (1 / Math.Sqrt(2))).Erf() + 1.0) * 0.5;
        // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        var inner = (input + input * input * input * 0.044715) * Math.Sqrt(2 / Math.PI);
        return input * (inner.Tanh() + 1.0) * 0.5;
    }

    /// <summary>x * sigmoid(x) (SiLU, also called swish).</summary>
    public static Tensor Silu(Tensor input) => input * input.Sigmoid();

    /// <summary>log(1 + e^(beta x)) / beta, linear where beta x &gt; threshold.</summary>
    public static Tensor Softplus(Tensor input, double beta = 1, double threshold = 20) => input.Softplus(beta, threshold);

    /// <summary>x clamped to [minVal, maxVal].</summary>
    public static Tensor Hardtanh(Tensor input, double minVal = -1, double maxVal = 1) => input.Clamp(minVal, maxVal);

    /// <summary>Softmax along a dim.</summary>
    public static Tensor Softmax(Tensor input, int dim) => input.Softmax(dim);

    /// <summary>Log-softmax along a dim.</summary>
    public static Tensor LogSoftmax(Tensor input, int dim) => input.LogSoftmax(dim);
}
