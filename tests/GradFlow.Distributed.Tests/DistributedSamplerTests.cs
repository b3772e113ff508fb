namespace GradFlow.Distributed.Tests;

public sealed class DistributedSamplerTests
{
    [Theory]
    [InlineData(10, 2)]
    [InlineData(10, 3)]
    [InlineData(7, 4)]
    [InlineData(2, 3)]
    public void SharesAreEqualCoverTheEpochAndOverlapOnlyByPadding(int n, int ranks)
    {
        var shares = Enumerable.Range(0, ranks).Select(r => new DistributedSampler(n, r, ranks, seed: 5).Indices()).ToArray();
        int each = (n + ranks - 1) / ranks;
        Assert.All(shares, s => Assert.Equal(each, s.Length));
        var all = shares.SelectMany(s => s).ToArray();
        Assert.Equal(Enumerable.Range(0, n), all.Distinct().Order());
        Assert.Equal(each * ranks - n, all.Length - all.Distinct().Count()); // only the padding repeats
    }

    [Fact]
    public void DropLastGivesDisjointSharesOfTheSameSize()
    {
        var shares = Enumerable.Range(0, 3).Select(r => new DistributedSampler(10, r, 3, seed: 5, dropLast: true).Indices()).ToArray();
        Assert.All(shares, s => Assert.Equal(3, s.Length));
        Assert.Equal(9, shares.SelectMany(s => s).Distinct().Count());
    }

    [Fact]
    public void TheSameSeedAndEpochGiveTheSameOrderAndAnotherEpochAnother()
    {
        var a = new DistributedSampler(100, 1, 4, seed: 9);
        var b = new DistributedSampler(100, 1, 4, seed: 9);
        Assert.Equal(a.Indices(), b.Indices());
        var first = a.Indices();
        a.SetEpoch(1);
        Assert.NotEqual(first, a.Indices());
        Assert.NotEqual(first, new DistributedSampler(100, 1, 4, seed: 10).Indices());
    }

    [Fact]
    public void WithoutShuffleRankRTakesEveryNthExampleFromR()
    {
        Assert.Equal([1, 4, 7], new DistributedSampler(9, 1, 3, shuffle: false).Indices());
    }

    [Fact]
    public void BadArgumentsNameTheSamplerAndTheArgument()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new DistributedSampler(10, 2, 2));
        Assert.Contains("rank 2 is not in [0, 2)", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new DistributedSampler(0, 0, 1));
        Assert.Throws<ArgumentException>(() => new DistributedSampler(1, 0, 2, dropLast: true));
        var loader = new DistributedSampler(10, 0, 2);
        Assert.Throws<ArgumentException>(() => loader.Loader(new GradFlow.Data.TensorDataset(Tensor.Zeros(4, 2), Tensor.Zeros(4)), 2));
    }
}
