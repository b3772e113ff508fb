using GradFlow.Diagnostics;

namespace GradFlow.Tests.Diagnostics;

public class TensorStatsTests
{
    [Fact]
    public void KnownValuesGiveExactStatisticsAndBuckets()
    {
        var t = Tensor.FromArray(new float[] { 0, 1, -2, 3, float.NaN, float.PositiveInfinity, 0.5f, -0f });
        var s = TensorStats.Of(t);
        Assert.Equal(8, s.Count);
        Assert.Equal(Math.Sqrt(1 + 4 + 9 + 0.25), s.L2Norm, 12);
        Assert.Equal(3, s.MaxAbs);
        Assert.Equal((1 + 2 + 3 + 0.5) / 6, s.MeanAbs, 12);
        Assert.Equal(2.0 / 8, s.ZeroFraction);
        Assert.Equal(1, s.NaNCount);
        Assert.Equal(1, s.InfCount);
        var h = s.Histogram!;
        Assert.Equal(2, h.Zero);
        Assert.Equal(2, h.NonFinite);
        Assert.Equal(1, h.Positive[Log2Histogram.BucketOf(0)]);   // 1 in [1, 2)
        Assert.Equal(1, h.Positive[Log2Histogram.BucketOf(1)]);   // 3 in [2, 4)
        Assert.Equal(1, h.Positive[Log2Histogram.BucketOf(-1)]);  // 0.5 in [0.5, 1)
        Assert.Equal(1, h.Negative[Log2Histogram.BucketOf(1)]);   // -2 in [2, 4)
        Assert.Equal(8, h.Total);
    }

    [Fact]
    public void TinyAndHugeMagnitudesLandInTheEdgeBuckets()
    {
        var t = Tensor.FromArray(new float[] { 1e-30f, float.Epsilon, 1e10f, -1e-20f });
        var h = TensorStats.Of(t).Histogram!;
        Assert.Equal(2, h.Positive[0]);                              // 1e-30 and a denormal
        Assert.Equal(1, h.Positive[Log2Histogram.BucketCount - 1]);  // 1e10 > 2^15
        Assert.Equal(1, h.Negative[0]);
        Assert.Equal(0, h.Zero);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(17)]
    [InlineData(4095)]
    [InlineData(10_001)]
    public void LargeTensorsMatchADoublePrecisionReference(int n)
    {
        var t = Tensor.Randn([n], DType.Float32, new Generator((ulong)n)) * 3.0;
        var v = t.ToDoubleArray();
        var s = TensorStats.Of(t);
        Assert.Equal(Math.Sqrt(v.Sum(x => x * x)), s.L2Norm, 1e-5 * s.L2Norm);
        Assert.Equal(v.Max(Math.Abs), s.MaxAbs, 1e-6);
        Assert.Equal(v.Average(Math.Abs), s.MeanAbs, 1e-5 * s.MeanAbs);
        Assert.Equal(n, s.Histogram!.Total);
    }

    [Fact]
    public void Float64AndStridedViewsAreMeasuredToo()
    {
        var t = Tensor.FromArray(new double[] { 1, 2, 3, 4, 5, 6 }, 2, 3).T;
        var s = TensorStats.Of(t);
        Assert.Equal(Math.Sqrt(91), s.L2Norm, 12);
        Assert.Equal(1, s.Histogram!.Positive[Log2Histogram.BucketOf(0)]);
        Assert.Equal(2, s.Histogram!.Positive[Log2Histogram.BucketOf(1)]); // 2 and 3
        Assert.Equal(3, s.Histogram!.Positive[Log2Histogram.BucketOf(2)]); // 4, 5 and 6
    }

    [Fact]
    public void HistogramsAddBucketByBucket()
    {
        var a = TensorStats.Of(Tensor.FromArray(new float[] { 1, -1, 0 })).Histogram!;
        var b = TensorStats.Of(Tensor.FromArray(new float[] { 1.5f, float.NaN })).Histogram!;
        a.Add(b);
        Assert.Equal(2, a.Positive[Log2Histogram.BucketOf(0)]);
        Assert.Equal(1, a.Zero);
        Assert.Equal(1, a.NonFinite);
        Assert.Equal(5, a.Total);
    }
}
