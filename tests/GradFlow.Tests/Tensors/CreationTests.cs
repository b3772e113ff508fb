namespace GradFlow.Tests.Tensors;

public class CreationTests
{
    [Fact]
    public void FromArrayCopiesAndShapes()
    {
        var data = new float[] { 1, 2, 3, 4, 5, 6 };
        var t = Tensor.FromArray(data, 2, 3);
        data[0] = 99;
        Assert.Equal([2, 3], t.Shape.ToArray());
        Assert.Equal(DType.Float32, t.DType);
        Assert.Equal(new float[] { 1, 2, 3, 4, 5, 6 }, t.ToArray<float>());
        Assert.Equal([6], Tensor.FromArray(data).Shape.ToArray());
        Assert.Equal(DType.Float64, Tensor.FromArray(new double[] { 1 }).DType);
        Assert.Equal(DType.Int64, Tensor.FromArray(new long[] { 1 }).DType);
    }

    [Fact]
    public void ZerosOnesFull()
    {
        Assert.All(Tensor.Zeros(2, 3).ToArray<float>(), v => Assert.Equal(0f, v));
        Assert.All(Tensor.Ones(4).ToArray<float>(), v => Assert.Equal(1f, v));
        var f = Tensor.Full([2, 2], 2.5, DType.Float64);
        Assert.Equal(DType.Float64, f.DType);
        Assert.Equal(new double[] { 2.5, 2.5, 2.5, 2.5 }, f.ToArray<double>());
        var z = Tensor.Zeros([3], DType.Int64);
        Assert.Equal(new long[] { 0, 0, 0 }, z.ToArray<long>());
        Assert.Equal(0, Tensor.Scalar(7).Rank);
        Assert.Equal(7.0, Tensor.Scalar(7).Item());
    }

    [Fact]
    public void ArangeMatchesTorch()
    {
        Assert.Equal(new float[] { 0, 1, 2, 3, 4 }, Tensor.Arange(5).ToArray<float>());
        Assert.Equal(new float[] { 0, 0.25f, 0.5f, 0.75f }, Tensor.Arange(0, 1, 0.25).ToArray<float>());
        Assert.Equal(new long[] { 5, 3, 1 }, Tensor.Arange(5, 0, -2, DType.Int64).ToArray<long>());
        Assert.Equal(0, Tensor.Arange(3, 3).NumEl);
    }

    [Fact]
    public void LinspaceEndsExactly()
    {
        Assert.Equal(new float[] { 0, 0.25f, 0.5f, 0.75f, 1 }, Tensor.Linspace(0, 1, 5).ToArray<float>());
        var t = Tensor.Linspace(-1, 0.3, 7, DType.Float64).ToArray<double>();
        Assert.Equal(-1.0, t[0]);
        Assert.Equal(0.3, t[^1]);
        Assert.Equal(new float[] { 2 }, Tensor.Linspace(2, 5, 1).ToArray<float>());
    }

    [Fact]
    public void EyeIsIdentity()
    {
        Assert.Equal(new float[] { 1, 0, 0, 0, 1, 0 }, Tensor.Eye(2, 3).ToArray<float>());
        Assert.Equal([3, 3], Tensor.Eye(3).Shape.ToArray());
        Assert.Equal(3.0, Tensor.Eye(3).Sum().Item());
    }

    [Fact]
    public void RandIsUniformInUnitInterval()
    {
        var x = Tensor.Rand([100_000], DType.Float32, new Generator(1)).ToDoubleArray();
        Assert.All(x, v => Assert.InRange(v, 0.0, 0.99999999));
        Assert.InRange(x.Average(), 0.49, 0.51);
    }

    [Fact]
    public void RandnHasUnitMoments()
    {
        // 100k samples: the mean's standard error is 0.003 and the std's 0.0022; 0.02 is over 6 sigma.
        var x = Tensor.Randn([100_000], DType.Float64, new Generator(2)).ToDoubleArray();
        double mean = x.Average();
        double std = Math.Sqrt(x.Select(v => (v - mean) * (v - mean)).Sum() / (x.Length - 1));
        Assert.InRange(mean, -0.02, 0.02);
        Assert.InRange(std, 0.98, 1.02);
    }

    [Fact]
    public void RandIntCoversRangeAsInt64()
    {
        var t = Tensor.RandInt(-2, 3, [1000], generator: new Generator(3));
        Assert.Equal(DType.Int64, t.DType);
        var v = t.ToArray<long>();
        Assert.All(v, x => Assert.InRange(x, -2L, 2L));
        Assert.Equal(5, v.Distinct().Count());
    }

    [Fact]
    public void SameSeedIsBitIdentical()
    {
        foreach (var make in Samplers())
        {
            var a = make(new Generator(42)).ToDoubleArray();
            var b = make(new Generator(42)).ToDoubleArray();
            var c = make(new Generator(43)).ToDoubleArray();
            Assert.Equal(a.Select(BitConverter.DoubleToInt64Bits), b.Select(BitConverter.DoubleToInt64Bits));
            Assert.NotEqual(a, c);
        }
    }

    private static IEnumerable<Func<Generator, Tensor>> Samplers() =>
    [
        g => Tensor.Rand([64], DType.Float32, g),
        g => Tensor.Randn([64], DType.Float64, g),
        g => Tensor.Randn([7, 9], DType.Float32, g),
        g => Tensor.RandInt(0, 1000, [64], generator: g),
    ];

    [Fact]
    public void GeneratorStateRoundTrips()
    {
        var g = new Generator(5);
        g.NextNormal(); // leaves a cached spare normal
        var state = g.GetState();
        var a = Tensor.Randn([9], DType.Float64, g).ToArray<double>();
        var h = new Generator(0);
        h.SetState(state);
        Assert.Equal(a, Tensor.Randn([9], DType.Float64, h).ToArray<double>());
    }

    [Fact]
    public void RequiresGradOnCreation()
    {
        Assert.True(Tensor.Zeros([2], DType.Float32, requiresGrad: true).RequiresGrad);
        Assert.True(Tensor.Randn([2], DType.Float32, new Generator(1), requiresGrad: true).IsLeaf);
        Assert.False(Tensor.Ones(2).RequiresGrad);
    }

    [Fact]
    public void FromArrayWithAnEmptyShapeIsZeroDimensionalAsTorchTensorOfAScalar()
    {
        var f = Tensor.FromArray(new float[] { 5 }, []);
        Assert.Equal(0, f.Rank);
        Assert.Equal("[]", f.Shape.ToString());
        Assert.Equal(5.0, f.Item());
        Assert.Equal(0, Tensor.FromArray(new double[] { 2 }, []).Rank);
        Assert.Equal(0, Tensor.FromArray(new long[] { 3 }, []).Rank);
        Assert.Equal(0, Tensor.FromArray(new[] { true }, []).Rank);
        // The same as a 0-d tensor's own shape round-trips, and as Scalar.
        Assert.Equal(Tensor.Scalar(5).Shape, Tensor.FromArray(new float[] { 5 }, Tensor.Scalar(1).Shape).Shape);
        // No shape at all stays 1-d (torch.tensor([5.0]) has shape [1]).
        Assert.Equal(1, Tensor.FromArray(new float[] { 5 }).Rank);
        Assert.Equal([3], Tensor.FromArray(new long[] { 1, 2, 3 }).ShapeArray);
        var e = Assert.Throws<ArgumentException>(() => Tensor.FromArray(new float[] { 1, 2 }, []));
        Assert.Contains("0-d", e.Message);
        Assert.Contains("FromArray", e.Message);
    }
}
