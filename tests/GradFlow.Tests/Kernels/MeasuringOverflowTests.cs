using GradFlow.Kernels;

namespace GradFlow.Tests.Kernels;

/// <summary>
/// The measuring kernels sum squares of finite float32 values without overflow: values of 1e25 have squares of 1e50,
/// past float's 3.4e38, so float lanes alone would report an infinite norm for finite data. A NaN or Inf still shows.
/// </summary>
public class MeasuringOverflowTests
{
    // Large alternating values (odd length, so every width's tail runs) and their double sums.
    private static float[] Large(int n, float scale = 1e25f) => [.. Enumerable.Range(0, n).Select(i => (i % 2 == 0 ? 1 : -1) * scale * (1 + (i % 7) / 8f))];

    private static double SumSq(float[] x) => x.Sum(v => (double)v * v);

    private static void Close(double expected, double actual, string what)
    {
        Assert.True(double.IsFinite(actual), $"{what}: {actual} for finite values");
        Assert.True(Math.Abs(expected - actual) <= 1e-5 * expected, $"{what}: expected {expected:R}, got {actual:R}");
    }

    [Theory]
    [InlineData(17)]
    [InlineData(4099)]
    [InlineData(70_001)]
    public void ActivationPassesSumLargeFiniteValuesInDouble(int n)
    {
        var y = Large(n);
        double sq = SumSq(y), sum = y.Sum(v => (double)v);
        var (s, q) = ActivationKernels.Moments(y);
        Close(sq, q, "Moments");
        Assert.Equal(sum, s, Math.Abs(sum) * 1e-5 + 1e20);
        Close(sq, ActivationKernels.SumSquares(y), "SumSquares");
        var (_, q2, outside) = ActivationKernels.MomentsAndOutside(y, -1, 1);
        Close(sq, q2, "MomentsAndOutside");
        Assert.Equal(n, outside);
        Close(sq, StatisticsParallel.SumSquares(y, 0, n), "StatisticsParallel.SumSquares");

        var acc = new StatsAccumulator();
        Statistics.Accumulate(y, ref acc, default);
        Close(sq, acc.SumSquares, "Statistics.Accumulate");
        Assert.Equal(0, acc.NaNs + acc.Infs);
    }

    [Fact]
    public void FusedActivationKernelsSumLargeFiniteValuesInDouble()
    {
        int n = 4099;
        var x = Large(n);
        var relu = x.Select(v => Math.Max(v, 0f)).ToArray();
        var y = new float[n];
        var (_, q) = ActivationKernels.UnaryWithUnitMax<ReluOp>(x, y, 1, n, 1, Enumerable.Repeat(float.NegativeInfinity, n).ToArray());
        Close(SumSq(relu), q, "UnaryWithUnitMax");
        var (gs, ds) = ActivationKernels.GradAndSquares<ReluGradOp>(x, relu, new float[n]);
        Close(SumSq(x), gs, "GradAndSquares (gradient in)");
        Close(SumSq(x.Where((_, i) => relu[i] > 0).ToArray()), ds, "GradAndSquares (gradient out)");
    }

    [Fact]
    public void NonFiniteValuesStillGiveNonFiniteSums()
    {
        var y = Large(4099, 1f);
        y[100] = float.NaN;
        Assert.True(double.IsNaN(ActivationKernels.SumSquares(y)));
        Assert.True(double.IsNaN(ActivationKernels.Moments(y).SumSquares));
        y[100] = float.PositiveInfinity;
        Assert.True(double.IsPositiveInfinity(ActivationKernels.SumSquares(y)));
        var acc = new StatsAccumulator();
        Statistics.Accumulate(y, ref acc, default);
        Assert.Equal(1, acc.Infs);
        Assert.True(double.IsFinite(acc.SumSquares)); // counted apart, kept out of the sums
    }
}
