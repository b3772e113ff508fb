namespace GradFlow.Distributed;

/// <summary>How <see cref="DistributedDataParallel"/> adds the ranks' gradients (<see cref="DistributedDataParallelOptions.Reduction"/>).</summary>
public enum GradientReduction
{
    /// <summary>
    /// Through memory the ranks of a machine share (MPI_Win_allocate_shared): with two ranks on a machine each adds both
    /// ranks' segments of every bucket into its own gradients, with more each adds its share of the bucket from all ranks'
    /// segments, always in rank order; between machines, each share by MPI_Allreduce among the ranks of the same local number.
    /// </summary>
    SharedMemory,

    /// <summary>MPI_Iallreduce / MPI_Allreduce on every bucket, large gradients in place (Open MPI's own transports and algorithms).</summary>
    Mpi,
}
