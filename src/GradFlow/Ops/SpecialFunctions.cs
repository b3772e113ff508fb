namespace GradFlow;

// Pointwise special functions the activations need (GELU's erf, Softplus), each beside its derivative.
// They are computed in double per element (float32 results are rounded once); the backward
// formulas are tensor ops, so second derivatives come for free.
public sealed partial class Tensor
{
    /// <summary>The error function erf(x) = 2/sqrt(pi) * integral_0^x e^(-t^2) dt.</summary>
    public Tensor Erf()
    {
        var y = MapDouble(this, SpecialMath.Erf, nameof(Erf));
        return Autograd.Record(OpNames.Erf, y, Autograd.NeedsGrad(this) ? new ErfBackward(this) : null, this);
    }

    /// <summary>
    /// log(1 + e^(beta x)) / beta, computed without overflow; where beta x exceeds <paramref name="threshold"/>
    /// it is x itself (torch.nn.functional.softplus).
    /// </summary>
    public Tensor Softplus(double beta = 1, double threshold = 20)
    {
        if (beta == 0 || !double.IsFinite(beta)) Guard.ThrowArg(nameof(Softplus), nameof(beta), $"beta must be finite and non-zero, got {beta}.");
        var y = MapDouble(this, x =>
        {
            double z = beta * x;
            return z > threshold ? x : (Math.Max(z, 0) + Math.Log(1 + Math.Exp(-Math.Abs(z)))) / beta;
        }, nameof(Softplus));
        return Autograd.Record(OpNames.Softplus, y, Autograd.NeedsGrad(this) ? new SoftplusBackward(this, beta, threshold) : null, this);
    }

    /// <summary>Applies a scalar function in double precision to every element (no autograd).</summary>
    internal static Tensor MapDouble(Tensor x, Func<double, double> f, string op)
    {
        Guard.Floating(x, op);
        var c = x.ContiguousRaw();
        var y = Empty(x.ShapeArray, x.DType);
        if (x.DType == DType.Float32)
        {
            var s = c.Span<float>(); var d = y.Span<float>();
            for (int i = 0; i < s.Length; i++) d[i] = (float)f(s[i]);
        }
        else
        {
            var s = c.Span<double>(); var d = y.Span<double>();
            for (int i = 0; i < s.Length; i++) d[i] = f(s[i]);
        }
        return y;
    }
}

internal sealed class ErfBackward : Node
{
    public ErfBackward(Tensor x) => Save(x);

    // d erf(x)/dx = 2/sqrt(pi) e^(-x^2)
    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        var x = Saved(0);
        return [g[0]! * (x * x).Neg().Exp() * (2 / Math.Sqrt(Math.PI))];
    }
}

internal sealed class SoftplusBackward : Node
{
    private readonly double _beta, _threshold;

    public SoftplusBackward(Tensor x, double beta, double threshold)
    {
        (_beta, _threshold) = (beta, threshold);
        Save(x);
    }

    // d softplus/dx = sigmoid(beta x), and 1 in the linear region beta x > threshold.
    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        var x = Saved(0);
        var z = x * _beta;
        var linear = z.Gt(_threshold);
        return [g[0]! * Tensor.Where(linear, Tensor.OnesLike(x), z.Sigmoid())];
    }
}

/// <summary>Scalar special functions to double precision.</summary>
internal static class SpecialMath
{
    /// <summary>
    /// erf(x) to about 1e-15: for |x| &lt; 3 the series erf(x) = 2/sqrt(pi) e^(-x^2) sum 2^n x^(2n+1) / (1*3*...*(2n+1))
    /// (all terms positive, so no cancellation); beyond, 1 - erfc(x) from erfc's continued fraction (Lentz).
    /// </summary>
    public static double Erf(double x)
    {
        if (double.IsNaN(x)) return x;
        double ax = Math.Abs(x);
        if (ax >= 6) return Math.Sign(x);
        double r = ax < 3 ? ErfSeries(ax) : 1 - ErfcContinuedFraction(ax);
        return x < 0 ? -r : r;
    }

    private static double ErfSeries(double x)
    {
        double x2 = x * x, term = x, sum = x;
        for (int n = 1; n < 200 && term > sum * 1e-17; n++)
        {
            term *= 2 * x2 / (2 * n + 1);
            sum += term;
        }
        return 2 / Math.Sqrt(Math.PI) * Math.Exp(-x2) * sum;
    }

    // erfc(x) = e^(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...))))), evaluated by modified Lentz.
    private static double ErfcContinuedFraction(double x)
    {
        const double tiny = 1e-300;
        double f = x, c = x, d = 0;
        for (int n = 1; n < 500; n++)
        {
            double a = n / 2.0;
            d = x + a * d;
            d = Math.Abs(d) < tiny ? 1 / tiny : 1 / d;
            c = x + a / c;
            if (Math.Abs(c) < tiny) c = tiny;
            double delta = c * d;
            f *= delta;
            if (Math.Abs(delta - 1) < 1e-16) break;
        }
        return Math.Exp(-x * x) / Math.Sqrt(Math.PI) / f;
    }
}
