namespace GradFlow.Distributed;

/// <summary>What <see cref="DistributedDataParallel"/> does with the model's buffers (BatchNorm's running statistics) at each synchronised step.</summary>
public enum BufferSync
{
    /// <summary>
    /// Copy rank 0's buffers to every rank (PyTorch's broadcast_buffers=True, the default): every rank holds the running
    /// statistics rank 0 alone would have, computed from rank 0's batches.
    /// </summary>
    Broadcast,

    /// <summary>
    /// Replace every rank's floating-point buffers by their mean over the ranks (integer ones, such as num_batches_tracked,
    /// are rank 0's): running statistics that have seen every rank's batches, though not those of one large batch
    /// (SyncBatchNorm is not implemented).
    /// </summary>
    Average,

    /// <summary>Leave each rank's buffers as its own forward passes left them: they drift apart after the first step.</summary>
    None,
}
