using GradFlow.Kernels;

namespace GradFlow.Tests.Kernels;

/// <summary>
/// <see cref="PrecisionConversion"/> against the scalar cast, bit for bit, at lengths that leave every tail size of the
/// vector loop, and its finiteness flag with one NaN or infinity placed in the vector body and in the tail.
/// </summary>
public class PrecisionConversionTests
{
    private static double[] Doubles(int n)
    {
        var gen = new Generator(7);
        var x = new double[n];
        // Normal values, values that round on narrowing, float's extremes (overflow to infinity is the cast's rule) and denormals.
        double[] special = [0.0, -0.0, 1e-40, -1e-45, 3.4028235677973366e38, 3.5e38, -3.5e38, 1.0000000596046448, double.Epsilon];
        for (int i = 0; i < n; i++) x[i] = i < special.Length ? special[i] : gen.NextNormal() * Math.Pow(10, (i % 17) - 8);
        return x;
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(8)]
    [InlineData(13)]
    [InlineData(1027)]
    public void NarrowAndWiden_MatchTheScalarCastBitForBit(int n)
    {
        var x = Doubles(n);
        var f = new float[n];
        bool finite = PrecisionConversion.Narrow(x, f);
        for (int i = 0; i < n; i++) Assert.Equal(BitConverter.SingleToInt32Bits((float)x[i]), BitConverter.SingleToInt32Bits(f[i]));
        Assert.True(finite); // every source double is finite, even those that overflow float
        var back = new double[n];
        bool backFinite = PrecisionConversion.Widen(f, back);
        for (int i = 0; i < n; i++) Assert.Equal(BitConverter.DoubleToInt64Bits(f[i]), BitConverter.DoubleToInt64Bits(back[i]));
        Assert.Equal(f.All(float.IsFinite), backFinite);
        var copy = new double[n];
        Assert.True(PrecisionConversion.Copy(x, copy));
        Assert.Equal(x, copy);
    }

    [Theory]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    [InlineData(double.NegativeInfinity)]
    public void OneNonFiniteValue_AnywhereIsSeen(double bad)
    {
        const int n = 37; // four 8-wide vectors and a tail of five
        foreach (int at in new[] { 0, 5, 17, 31, 32, 36 })
        {
            var x = Doubles(n).Select(v => Math.Clamp(v, -1e30, 1e30)).ToArray();
            x[at] = bad;
            Assert.False(PrecisionConversion.Narrow(x, new float[n]), $"Narrow missed {bad} at {at}");
            Assert.False(PrecisionConversion.Copy(x, new double[n]), $"Copy missed {bad} at {at}");
            Assert.False(PrecisionConversion.AllFinite(x), $"AllFinite missed {bad} at {at}");
            var f = x.Select(v => (float)v).ToArray();
            Assert.False(PrecisionConversion.Widen(f, new double[n]), $"Widen missed {bad} at {at}");
            x[at] = 1;
            Assert.True(PrecisionConversion.AllFinite(x));
        }
    }

    [Fact]
    public void LengthMismatch_NamesTheDestination()
    {
        var e = Assert.Throws<ArgumentException>(() => PrecisionConversion.Narrow(new double[4], new float[3]));
        Assert.Contains("dst", e.Message);
        Assert.Throws<ArgumentException>(() => PrecisionConversion.Widen(new float[4], new double[5]));
    }
}
