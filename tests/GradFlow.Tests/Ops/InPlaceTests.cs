namespace GradFlow.Tests.Ops;

public class InPlaceTests
{
    [Fact]
    public void SubAndDivInPlaceGiveTheBitsOfTheOutOfPlaceOperators()
    {
        foreach (var dtype in new[] { DType.Float32, DType.Float64 })
        {
            var x = Tensor.Randn([7, 33], dtype, new Generator(4)) * 3;
            var expected = (x - 0.2860) / 0.3530;
            var y = x.Clone();
            int version = y.Version;
            Assert.Same(y, y.SubInPlace(0.2860).DivInPlace(0.3530));
            Assert.Equal(expected.ToDoubleArray(), y.ToDoubleArray());
            Assert.True(y.Version > version);

            var d = Tensor.Rand([33], dtype, new Generator(5)) + 0.5;
            Assert.Equal((x / d).ToDoubleArray(), x.Clone().DivInPlace(d).ToDoubleArray());
        }
    }

    [Fact]
    public void DivInPlaceRefusesIntegersWrongShapesAndTensorsAutogradNeeds()
    {
        var e = Assert.Throws<ArgumentException>(() => Tensor.FromArray(new long[] { 1, 2 }).DivInPlace(2));
        Assert.Contains("DivInPlace", e.Message);
        Assert.Contains("int64", e.Message);
        e = Assert.Throws<ArgumentException>(() => Tensor.Ones(2, 3).DivInPlace(Tensor.Ones(4)));
        Assert.Contains("DivInPlace", e.Message);
        Assert.Contains("[4]", e.Message);
        var w = Tensor.Ones(3).RequireGrad();
        Assert.Throws<InvalidOperationException>(() => w.DivInPlace(2));
        Assert.Throws<InvalidOperationException>(() => w.SubInPlace(2));
    }
}
