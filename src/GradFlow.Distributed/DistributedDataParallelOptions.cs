namespace GradFlow.Distributed;

/// <summary>How <see cref="DistributedDataParallel"/> groups and sends gradients. Every rank must use the same options (checked at the start).</summary>
public sealed class DistributedDataParallelOptions
{
    /// <summary>
    /// A bucket's size in bytes (PyTorch's bucket_cap_mb, 25 MB): gradients travel in buckets of about this size, each
    /// sent as soon as all its gradients exist. Large buckets pay MPI's per-message latency less often; small ones start
    /// sending earlier in backward. A parameter larger than this gets a bucket of its own.
    /// </summary>
    public long BucketBytes { get; init; } = 25L * 1024 * 1024;

    /// <summary>
    /// A parameter whose gradient has at least this many bytes (256 KB) is averaged where it lies, pinned while MPI reduces
    /// it, in an allreduce of its own; smaller ones are copied into their bucket's buffer and travel together. Reducing in
    /// place saves two passes over the gradient (the copy in and out) and a buffer of its size per rank; it costs one more
    /// MPI message per such parameter, which at 256 KB takes about as long as the copy it saves on one machine.
    /// The averaged bits are the same either way.
    /// </summary>
    public long InPlaceBytes { get; init; } = 256L * 1024;

    /// <summary>
    /// Start each bucket's allreduce during backward, as soon as its gradients are ready (MPI_Iallreduce), so sending
    /// overlaps the rest of backward. False sends every bucket with a blocking allreduce after the last gradient.
    /// </summary>
    public bool Overlap { get; init; } = true;

    /// <summary>
    /// How the ranks on one machine add their gradients: <see cref="GradientReduction.SharedMemory"/> (the default) through
    /// an MPI-3 shared-memory window, each rank reading the others' gradients straight from their memory, with MPI's allreduce
    /// only between machines; <see cref="GradientReduction.Mpi"/> by MPI's allreduce throughout. The averaged bits are the
    /// same on two ranks; with more, both add in a fixed order, not necessarily the same one.
    /// </summary>
    public GradientReduction Reduction { get; init; } = GradientReduction.SharedMemory;

    /// <summary>
    /// Time the data-parallel phases of each step (<see cref="DistributedDataParallel.StepTimes"/>) with one extra barrier
    /// before the first bucket, which separates waiting for a slower rank from the reduction itself. For benchmarks.
    /// </summary>
    public bool Profile { get; init; }

    /// <summary>Copy rank 0's parameters and buffers to every rank at the start, so all ranks begin from the same model.</summary>
    public bool BroadcastParameters { get; init; } = true;

    /// <summary>
    /// What happens to the model's buffers (BatchNorm's running statistics) at each synchronised backward: rank 0's are
    /// copied to every rank (<see cref="BufferSync.Broadcast"/>, PyTorch's default), averaged over the ranks, or left alone.
    /// </summary>
    public BufferSync Buffers { get; init; } = BufferSync.Broadcast;

    /// <summary>
    /// Compare the ranks' gradients at every synchronised step (each rank's norms and NaN/Inf counts, one small extra
    /// allreduce): <see cref="DistributedDataParallel.Latest"/>, <see cref="DistributedDataParallel.RanksCompared"/> and a watched monitor's records.
    /// </summary>
    public bool WatchRanks { get; init; } = true;

    /// <summary>
    /// A rank's gradient norm more than this factor above or below the median of all ranks' (with two ranks, the other's) marks it divergent.
    /// With samples drawn from one distribution the ranks' norms differ by sampling noise, well within a factor of a few
    /// at ordinary batch sizes; an order of magnitude means a rank sees different data or different weights.
    /// </summary>
    public double DivergenceFactor { get; init; } = 10;

    internal void Validate()
    {
        if (InPlaceBytes <= 0) throw new ArgumentOutOfRangeException(nameof(InPlaceBytes), $"DistributedDataParallel: InPlaceBytes must be positive, got {InPlaceBytes}.");
        if (BucketBytes <= 0) throw new ArgumentOutOfRangeException(nameof(BucketBytes), $"DistributedDataParallel: BucketBytes must be positive, got {BucketBytes}.");
        if (!Enum.IsDefined(Reduction)) throw new ArgumentOutOfRangeException(nameof(Reduction), $"DistributedDataParallel: Reduction must be SharedMemory or Mpi, got {Reduction}.");
        if (!Enum.IsDefined(Buffers)) throw new ArgumentOutOfRangeException(nameof(Buffers), $"DistributedDataParallel: Buffers must be Broadcast, Average or None, got {Buffers}.");
        if (!(DivergenceFactor > 1) || double.IsInfinity(DivergenceFactor))
            throw new ArgumentOutOfRangeException(nameof(DivergenceFactor), $"DistributedDataParallel: DivergenceFactor must be a finite number above 1, got {DivergenceFactor}.");
    }

    // The options that decide which collectives run, in the form every rank compares.
    internal string Describe() => $"options bucketBytes={BucketBytes} inPlaceBytes={InPlaceBytes} overlap={Overlap} watchRanks={WatchRanks} broadcast={BroadcastParameters} buffers={Buffers} reduction={Reduction} profile={Profile}";
}
