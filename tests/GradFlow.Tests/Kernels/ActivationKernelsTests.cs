using GradFlow.Kernels;

namespace GradFlow.Tests.Kernels;

public class ActivationKernelsTests
{
    [Theory]
    [InlineData(3, 7, 1)]
    [InlineData(2, 33, 1)]
    [InlineData(4, 5, 17)]
    [InlineData(1, 3, 676)]
    [InlineData(5, 1, 1)]
    public void UnitMaxAndMomentsMatchAPlainReference(int outer, int units, int inner)
    {
        var g = new Generator((ulong)(outer * 1000 + units * 10 + inner));
        var y = Tensor.Randn([outer * units * inner], DType.Float32, g).ToArray<float>();
        for (int i = 0; i < y.Length; i += 3) y[i] = Math.Min(y[i], 0); // some units mostly non-positive
        var unitMax = Enumerable.Repeat(float.NegativeInfinity, units).ToArray();
        var (sum, sumSq) = ActivationKernels.UnitMaxAndMoments(y, outer, units, inner, unitMax);
        for (int u = 0; u < units; u++)
        {
            float expected = float.NegativeInfinity;
            for (int o = 0; o < outer; o++)
                for (int i = 0; i < inner; i++) expected = Math.Max(expected, y[(o * units + u) * inner + i]);
            Assert.Equal(expected, unitMax[u]);
        }
        Assert.Equal(y.Sum(v => (double)v), sum, 1e-4);
        Assert.Equal(y.Sum(v => (double)v * v), sumSq, 1e-3);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(15)]
    [InlineData(17)]
    [InlineData(4099)]
    public void MomentsAndOutsideMatchAPlainReference(int n)
    {
        var y = Tensor.Rand([n], DType.Float32, new Generator((ulong)n)).ToArray<float>();
        var (sum, sumSq, outside) = ActivationKernels.MomentsAndOutside(y, 0.01f, 0.99f);
        Assert.Equal(y.Count(v => v < 0.01f || v > 0.99f), outside);
        Assert.Equal(y.Sum(v => (double)v), sum, 1e-3);
        Assert.Equal(y.Sum(v => (double)v * v), sumSq, 1e-3);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(15)]
    [InlineData(63)]
    [InlineData(65)]
    [InlineData(4099)]
    [InlineData(12_345)]
    public void SumSquaresMatchesAPlainReferenceAndShowsANaN(int n)
    {
        var y = Tensor.Randn([n], DType.Float32, new Generator((ulong)n + 7)).ToArray<float>();
        double expected = y.Sum(v => (double)v * v);
        Assert.Equal(expected, ActivationKernels.SumSquares(y), Math.Max(1e-4, expected * 1e-6));
        Assert.Equal(expected, ActivationKernels.SumSquares(y.Concat(new[] { 0f, 0f }).ToArray().AsSpan(0, n)), Math.Max(1e-4, expected * 1e-6));
        if (n == 0) return;
        y[n / 2] = float.NaN;
        Assert.True(double.IsNaN(ActivationKernels.SumSquares(y)));
    }
}

public class SampledHistogramTests
{
    [Fact]
    public void ASampleCountsEvenlySpreadRunsAndAFullPassCountsEverything()
    {
        // Value i has exponent bucket floor(log2(i + 1)) for runs of 256: the sample must reach both ends.
        var x = Enumerable.Range(0, 65_536).Select(i => (float)(i + 1)).ToArray();
        x[0] = 0;
        var raw = new long[Statistics.FloatRawBins];
        long counted = Statistics.Histogram(x, raw, 4096, out long zeros);
        Assert.Equal(4096, counted);                 // 16 runs of 256
        Assert.Equal(4096, raw.Sum());
        Assert.Equal(1, zeros);                      // the first run is always taken
        Assert.True(raw[127 + 15] > 0, "the last runs (values near 65536, exponent 15) were not sampled");

        Array.Clear(raw);
        counted = Statistics.Histogram(x, raw, 0, out zeros);
        Assert.Equal(65_536, counted);
        Assert.Equal(1, zeros);
        Assert.Equal(2, raw[127 + 1]);               // 2 and 3 have exponent 1 (1 was replaced by the zero)
        Assert.Equal(32_768, raw[127 + 15]);         // 32768..65535 have exponent 15
    }
}
