namespace GradFlow.Distributed.Tests;

public sealed class SharedMemorySpaceTests
{
    [Theory]
    [InlineData(48L << 20, 64L << 20, true)] // two 24 MB segments in Docker's default 64 MB: 48 of the 48 MB allowed
    [InlineData(75L << 20, 64L << 20, false)] // three 25 MB buckets' segments there: the job would have ended
    [InlineData((48L << 20) + 1, 64L << 20, false)] // a quarter of the space stays for MPI's own segments
    [InlineData(1L << 40, null, true)] // space unknown: try, as MPI itself would
    public void TheWindowIsOnlyTriedWhereTheMachinesSharedMemoryHoldsIt(long windowBytes, long? freeBytes, bool fits) =>
        Assert.Equal(fits, SharedMemoryAllreduce.WindowFits(windowBytes, freeBytes));

    [Fact]
    public void FreeSpaceIsReadFromTheFileSystemOrUnknown()
    {
        Assert.Null(SharedMemoryAllreduce.FreeBytes(Path.Combine(Path.GetTempPath(), "gradflow-no-such-directory-" + Guid.NewGuid())));
        long? temp = SharedMemoryAllreduce.FreeBytes(Path.GetTempPath());
        Assert.True(temp is > 0, $"free bytes of {Path.GetTempPath()}: {temp}");
    }
}
