namespace GradFlow.Distributed.Tests;

public sealed class BucketLayoutTests
{
    private static Tensor P(int n, DType dtype = DType.Float32) => Tensor.Zeros([n], dtype);

    [Fact]
    public void BucketsFillInReverseRegistrationOrderUpToTheCap()
    {
        // 4-byte floats: parameters of 10, 20, 30, 40 elements and a 239-byte cap (160 + 120 bytes pass it, 120 + 80 do not, 200 + 40 do).
        var (buckets, bucketOf, slotOf) = BucketLayout.Build([P(10), P(20), P(30), P(40)], capBytes: 239, inPlaceBytes: long.MaxValue);
        Assert.Equal([[3], [2, 1], [0]], buckets.Select(b => b.Parameters));
        Assert.Equal([0, 30], buckets[1].Offsets);
        Assert.Equal(50, buckets[1].Count);
        Assert.Equal([2, 1, 1, 0], bucketOf);
        Assert.Equal([0, 1, 0, 0], slotOf);
    }

    [Fact]
    public void ADTypeChangeClosesABucketAndALargeParameterGetsItsOwn()
    {
        var (buckets, _, _) = BucketLayout.Build([P(2), P(2, DType.Float64), P(1000), P(3)], capBytes: 64, inPlaceBytes: long.MaxValue);
        Assert.Equal([[3], [2], [1], [0]], buckets.Select(b => b.Parameters));
        Assert.Equal(DType.Float64, buckets[2].DType);
        Assert.NotNull(buckets[2].Doubles);
    }

    [Fact]
    public void AGradientAtLeastInPlaceBytesIsReducedWhereItLiesAndTheRestArePacked()
    {
        // One bucket in backward order [5, 100, 10 elements]: the 400-byte gradient stays in place, the others share the buffer.
        var (buckets, _, _) = BucketLayout.Build([P(10), P(100), P(5)], capBytes: 1 << 20, inPlaceBytes: 400);
        var bucket = Assert.Single(buckets);
        Assert.Equal([2, 1, 0], bucket.Parameters);
        Assert.Equal([false, true, false], bucket.InPlace);
        Assert.Equal([0, -1, 5], bucket.Offsets);
        Assert.Equal(15, bucket.Count);
    }

    [Fact]
    public void TheSharedSegmentHoldsTheLargestBucketWithEveryGradientPacked()
    {
        // Buckets [40], [30, 20], [10] floats under a 239-byte cap (as above): the largest packed is 50 floats, 200 bytes;
        // a dtype change closes a bucket as Build does, and a parameter above the cap is a bucket of its own.
        Assert.Equal(200, BucketLayout.LargestPackedBucket([P(10), P(20), P(30), P(40)], capBytes: 239));
        Assert.Equal(4000, BucketLayout.LargestPackedBucket([P(2), P(2, DType.Float64), P(1000), P(3)], capBytes: 64));
        Assert.Equal(16, BucketLayout.LargestPackedBucket([P(2), P(2, DType.Float64), P(1)], capBytes: 1 << 20));
        Assert.Equal(0, BucketLayout.LargestPackedBucket([], capBytes: 64));
    }
}
