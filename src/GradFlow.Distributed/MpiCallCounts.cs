namespace GradFlow.Distributed;

/// <summary>
/// What a process has asked of MPI through its <see cref="Communicator"/> (<see cref="Communicator.Counts"/>): calls by
/// kind and the bytes each rank contributed. Counting, unlike timing, does not depend on what else runs on the machine,
/// so the difference of two snapshots says exactly what a training step costs in messages (bench/GradFlow.DistributedBench).
/// </summary>
/// <param name="BlockingCollectives">Allreduce, broadcast, barrier and allgather calls that return when complete.</param>
/// <param name="NonBlockingStarted">Non-blocking allreduces started (MPI_Iallreduce).</param>
/// <param name="Tests">MPI_Test calls on a request in flight: each lets MPI progress it, since Open MPI advances a
/// non-blocking collective only inside MPI calls (no progress thread).</param>
/// <param name="TestsCompleted">Tests that found their request complete.</param>
/// <param name="Waits">MPI_Wait calls on a request still in flight (as far as the caller knew).</param>
/// <param name="ReducedBytes">Bytes this rank contributed to allreduces, blocking or not.</param>
/// <param name="OtherBytes">Bytes this rank sent or received in broadcasts and allgathers.</param>
public readonly record struct MpiCallCounts(long BlockingCollectives, long NonBlockingStarted, long Tests, long TestsCompleted, long Waits, long ReducedBytes, long OtherBytes)
{
    /// <summary>The calls made between <paramref name="before"/> and <paramref name="after"/>.</summary>
    public static MpiCallCounts operator -(MpiCallCounts after, MpiCallCounts before) => new(
        after.BlockingCollectives - before.BlockingCollectives, after.NonBlockingStarted - before.NonBlockingStarted,
        after.Tests - before.Tests, after.TestsCompleted - before.TestsCompleted, after.Waits - before.Waits,
        after.ReducedBytes - before.ReducedBytes, after.OtherBytes - before.OtherBytes);
}
