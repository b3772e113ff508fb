using System.Runtime.Intrinsics;
using GradFlow.Kernels;

namespace GradFlow.Tests.Kernels;

/// <summary>
/// Accuracy of <see cref="VectorMath"/> in units in the last place: float results are compared with the
/// double-precision reference rounded to float (the correctly rounded result, up to double's own error).
/// The sweep takes every 1021st float bit pattern of both signs (4.2 million inputs, denormals and infinities
/// included) plus every float near the overflow and underflow thresholds, the tanh branch point and saturation,
/// and runs each vector width's kernel directly and the scalar form the elementwise loops use for tails.
/// </summary>
public class VectorMathTests
{
    private const int Stride = 1021;

    // Measured maxima over the sweep, identical at every width and for the scalar form (the float kernels are
    // the same instruction sequence at each width): Exp 1 ulp, Tanh 1 ulp, Sigmoid 2 ulp (e^-|x| and the
    // division each round); Log (widened to double) 1 ulp, from double rounding. Bounds are the measured ones.
    private static readonly Dictionary<string, long> FloatBound = new()
    {
        ["Exp"] = 1, ["Log"] = 1, ["Tanh"] = 1, ["Sigmoid"] = 2,
    };

    private static readonly Lazy<float[]> Sweep = new(FloatSweep);

    private static readonly Lazy<float[]> SortedFinite = new(() =>
    {
        var x = Sweep.Value.Where(float.IsFinite).ToArray();
        Array.Sort(x);
        return [.. x.Distinct()];
    });

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, float[]> References = new();

    public static TheoryData<string, int> FloatFunctions => new()
    {
        { "Exp", 0 }, { "Exp", 128 }, { "Exp", 256 }, { "Exp", 512 },
        { "Log", 0 }, { "Log", 128 }, { "Log", 256 }, { "Log", 512 },
        { "Tanh", 0 }, { "Tanh", 128 }, { "Tanh", 256 }, { "Tanh", 512 },
        { "Sigmoid", 0 }, { "Sigmoid", 128 }, { "Sigmoid", 256 }, { "Sigmoid", 512 },
    };

    [Theory]
    [MemberData(nameof(FloatFunctions))]
    public void FloatIsWithinItsUlpBoundOverTheFullRange(string function, int width)
    {
        var x = Sweep.Value;
        var y = Evaluate(function, width, x);
        var reference = References.GetOrAdd(function, f => [.. x.Select(v => (float)Reference(f, v))]);
        long worst = 0;
        float worstX = 0;
        for (int i = 0; i < x.Length; i++)
        {
            float expected = reference[i];
            if (float.IsNaN(expected) || float.IsNaN(y[i]))
            {
                if (float.IsNaN(expected) != float.IsNaN(y[i]))
                {
                    Assert.Fail($"{function}({x[i]:R}) = {y[i]:R}, expected {expected:R}");
                }

                continue;
            }

            long d = UlpDistance(y[i], expected);
            if (d > worst)
            {
                (worst, worstX) = (d, x[i]);
            }
        }

        Assert.True(worst <= FloatBound[function], $"{function} width {width}: max error {worst} ulp at x = {worstX:R}");
    }

    [Theory]
    [InlineData("Exp", 0)]
    [InlineData("Exp", 128)]
    [InlineData("Exp", 512)]
    [InlineData("Sigmoid", 128)]
    [InlineData("Sigmoid", 512)]
    [InlineData("Tanh", 0)]
    [InlineData("Tanh", 256)]
    public void FloatIsMonotonicAcrossEveryThreshold(string function, int width)
    {
        var x = SortedFinite.Value;
        var y = Evaluate(function, width, x);
        for (int i = 1; i < x.Length; i++)
        {
            if (!(y[i] >= y[i - 1]))
            {
                Assert.Fail($"{function}({x[i]:R}) = {y[i]:R} < {function}({x[i - 1]:R}) = {y[i - 1]:R}");
            }
        }
    }

