namespace GradFlow.NN;

/// <summary>The nonlinearity an initialisation is scaled for (torch.nn.init.calculate_gain).</summary>
public enum Nonlinearity
{
    /// <summary>Identity: gain 1.</summary>
    Linear,
    /// <summary>Any convolution: gain 1.</summary>
    Conv,
    /// <summary>Sigmoid: gain 1.</summary>
    Sigmoid,
    /// <summary>Tanh: gain 5/3.</summary>
    Tanh,
    /// <summary>ReLU: gain sqrt(2).</summary>
    Relu,
    /// <summary>Leaky ReLU with slope a: gain sqrt(2 / (1 + a^2)).</summary>
    LeakyRelu,
    /// <summary>SELU: gain 3/4.</summary>
    Selu,
}

/// <summary>Whether Kaiming initialisation keeps the forward (fan-in) or backward (fan-out) variance.</summary>
public enum FanMode
{
    /// <summary>Preserve the variance of activations in the forward pass.</summary>
    FanIn,
    /// <summary>Preserve the variance of gradients in the backward pass.</summary>
    FanOut,
}

/// <summary>
/// Parameter initialisation in place, as torch.nn.init; every function writes without recording a
/// graph and draws from the generator given (or <see cref="Generator.Default"/>). Fans follow
/// PyTorch: fan_in = size(1) * receptive field, fan_out = size(0) * receptive field.
/// </summary>
public static class Init
{
    /// <summary>The recommended gain for a nonlinearity (torch.nn.init.calculate_gain); <paramref name="param"/> is Leaky ReLU's slope (0.01 by default).</summary>
    public static double CalculateGain(Nonlinearity nonlinearity, double? param = null) => nonlinearity switch
    {
        Nonlinearity.Tanh => 5.0 / 3,
        Nonlinearity.Relu => Math.Sqrt(2.0),
        Nonlinearity.LeakyRelu => Math.Sqrt(2.0 / (1 + Math.Pow(param ?? 0.01, 2))),
        Nonlinearity.Selu => 3.0 / 4,
        _ => 1.0,
    };

    /// <summary>(fan_in, fan_out) of a weight of rank at least 2.</summary>
    public static (int FanIn, int FanOut) CalculateFans(Tensor tensor)
    {
        Guard.NotNull(tensor, nameof(CalculateFans), nameof(tensor));
        if (tensor.Rank < 2)
            Guard.ThrowArg(nameof(CalculateFans), nameof(tensor), $"fan in and fan out need a tensor of rank at least 2, got shape {Guard.Shape(tensor)}.");
        int receptive = 1;
        for (int d = 2; d < tensor.Rank; d++) receptive *= tensor.Size(d);
        return (tensor.Size(1) * receptive, tensor.Size(0) * receptive);
    }

    /// <summary>Fills with U(low, high).</summary>
    public static Tensor Uniform(Tensor tensor, double low = 0, double high = 1, Generator? generator = null)
    {
        var g = generator ?? Generator.Default;
        return Fill(tensor, nameof(Uniform), () => low + (high - low) * g.NextDouble());
    }

    /// <summary>Fills with N(mean, std^2).</summary>
    public static Tensor Normal(Tensor tensor, double mean = 0, double std = 1, Generator? generator = null)
    {
        var g = generator ?? Generator.Default;
        return Fill(tensor, nameof(Normal), () => mean + std * g.NextNormal());
    }

    /// <summary>Fills with a constant.</summary>
    public static Tensor Constant(Tensor tensor, double value) => Fill(tensor, nameof(Constant), () => value);

    /// <summary>Fills with zeros.</summary>
    public static Tensor Zeros(Tensor tensor) => Constant(tensor, 0);

    /// <summary>Fills with ones.</summary>
    public static Tensor Ones(Tensor tensor) => Constant(tensor, 1);

    /// <summary>Glorot uniform: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)).</summary>
    public static Tensor XavierUniform(Tensor tensor, double gain = 1, Generator? generator = null)
    {
        var (fanIn, fanOut) = CalculateFans(tensor);
        double a = gain * Math.Sqrt(6.0 / (fanIn + fanOut));
        return Uniform(tensor, -a, a, generator);
    }

    /// <summary>Glorot normal: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)).</summary>
    public static Tensor XavierNormal(Tensor tensor, double gain = 1, Generator? generator = null)
    {
        var (fanIn, fanOut) = CalculateFans(tensor);
        return Normal(tensor, 0, gain * Math.Sqrt(2.0 / (fanIn + fanOut)), generator);
    }

