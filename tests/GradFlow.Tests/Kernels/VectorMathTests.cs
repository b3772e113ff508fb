using System.Runtime.Intrinsics;
using GradFlow.Kernels;

namespace GradFlow.Tests.Kernels;

/// <summary>
/// Accuracy of <see cref="VectorMath"/> in units in the last place: float results are compared with the
/// double-precision reference rounded to float (the correctly rounded result, up to double's own error),
/// over a sweep of every 1021st float bit pattern of both signs, denormals and infinities included.
/// </summary>
public class VectorMathTests
{
    private const int Stride = 1021;

    public static TheoryData<string, int> FloatFunctions => new()
    {
        { "Exp", 128 }, { "Exp", 256 }, { "Exp", 512 },
        { "Log", 128 }, { "Log", 256 }, { "Log", 512 },
        { "Tanh", 128 }, { "Tanh", 256 }, { "Tanh", 512 },
        { "Sigmoid", 128 }, { "Sigmoid", 256 }, { "Sigmoid", 512 },
    };

    [Theory]
    [MemberData(nameof(FloatFunctions))]
    public void FloatIsWithinOneUlpOverTheFullRange(string function, int width)
    {
        var x = FloatSweep();
        var y = Evaluate(function, width, x);
        long worst = 0;
        float worstX = 0;
        for (int i = 0; i < x.Length; i++)
        {
            float expected = (float)Reference(function, x[i]);
            if (float.IsNaN(expected) || float.IsNaN(y[i]))
            {
                Assert.True(float.IsNaN(expected) && float.IsNaN(y[i]), $"{function}({x[i]:R}) = {y[i]:R}, expected {expected:R}");
                continue;
            }

            long d = UlpDistance(y[i], expected);
            if (d > worst)
            {
                (worst, worstX) = (d, x[i]);
            }
        }

        Assert.True(worst <= 1, $"{function} Vector{width}: max error {worst} ulp at x = {worstX:R}");
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

    [Fact]
    public void SpecialValues()
    {
        Assert.Equal(1e-8f, One("Tanh", 1e-8f));
        Assert.Equal(-1e-30f, One("Tanh", -1e-30f));
        Assert.True(float.IsNegative(One("Tanh", -0f)));
        Assert.Equal(1f, One("Tanh", float.PositiveInfinity));
        Assert.Equal(-1f, One("Tanh", float.NegativeInfinity));
        Assert.Equal(-1f, One("Tanh", -20f));
        Assert.Equal((float)(1 / (1 + Math.Exp(100))), One("Sigmoid", -100f));
        Assert.True(One("Sigmoid", -100f) > 0);
        Assert.Equal(0f, One("Sigmoid", -200f));
        Assert.Equal(1f, One("Sigmoid", float.PositiveInfinity));
        Assert.Equal(float.PositiveInfinity, One("Exp", 100f));
        Assert.Equal(0f, One("Exp", -200f));
        Assert.Equal(float.NegativeInfinity, One("Log", 0f));
        Assert.True(float.IsNaN(One("Log", -1f)));
        foreach (string f in new[] { "Exp", "Log", "Tanh", "Sigmoid" })
        {
            Assert.True(float.IsNaN(One(f, float.NaN)), $"{f}(NaN)");
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
                Assert.True(UlpDistance(x[i], expected[i]) <= 1, $"n={n}, i={i}");
            }
        }
    }

    private static float One(string function, float x) => Evaluate(function, 512, [x])[0];

    private static float[] FloatSweep()
    {
        var values = new List<float>();
        for (long bits = 0; bits <= 0x7F80_0000L; bits += Stride)
        {
            float v = BitConverter.Int32BitsToSingle((int)bits);
            values.Add(v);
            values.Add(-v);
        }

        values.AddRange([0f, -0f, float.Epsilon, float.MaxValue, float.PositiveInfinity, float.NegativeInfinity, float.NaN]);
        return [.. values];
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

    // Runs the chosen width's vector function directly, so each width is tested whatever the hardware prefers.
    private static float[] Evaluate(string function, int width, float[] x)
    {
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

    private static Vector512<float> Vec512(string f, Vector512<float> v) => f switch
    {
        "Exp" => VectorMath.Exp(v), "Log" => VectorMath.Log(v), "Tanh" => VectorMath.Tanh(v), _ => VectorMath.Sigmoid(v),
    };

    private static Vector256<float> Vec256(string f, Vector256<float> v) => f switch
    {
        "Exp" => VectorMath.Exp(v), "Log" => VectorMath.Log(v), "Tanh" => VectorMath.Tanh(v), _ => VectorMath.Sigmoid(v),
    };

    private static Vector128<float> Vec128(string f, Vector128<float> v) => f switch
    {
        "Exp" => VectorMath.Exp(v), "Log" => VectorMath.Log(v), "Tanh" => VectorMath.Tanh(v), _ => VectorMath.Sigmoid(v),
    };

    // Distance in representable floats; the sign-magnitude bits are mapped to a monotonic integer line.
    private static long UlpDistance(float a, float b) => Math.Abs(Ordered(a) - Ordered(b));

    private static long Ordered(float v)
    {
        int bits = BitConverter.SingleToInt32Bits(v);
        return bits < 0 ? -(long)(bits & 0x7FFF_FFFF) : bits;
    }
}
