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

    [Theory]
    [InlineData(24L << 20, 64L << 20, 2, 2)] // two ranks' 12 MB segments, twice: 48 of the 48 MB allowed
    [InlineData(48L << 20, 64L << 20, 2, 1)] // two ranks' 24 MB segments fit once: one set, released by a barrier
    [InlineData(75L << 20, 64L << 20, 2, 0)] // not even once: MPI's allreduce
    [InlineData(1L << 40, null, 2, 2)]        // space unknown: try, as MPI itself would
    [InlineData(24L << 20, 64L << 20, 1, 1)] // capped at one set (GRADFLOW_SHM_SETS=1)
    public void TwoSetsOfSegmentsAreTakenWhereTheyFitElseOne(long setBytes, long? freeBytes, int most, int sets) =>
        Assert.Equal(sets, SharedMemoryAllreduce.SetsThatFit(setBytes, freeBytes, most));

    [Fact]
    public void FreeSpaceIsReadFromTheFileSystemOrUnknown()
    {
        Assert.Null(SharedMemoryAllreduce.FreeBytes(Path.Combine(Path.GetTempPath(), "gradflow-no-such-directory-" + Guid.NewGuid())));
        long? temp = SharedMemoryAllreduce.FreeBytes(Path.GetTempPath());
        Assert.True(temp is > 0, $"free bytes of {Path.GetTempPath()}: {temp}");
    }
}