    /// <summary>He uniform: U(-b, b) with b = gain * sqrt(3 / fan), gain from <paramref name="nonlinearity"/> and slope <paramref name="a"/>.</summary>
    public static Tensor KaimingUniform(Tensor tensor, double a = 0, FanMode mode = FanMode.FanIn,
        Nonlinearity nonlinearity = Nonlinearity.LeakyRelu, Generator? generator = null)
    {
        double bound = KaimingStd(tensor, a, mode, nonlinearity) * Math.Sqrt(3.0);
        return Uniform(tensor, -bound, bound, generator);
    }

    /// <summary>He normal: N(0, std^2) with std = gain / sqrt(fan).</summary>
    public static Tensor KaimingNormal(Tensor tensor, double a = 0, FanMode mode = FanMode.FanIn,
        Nonlinearity nonlinearity = Nonlinearity.LeakyRelu, Generator? generator = null) =>
        Normal(tensor, 0, KaimingStd(tensor, a, mode, nonlinearity), generator);

    private static double KaimingStd(Tensor tensor, double a, FanMode mode, Nonlinearity nonlinearity)
    {
        var (fanIn, fanOut) = CalculateFans(tensor);
        int fan = mode == FanMode.FanIn ? fanIn : fanOut;
        if (fan == 0) Guard.ThrowArg("Kaiming", nameof(tensor), $"cannot initialise a tensor of shape {Guard.Shape(tensor)} with a zero fan.");
        return CalculateGain(nonlinearity, a) / Math.Sqrt(fan);
    }

    /// <summary>
    /// A (semi-)orthogonal matrix times <paramref name="gain"/> (Saxe et al. 2013): the Q of the QR
    /// decomposition of a normal matrix, signs fixed so R has a positive diagonal. Dims after the first are flattened.
    /// </summary>
    public static Tensor Orthogonal(Tensor tensor, double gain = 1, Generator? generator = null)
    {
        Guard.NotNull(tensor, nameof(Orthogonal), nameof(tensor));
        if (tensor.Rank < 2) Guard.ThrowArg(nameof(Orthogonal), nameof(tensor), $"needs a tensor of rank at least 2, got shape {Guard.Shape(tensor)}.");
        var g = generator ?? Generator.Default;
        int rows = tensor.Size(0), cols = tensor.NumEl / Math.Max(rows, 1);
        var a = new double[rows, cols];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) a[i, j] = g.NextNormal();
        var q = rows >= cols ? OrthonormalColumns(a, rows, cols) : Transpose(OrthonormalColumns(Transpose(a), cols, rows));
        var values = new double[rows * cols];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) values[i * cols + j] = gain * q[i, j];
        return CopyInto(tensor, values, nameof(Orthogonal));
    }

    // Modified Gram-Schmidt on the columns of a tall matrix: the Q of a QR with a positive diagonal of R.
    private static double[,] OrthonormalColumns(double[,] a, int rows, int cols)
    {
        var q = (double[,])a.Clone();
        for (int j = 0; j < cols; j++)
        {
            for (int k = 0; k < j; k++)
            {
                double dot = 0;
                for (int i = 0; i < rows; i++) dot += q[i, k] * q[i, j];
                for (int i = 0; i < rows; i++) q[i, j] -= dot * q[i, k];
            }
            double norm = 0;
            for (int i = 0; i < rows; i++) norm += q[i, j] * q[i, j];
            norm = Math.Sqrt(norm);
            for (int i = 0; i < rows; i++) q[i, j] /= norm;
        }
        return q;
    }

    private static double[,] Transpose(double[,] a)
    {
        int r = a.GetLength(0), c = a.GetLength(1);
        var t = new double[c, r];
        for (int i = 0; i < r; i++)
            for (int j = 0; j < c; j++) t[j, i] = a[i, j];
        return t;
    }

    private static Tensor Fill(Tensor tensor, string op, Func<double> next)
    {
        Guard.NotNull(tensor, op, nameof(tensor));
        Guard.Floating(tensor, op, nameof(tensor));
        var values = new double[tensor.NumEl];
        for (int i = 0; i < values.Length; i++) values[i] = next();
        return CopyInto(tensor, values, op);
    }

    private static Tensor CopyInto(Tensor tensor, double[] values, string op)
    {
        Guard.Floating(tensor, op, nameof(tensor));
        using (Autograd.NoGrad())
            tensor.CopyFrom(Tensor.FromArray(values, tensor.Shape).To(tensor.DType));
        return tensor;
    }
}
