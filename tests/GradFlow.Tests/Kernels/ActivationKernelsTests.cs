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
}
