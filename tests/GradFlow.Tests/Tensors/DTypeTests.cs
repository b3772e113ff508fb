namespace GradFlow.Tests.Tensors;

/// <summary>Conversions, comparisons (0/1 in the input dtype) and int64 arithmetic (labels, indices, accuracy).</summary>
public class DTypeTests
{
    [Fact]
    public void ToConvertsAsTorch()
    {
        var f = Tensor.FromArray(new float[] { -1.7f, 0.5f, 2.9f });
        Assert.Equal(new long[] { -1, 0, 2 }, f.To(DType.Int64).ToArray<long>()); // truncation toward zero
        Assert.Equal(new double[] { 3, -4 }, Tensor.FromArray(new long[] { 3, -4 }).To(DType.Float64).ToArray<double>());
        Assert.Equal(new float[] { 0.1f }, Tensor.FromArray(new double[] { 0.1 }).To(DType.Float32).ToArray<float>());
        Assert.Same(f, f.To(DType.Float32));
    }

    [Fact]
    public void ToOfAViewReadsThroughStrides()
    {
        var t = Tensor.Arange(6).Reshape(2, 3).T.To(DType.Int64);
        Assert.Equal(new long[] { 0, 3, 1, 4, 2, 5 }, t.ToArray<long>());
    }

    [Fact]
    public void ComparisonsGiveBool()
    {
        var x = Tensor.FromArray(new float[] { -1, 0, 2 });
        var gt = x.Gt(0.0);
        Assert.Equal(DType.Bool, gt.DType);
        Assert.Equal([0.0, 0, 1], gt.ToDoubleArray());
        Assert.Equal([1.0, 1, 0], x.Le(0.0).ToDoubleArray());
        Assert.Equal([0.0, 1, 0], x.Eq(Tensor.FromArray(new float[] { 5, 0, 1 })).ToDoubleArray());
        Assert.Equal([1.0, 0, 1], x.Ne(Tensor.Scalar(0)).ToDoubleArray());
        Assert.Equal([1.0, 0, 0], x.Lt(Tensor.Zeros(1)).ToDoubleArray());
        Assert.Equal([0.0, 1, 1], x.Ge(0.0).ToDoubleArray());
    }

    [Fact]
    public void ComparisonsDoNotRecordGradients()
    {
        var x = Tensor.Ones([3], DType.Float32, requiresGrad: true);
        Assert.False(x.Gt(0.0).RequiresGrad);
    }

    [Fact]
    public void Int64ComparisonsAndSum()
    {
        var a = Tensor.FromArray(new long[] { 1, 5, 3, 3 });
        var eq = a.Eq(Tensor.FromArray(new long[] { 1, 4, 3, 0 }));
        Assert.Equal(DType.Bool, eq.DType);
        Assert.Equal([1.0, 0, 1, 0], eq.ToDoubleArray());
        var s = a.Sum();
        Assert.Equal(DType.Int64, s.DType);
        Assert.Equal(12L, s.Item<long>());
        Assert.Equal(new long[] { 4, 8 }, a.Reshape(2, 2).Sum(0).ToArray<long>());
        Assert.Equal(new long[] { 2, 10, 6, 6 }, (a + a).ToArray<long>());
        Assert.Equal(new long[] { -1, -5, -3, -3 }, (-a).ToArray<long>());
    }

    [Fact]
    public void Int64NonIntegralScalarIsRefused()
    {
        var a = Tensor.FromArray(new long[] { 0, 1, 2 });
        Assert.Equal([1.0, 0, 0], a.Lt(1.0).ToDoubleArray());
        var e = Assert.Throws<ArgumentException>(() => a.Lt(0.5));
        Assert.Contains("Lt", e.Message);
        Assert.Throws<ArgumentException>(() => a * 1.5);
        Assert.Throws<ArgumentException>(() => a / 2.0);
        Assert.Throws<ArgumentException>(() => a.Div(a));
    }

    [Fact]
    public void AccuracyFromArgMax()
    {
        var logits = Tensor.FromArray(new float[] { 0.1f, 2, -1, 3, 0, 1, 0, 0, 5, -2, 4, 1 }, 4, 3);
        var labels = Tensor.FromArray(new long[] { 1, 0, 1, 1 });
        var pred = logits.ArgMax(1);
        Assert.Equal(DType.Int64, pred.DType);
        Assert.Equal(new long[] { 1, 0, 2, 1 }, pred.ToArray<long>());
        var correct = pred.Eq(labels).Sum().Item<long>();
        Assert.Equal(3L, correct);
        Assert.Equal(0.75, pred.Eq(labels).To(DType.Float32).Mean().Item());
        Assert.Equal(8L, logits.ArgMax().Item<long>());
    }

    [Fact]
    public void ItemChecksDType()
    {
        Assert.Throws<InvalidOperationException>(() => Tensor.Scalar(1).Item<long>());
        Assert.Throws<InvalidOperationException>(() => Tensor.Ones(2).Item());
    }
}