    [Theory]
    [InlineData("Exp", -745, 709)]
    [InlineData("Log", 1e-300, 1e300)]
    [InlineData("Tanh", -25, 25)]
    [InlineData("Tanh", -1e-3, 1e-3)]
    [InlineData("Sigmoid", -740, 40)]
    public void DoubleIsWithinFourUlp(string function, double lo, double hi)
    {
        var random = new Random(5);
        var x = new double[200_003];
        bool logScale = lo > 0;
        for (int i = 0; i < x.Length; i++)
        {
            double u = random.NextDouble();
            x[i] = logScale ? Math.Exp(Math.Log(lo) + (u * (Math.Log(hi) - Math.Log(lo)))) : lo + (u * (hi - lo));
        }

        var y = new double[x.Length];
        Apply(function, x, y);
        for (int i = 0; i < x.Length; i++)
        {
            double expected = Reference(function, x[i]);
            long d = Math.Abs(BitConverter.DoubleToInt64Bits(y[i]) - BitConverter.DoubleToInt64Bits(expected));
            Assert.True(d <= 4, $"{function}({x[i]:R}) = {y[i]:R}, expected {expected:R} ({d} ulp)");
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(128)]
    [InlineData(256)]
    [InlineData(512)]
    public void SpecialValues(int width)
    {
        float One(string function, float x) => Evaluate(function, width, [x])[0];

        Assert.Equal(1e-8f, One("Tanh", 1e-8f));
        Assert.Equal(-1e-30f, One("Tanh", -1e-30f));
        Assert.Equal(-float.Epsilon, One("Tanh", -float.Epsilon));
        Assert.True(float.IsNegative(One("Tanh", -0f)) && One("Tanh", -0f) == 0);
        Assert.True(float.IsPositive(One("Tanh", 0f)) && One("Tanh", 0f) == 0);
        Assert.Equal(1f, One("Tanh", float.PositiveInfinity));
        Assert.Equal(-1f, One("Tanh", float.NegativeInfinity));
        Assert.Equal(-1f, One("Tanh", -20f));
        Assert.Equal(-1f, One("Tanh", -float.MaxValue));
        Assert.Equal(0.5f, One("Sigmoid", 0f));
        Assert.Equal(0.5f, One("Sigmoid", -0f));
        Assert.Equal((float)(1 / (1 + Math.Exp(100))), One("Sigmoid", -100f));
        Assert.True(One("Sigmoid", -100f) > 0);
        Assert.Equal(0f, One("Sigmoid", -200f));
        Assert.Equal(0f, One("Sigmoid", float.NegativeInfinity));
        Assert.Equal(1f, One("Sigmoid", float.PositiveInfinity));
        Assert.Equal(1f, One("Sigmoid", float.MaxValue));
        Assert.Equal(1f, One("Exp", 0f));
        Assert.Equal(1f, One("Exp", -0f));
        Assert.Equal(float.PositiveInfinity, One("Exp", 100f));
        Assert.Equal(float.PositiveInfinity, One("Exp", float.PositiveInfinity));
        Assert.Equal(float.PositiveInfinity, One("Exp", 88.7229f));
        Assert.True(float.IsFinite(One("Exp", 88.7228f)));
        Assert.Equal(float.Epsilon, One("Exp", -103.9f));
        Assert.Equal(0f, One("Exp", -104f));
        Assert.Equal(0f, One("Exp", -200f));
        Assert.Equal(0f, One("Exp", float.NegativeInfinity));
        Assert.Equal(float.NegativeInfinity, One("Log", 0f));
        Assert.True(float.IsNaN(One("Log", -1f)));
        foreach (string f in new[] { "Exp", "Log", "Tanh", "Sigmoid" })
        {
            Assert.True(float.IsNaN(One(f, float.NaN)), $"{f}(NaN)");
            Assert.True(float.IsNaN(One(f, -float.NaN)), $"{f}(-NaN)");
        }
    }

    [Fact]
    public void TanhIsOddBitForBit()
    {
        var x = Sweep.Value.Where(v => !float.IsNaN(v)).ToArray();
        var y = Evaluate("Tanh", 512, x);
        var yNeg = Evaluate("Tanh", 512, [.. x.Select(v => -v)]);
        for (int i = 0; i < x.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(-y[i]) != BitConverter.SingleToInt32Bits(yNeg[i]))
            {
                Assert.Fail($"Tanh({x[i]:R}) = {y[i]:R} but Tanh({-x[i]:R}) = {yNeg[i]:R}");
            }
        }
    }

    [Fact]
    public void SpanHelperRejectsMismatchedLengths()
    {
        var e = Assert.Throws<ArgumentException>(() => VectorMath.Exp(new float[3], new float[2]));
        Assert.Contains("VectorMath.Exp", e.Message);
    }

    [Fact]
    public void SpanHelperHandlesTailsAndInPlace()
    {
        foreach (int n in new[] { 0, 1, 3, 4, 15, 17, 33 })
        {
            var x = Enumerable.Range(0, n).Select(i => (i * 0.37f) - 3f).ToArray();
            var expected = x.Select(v => (float)Math.Tanh(v)).ToArray();
            VectorMath.Tanh(x, x);
            for (int i = 0; i < n; i++)
            {
                Assert.True(UlpDistance(x[i], expected[i]) <= FloatBound["Tanh"], $"n={n}, i={i}");
            }
        }
    }

