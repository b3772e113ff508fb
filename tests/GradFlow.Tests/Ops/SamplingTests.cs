namespace GradFlow.Tests.Ops;

public class SamplingTests
{
    [Fact]
    public void MultinomialWithReplacementFollowsTheWeights()
    {
        var weights = Tensor.FromArray([1f, 0f, 3f, 6f]); // unnormalised: probabilities 0.1, 0, 0.3, 0.6
        var samples = weights.Multinomial(100_000, replacement: true, generator: new Generator(3)).ToArray<long>();
        var counts = new double[4];
        foreach (long s in samples) counts[s]++;
        Assert.Equal(0, counts[1]);
        Assert.Equal(0.1, counts[0] / samples.Length, 2);
        Assert.Equal(0.3, counts[2] / samples.Length, 2);
        Assert.Equal(0.6, counts[3] / samples.Length, 2);
    }

    [Fact]
    public void MultinomialWithoutReplacementDrawsEachPositiveCategoryOnce()
    {
        var weights = Tensor.FromArray([5f, 0f, 1f, 2f, 0.5f, 3f], 2, 3);
        var samples = weights.Multinomial(2, generator: new Generator(4));
        Assert.Equal([2, 2], samples.Shape.ToArray());
        Assert.Equal(DType.Int64, samples.DType);
        var rows = samples.ToArray<long>();
        Assert.Equal([0L, 2L], rows[..2].Order().ToArray()); // row 0 has two positive weights: both, once each
        Assert.Equal(2, rows[2..].Distinct().Count());
        Assert.Equal(weights.ToArray<float>(), new[] { 5f, 0f, 1f, 2f, 0.5f, 3f }); // the input is untouched
    }

    [Fact]
    public void MultinomialIsReproducibleFromASeed()
    {
        var weights = Tensor.Rand([10], DType.Float64, new Generator(5));
        Assert.Equal(
            weights.Multinomial(20, replacement: true, generator: new Generator(6)).ToArray<long>(),
            weights.Multinomial(20, replacement: true, generator: new Generator(6)).ToArray<long>());
    }
}
