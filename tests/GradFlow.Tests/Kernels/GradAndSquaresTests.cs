using GradFlow.Kernels;

namespace GradFlow.Tests.Kernels;

/// <summary>
/// The activation kernels that measure for the monitor in their own pass: the backward writes bitwise the unmeasured
/// kernel's gradient, at one thread and two, and its two sums are the squared norms of what it read and wrote; the
/// sigmoid and tanh forwards write bitwise the unmeasured output, with its moments and saturated count.
/// </summary>
[Collection(ParallelismCollection.Name)]
public class GradAndSquaresTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(15)]
    [InlineData(47)]
    [InlineData(4097)]
    [InlineData(70_001)] // above the split threshold at two threads
    public void ResultIsTheUnmeasuredKernelsAndTheSumsAreTheSquaredNorms(int n)
    {
        var r = new Random(n + 1);
        var g = new float[n + 3];
        var y = new float[n + 5];
        for (int i = 0; i < g.Length; i++) g[i] = (float)((r.NextDouble() * 2) - 1) * (i % 7 == 0 ? 0 : 3);
        for (int i = 0; i < y.Length; i++) y[i] = (float)r.NextDouble();
        Check<SigmoidGradOp>(g, y, n);
        Check<TanhGradOp>(g, y, n);
        Check<ReluGradOp>(g, y.Select(v => v - 0.5f).ToArray(), n);
    }

    private static void Check<TOp>(float[] g, float[] y, int n) where TOp : struct, IBinaryOp
    {
        var expected = new float[n];
        Elementwise.Binary<TOp, float>(g.AsSpan(3, n), y.AsSpan(5, n), expected);
        double gSq = g.Skip(3).Take(n).Sum(v => (double)v * v), dSq = expected.Sum(v => (double)v * v);
        foreach (int threads in new[] { 1, 2 })
        {
            ParallelismCollection.WithThreads(threads, () =>
            {
                var dx = new float[n + 2];
                var (gs, ds) = StatisticsParallel.GradAndSquares<TOp>(g, 3, y, 5, dx, 2, n);
                Assert.Equal(expected, dx.AsSpan(2, n).ToArray());
                Assert.Equal(gSq, gs, (gSq * 1e-6) + 1e-30);
                Assert.Equal(dSq, ds, (dSq * 1e-6) + 1e-30);
            });
        }
    }

    [Fact]
    public void ANonFiniteGradientMakesTheSumNonFinite()
    {
        var g = Enumerable.Range(0, 100).Select(i => (float)i).ToArray();
        var y = Enumerable.Repeat(0.5f, 100).ToArray();
        g[63] = float.NaN;
        var (gs, ds) = ActivationKernels.GradAndSquares<SigmoidGradOp>(g, y, new float[100]);
        Assert.True(double.IsNaN(gs) && double.IsNaN(ds));
        g[63] = float.PositiveInfinity;
        (gs, _) = ActivationKernels.GradAndSquares<SigmoidGradOp>(g, y, new float[100]);
        Assert.True(double.IsPositiveInfinity(gs));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(13)]
    [InlineData(4096 + 4101)]
    [InlineData(50_001)] // above the unary split threshold at two threads
    public void ForwardOutputIsTheUnmeasuredKernelsWithItsMoments(int n)
    {
        var r = new Random(n + 2);
        var x = new float[n + 3];
        for (int i = 0; i < x.Length; i++) x[i] = (float)((r.NextDouble() * 16) - 8);
        CheckForward<SigmoidOp>(x, n, 0.01f, 0.99f);
        CheckForward<TanhOp>(x, n, -0.99f, 0.99f);
    }

    private static void CheckForward<TOp>(float[] x, int n, float lo, float hi) where TOp : struct, IUnaryOp
    {
        var expected = new float[n];
        Elementwise.Unary<TOp, float>(x.AsSpan(3, n), expected);
        double sum = expected.Sum(v => (double)v), sumSq = expected.Sum(v => (double)v * v);
        long outside = expected.Count(v => v < lo || v > hi);
        foreach (int threads in new[] { 1, 2 })
        {
            ParallelismCollection.WithThreads(threads, () =>
            {
                var y = new float[n + 1];
                var (s, q, o) = StatisticsParallel.UnaryWithMoments<TOp>(x, 3, y, 1, n, lo, hi);
                Assert.Equal(expected, y.AsSpan(1, n).ToArray());
                Assert.Equal(sum, s, (Math.Abs(sum) * 1e-6) + 1e-3);
                Assert.Equal(sumSq, q, (sumSq * 1e-6) + 1e-30);
                Assert.Equal(outside, o);
            });
        }
    }

    [Theory]
    [InlineData(3, 5, 1)]     // fewer units than a vector: one lane at a time
    [InlineData(7, 3, 9)]
    [InlineData(2, 4, 40)]    // a pair of vectors and an overlapping last one
    [InlineData(5, 20, 17)]   // one vector and an overlapping last one
    [InlineData(4, 16, 48)]
    [InlineData(64, 300, 1)]  // a feature row ending in an overlapping vector
    [InlineData(40, 16, 676)] // channels of an image batch, above the split threshold at two threads
    public void RectifierOutputIsTheUnmeasuredKernelsWithItsUnitMaxima(int outer, int units, int inner)
    {
        int n = outer * units * inner;
        var r = new Random(n);
        var x = new float[n + 2];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(r.NextDouble() - 0.8);
        var expected = new float[n];
        Elementwise.Unary<ReluOp, float>(x.AsSpan(2, n), expected);
        var maxima = new float[units];
        Array.Fill(maxima, float.NegativeInfinity);
        for (int i = 0; i < n; i++) maxima[i / inner % units] = Math.Max(maxima[i / inner % units], expected[i]);
        double sum = expected.Sum(v => (double)v), sumSq = expected.Sum(v => (double)v * v);
        foreach (int threads in new[] { 1, 2 })
        {
            ParallelismCollection.WithThreads(threads, () =>
            {
                var y = new float[n];
                var max = Enumerable.Repeat(float.NegativeInfinity, units).ToArray();
                var (s, q) = StatisticsParallel.UnaryWithUnitMax<ReluOp>(x, 2, y, 0, outer, units, inner, max);
                Assert.Equal(expected, y);
                Assert.Equal(maxima, max);
                Assert.Equal(sum, s, (sum * 1e-6) + 1e-30);
                Assert.Equal(sumSq, q, (sumSq * 1e-6) + 1e-30);
            });
        }
    }
}