    private static float[] FloatSweep()
    {
        var values = new List<float>();
        for (long bits = 0; bits <= 0x7F80_0000L; bits += Stride)
        {
            float v = BitConverter.Int32BitsToSingle((int)bits);
            values.Add(v);
            values.Add(-v);
        }

        // Every float around exp's overflow (88.72) and underflow to denormals and 0 (-87.34, -103.97), each
        // switch of exp's 2^k (x = (k + 1/2) ln 2), tanh's branch point (1) and saturation (9.01, 9.5), and the
        // switch of sigmoid's formula (-80).
        AddEveryFloat(values, 88.5f, 89.5f);
        AddEveryFloat(values, -104.5f, -103.5f);
        AddEveryFloat(values, -87.5f, -87f);
        AddEveryFloat(values, 0.999f, 1.001f);
        AddEveryFloat(values, 8.98f, 9.05f);
        AddEveryFloat(values, 9.45f, 9.55f);
        AddEveryFloat(values, 79.99f, 80.01f);
        for (int k = -151; k <= 128; k++)
        {
            float mid = (float)((k + 0.5) * Math.Log(2));
            AddEveryFloat(values, BitDecrement(mid, 64), BitIncrement(mid, 64));
        }

        values.AddRange([0f, -0f, float.Epsilon, -float.Epsilon, float.MaxValue, -float.MaxValue, float.PositiveInfinity,
            float.NegativeInfinity, float.NaN]);
        return [.. values];
    }

    private static float BitIncrement(float v, int n)
    {
        for (int i = 0; i < n; i++)
        {
            v = MathF.BitIncrement(v);
        }

        return v;
    }

    private static float BitDecrement(float v, int n) => -BitIncrement(-v, n);

    private static void AddEveryFloat(List<float> values, float lo, float hi)
    {
        for (float v = lo; v <= hi; v = MathF.BitIncrement(v))
        {
            values.Add(v);
            values.Add(-v);
        }
    }

    private static double Reference(string function, double x) => function switch
    {
        "Exp" => Math.Exp(x),
        "Log" => Math.Log(x),
        "Tanh" => Math.Tanh(x),
        _ => x < 0 ? Math.Exp(x) / (1 + Math.Exp(x)) : 1 / (1 + Math.Exp(-x)),
    };

    private static void Apply(string function, double[] x, double[] y)
    {
        switch (function)
        {
            case "Exp": VectorMath.Exp(x, y); break;
            case "Log": VectorMath.Log(x, y); break;
            case "Tanh": VectorMath.Tanh(x, y); break;
            default: VectorMath.Sigmoid(x, y); break;
        }
    }

    // Runs the chosen width's vector function directly, so each width is tested whatever the hardware prefers;
    // width 0 is the scalar form the elementwise loops use for tails and strided views.
    private static float[] Evaluate(string function, int width, float[] x)
    {
        if (width == 0)
        {
            var ys = new float[x.Length];
            for (int i = 0; i < x.Length; i++)
            {
                ys[i] = Scalar(function, x[i]);
            }

            return ys;
        }

        int lanes = width / 32;
        var padded = new float[(x.Length + lanes - 1) / lanes * lanes];
        x.CopyTo(padded, 0);
        var y = new float[padded.Length];
        for (int i = 0; i < padded.Length; i += lanes)
        {
            var chunk = padded.AsSpan(i, lanes);
            var result = y.AsSpan(i, lanes);
            switch (width)
            {
                case 512: Vec512(function, Vector512.Create<float>(chunk)).CopyTo(result); break;
                case 256: Vec256(function, Vector256.Create<float>(chunk)).CopyTo(result); break;
                default: Vec128(function, Vector128.Create<float>(chunk)).CopyTo(result); break;
            }
        }

        return y[..x.Length];
    }

    private static float Scalar(string f, float v) => f switch
    {
        "Exp" => ExpOp.Invoke(v),
        "Log" => LogOp.Invoke(v),
        "Tanh" => TanhOp.Invoke(v),
        _ => SigmoidOp.Invoke(v),
    };

    private static Vector512<float> Vec512(string f, Vector512<float> v) => f switch
    {
        "Exp" => VectorMath.Exp(v),
        "Log" => VectorMath.Log(v),
        "Tanh" => VectorMath.Tanh(v),
        _ => VectorMath.Sigmoid(v),
    };

    private static Vector256<float> Vec256(string f, Vector256<float> v) => f switch
    {
        "Exp" => VectorMath.Exp(v),
        "Log" => VectorMath.Log(v),
        "Tanh" => VectorMath.Tanh(v),
        _ => VectorMath.Sigmoid(v),
    };

    private static Vector128<float> Vec128(string f, Vector128<float> v) => f switch
    {
        "Exp" => VectorMath.Exp(v),
        "Log" => VectorMath.Log(v),
        "Tanh" => VectorMath.Tanh(v),
        _ => VectorMath.Sigmoid(v),
    };

    // Distance in representable floats; the sign-magnitude bits are mapped to a monotonic integer line.
    private static long UlpDistance(float a, float b) => Math.Abs(Ordered(a) - Ordered(b));

    private static long Ordered(float v)
    {
        int bits = BitConverter.SingleToInt32Bits(v);
        return bits < 0 ? -(long)(bits & 0x7FFF_FFFF) : bits;
    }
}
