namespace GradFlow.Distributed;

/// <summary>
/// Where a <see cref="DistributedDataParallel"/>'s synchronised steps spent their time on this rank, in seconds summed
/// over the steps so far (<see cref="DistributedDataParallel.StepTimes"/>; subtract two snapshots for a span of steps).
/// Everything outside these phases is the rank's own forward, backward and optimiser step.
/// </summary>
/// <param name="Steps">Synchronised backward passes counted.</param>
/// <param name="Header">The buffers' sync and the step header's allgather at the start of backward (includes waiting for
/// ranks whose forward ended later). With the shared window on one machine the header is exchanged at the first bucket's
/// meeting instead, counted in <paramref name="Wait"/>.</param>
/// <param name="Imbalance">With <see cref="DistributedDataParallelOptions.Profile"/>: a barrier before the first bucket
/// starts, i.e. waiting for the rank whose backward produced its gradients last; 0 otherwise.</param>
/// <param name="Launch">Measuring the gradients, copying them into buckets (the small ones, or all into the shared
/// segment), starting the reductions (and, without overlap, running them).</param>
/// <param name="Wait">Waiting for the reductions still running when backward ended (MPI_Wait: MPI's own copies and
/// additions), or the shared-memory reduction's meetings (waiting for the other ranks; on one machine the first is the
/// step header's allgather, which also waits for the rank whose backward ended last).</param>
/// <param name="Reduce">The shared-memory reduction adding the ranks' gradients: with two ranks on the machine, both
/// segments added and divided straight into this rank's gradients, the averaged norm measured on the way (the whole
/// copy out: <paramref name="Average"/> is then 0); with more, this rank's share from every segment. 0 with MPI's
/// allreduce, where it is part of <paramref name="Wait"/>.</param>
/// <param name="Average">Writing the average into the gradients (sum / N, or the shares' averages copied out of the
/// window) and the averaged gradient's norm.</param>
/// <param name="Compare">The ranks' gradient-norm comparison (one small allreduce).</param>
public readonly record struct DistributedStepTimes(long Steps, double Header, double Imbalance, double Launch, double Wait, double Reduce, double Average, double Compare)
{
    /// <summary>All the phases together: the data-parallel part of the steps.</summary>
    public double Total => Header + Imbalance + Launch + Wait + Reduce + Average + Compare;

    /// <summary>The steps between <paramref name="before"/> and <paramref name="after"/>.</summary>
    public static DistributedStepTimes operator -(DistributedStepTimes after, DistributedStepTimes before) => new(
        after.Steps - before.Steps, after.Header - before.Header, after.Imbalance - before.Imbalance, after.Launch - before.Launch,
        after.Wait - before.Wait, after.Reduce - before.Reduce, after.Average - before.Average, after.Compare - before.Compare);
}
