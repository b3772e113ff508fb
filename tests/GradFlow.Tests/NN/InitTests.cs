using GradFlow.NN;

namespace GradFlow.Tests.NN;

public class InitTests
{
    private static (double Mean, double Std) Stats(Tensor t)
    {
        var v = t.ToDoubleArray();
        double mean = v.Average();
        return (mean, Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / v.Length));
    }

    // n draws: the sample mean has std sigma / sqrt(n), the sample std relative error about 1 / sqrt(2n);
    // the tolerances are 5 of those (n >= 60000 here).
    private static void AssertStats(Tensor t, double std, string what)
    {
        var (m, s) = Stats(t);
        int n = t.NumEl;
        Assert.True(Math.Abs(m) < 5 * std / Math.Sqrt(n), $"{what}: mean {m}, expected 0 (std {std})");
        Assert.True(Math.Abs(s / std - 1) < 5 / Math.Sqrt(2.0 * n) + 0.002, $"{what}: std {s}, expected {std}");
    }

    [Fact]
    public void GainsMatchCalculateGain()
    {
        Assert.Equal(1.0, Init.CalculateGain(Nonlinearity.Linear));
        Assert.Equal(5.0 / 3, Init.CalculateGain(Nonlinearity.Tanh));
        Assert.Equal(Math.Sqrt(2), Init.CalculateGain(Nonlinearity.Relu));
        Assert.Equal(Math.Sqrt(2 / (1 + 0.01 * 0.01)), Init.CalculateGain(Nonlinearity.LeakyRelu));
        Assert.Equal(Math.Sqrt(2 / 6.0), Init.CalculateGain(Nonlinearity.LeakyRelu, Math.Sqrt(5)));
        Assert.Equal(0.75, Init.CalculateGain(Nonlinearity.Selu));
    }

    [Fact]
    public void InitFunctionsHaveTheirStd()
    {
        var g = new Generator(11);
        var w = Tensor.Zeros(300, 200);
        AssertStats(Init.XavierUniform(w, generator: g), Math.Sqrt(2.0 / 500), "xavier_uniform");
        AssertStats(Init.XavierNormal(w, 2, g), 2 * Math.Sqrt(2.0 / 500), "xavier_normal");
        AssertStats(Init.KaimingUniform(w, nonlinearity: Nonlinearity.Relu, generator: g), Math.Sqrt(2.0 / 200), "kaiming_uniform");
        AssertStats(Init.KaimingNormal(w, mode: FanMode.FanOut, nonlinearity: Nonlinearity.Relu, generator: g), Math.Sqrt(2.0 / 300), "kaiming_normal fan_out");
        AssertStats(Init.Normal(w, 0, 0.02, g), 0.02, "normal");
        AssertStats(Init.Uniform(w, -1, 1, g), 1 / Math.Sqrt(3), "uniform");
        Assert.All(Init.Constant(Tensor.Zeros(3), 0.5).ToDoubleArray(), v => Assert.Equal(0.5, v));
        Assert.All(Init.Ones(Tensor.Zeros(3)).ToDoubleArray(), v => Assert.Equal(1.0, v));
    }

    [Theory]
    [InlineData(5, 3)]
    [InlineData(3, 5)]
    public void OrthogonalIsOrthogonal(int rows, int cols)
    {
        var w = Init.Orthogonal(Tensor.Zeros([rows, cols], DType.Float64), 1.5, new Generator(3));
        var gram = rows >= cols ? w.T.MatMul(w) : w.MatMul(w.T);
        Fixtures.Fixture.AssertClose(Tensor.Eye(Math.Min(rows, cols), dtype: DType.Float64) * 2.25, gram, "W^T W", 1e-10, 1e-10);
    }

    [Fact]
    public void LayerDefaultsFollowPyTorch()
    {
        // Linear: kaiming_uniform(a=sqrt(5)) is U(-1/sqrt(in), 1/sqrt(in)), std 1/sqrt(3 in); the bias has the same bound.
        var lin = new Linear(400, 300, generator: new Generator(1));
        AssertStats(lin.Weight, 1 / Math.Sqrt(3 * 400.0), "Linear.weight");
        Assert.All(lin.Bias!.ToDoubleArray(), b => Assert.InRange(b, -1 / 20.0, 1 / 20.0));
        AssertStats(new Embedding(1000, 64, generator: new Generator(2)).Weight, 1, "Embedding.weight");
    }
}
