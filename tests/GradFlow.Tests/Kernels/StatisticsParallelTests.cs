using GradFlow.Kernels;

namespace GradFlow.Tests.Kernels;

/// <summary>The monitor's passes split over the worker pool agree with one thread and with a plain reference.</summary>
[Collection(ParallelismCollection.Name)]
public class StatisticsParallelTests
{
    [Theory]
    [InlineData(1, 5)]
    [InlineData(200_003, 3)]
    [InlineData(1 << 18, 0)]
    public void SumsAndCountsMatchOneThreadAndAReference(int n, int offset)
    {
        var r = new Random(n);
        var x = new float[n + offset + 2];
        for (int i = 0; i < x.Length; i++) x[i] = (float)r.NextDouble();
        var slice = x.AsSpan(offset, n).ToArray();
        double sumSq = slice.Sum(v => (double)v * v), sum = slice.Sum(v => (double)v);
        long outside = slice.Count(v => v < 0.01f || v > 0.99f);
        foreach (int threads in new[] { 1, 2 })
        {
            ParallelismCollection.WithThreads(threads, () =>
            {
                Assert.Equal(sumSq, StatisticsParallel.SumSquares(x, offset, n), sumSq * 1e-6);
                var (s, q, o) = StatisticsParallel.MomentsAndOutside(x, offset, n, 0.01f, 0.99f);
                Assert.Equal(sum, s, sum * 1e-6);
                Assert.Equal(sumSq, q, sumSq * 1e-6);
                Assert.Equal(outside, o);
            });
        }
    }

    [Theory]
    [InlineData(64, 32, 676)]
    [InlineData(3, 7, 1)]
    [InlineData(128, 1024, 1)]
    [InlineData(5, 3, 40_000)]
    [InlineData(4, 1500, 50)] // more units than the stack buffer: a pooled one
    public void UnitMaximaMatchOneThreadAndAReference(int outer, int units, int inner)
    {
        var r = new Random(outer + units + inner);
        int offset = 3;
        var x = new float[offset + outer * units * inner];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(r.NextDouble() - 0.7);
        var expected = new float[units];
        Array.Fill(expected, float.NegativeInfinity);
        double sum = 0;
        for (int o = 0; o < outer; o++)
            for (int u = 0; u < units; u++)
                for (int i = 0; i < inner; i++)
                {
                    float v = x[offset + (o * units + u) * inner + i];
                    expected[u] = Math.Max(expected[u], v);
                    sum += v;
                }
        foreach (int threads in new[] { 1, 2 })
        {
            ParallelismCollection.WithThreads(threads, () =>
            {
                var max = Enumerable.Repeat(float.NegativeInfinity, units).ToArray();
                var (s, _) = StatisticsParallel.UnitMaxAndMoments(x, offset, outer, units, inner, max);
                Assert.Equal(expected, max);
                Assert.Equal(sum, s, Math.Abs(sum) * 1e-5 + 1e-3);
            });
        }
    }
}
