using GradFlow.Kernels;

namespace GradFlow.Tests.Kernels;

/// <summary>The blocked statistics pass with its histogram (counted block by block) against a plain reference.</summary>
public class StatisticsHistogramTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(33)]
    [InlineData(1023)]
    [InlineData(4096 * 2 + 5)]
    public void HistogramAndSumsMatchThePlainLoop(int n)
    {
        var r = new Random(n);
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)((r.NextDouble() - 0.5) * Math.Pow(2, r.Next(-20, 20)));
        if (n > 3) { x[0] = 0; x[1] = float.NaN; x[2] = float.NegativeInfinity; }
        var acc = new StatsAccumulator();
        var hist = new long[Statistics.FloatRawBins];
        Statistics.Accumulate(x, ref acc, hist);
        var expected = new long[Statistics.FloatRawBins];
        double sumSq = 0;
        foreach (float v in x)
        {
            expected[(int)(BitConverter.SingleToUInt32Bits(v) >> 23)]++;
            if (float.IsFinite(v)) sumSq += (double)v * v;
        }
        Assert.Equal(expected, hist);
        Assert.Equal(n, acc.Count);
        Assert.Equal(sumSq, acc.SumSquares, sumSq * 1e-5 + 1e-30);
    }
}
