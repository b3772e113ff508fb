using GradFlow.Kernels;
using GradFlow.Kernels.Optim;

namespace GradFlow.Optim;

/// <summary>An optimiser's update of elements [start, start + length) of one parameter (and its state), measured when asked.</summary>
internal interface IBlockUpdate
{
    UpdateSums Run(int start, int length, bool measure);
}

/// <summary>
/// Runs the update of a parameter, split into element blocks over the worker pool when it is large. The rules are
/// elementwise and blocks start at multiples of 64 elements (every block but the last runs entirely in the widest
/// vector loop, the last ends with the same tail as one pass), so the result does not depend on the thread count.
/// A measured update (an optimiser observer attached) is split too: each block's sums land in a slot of their own
/// and are added in block order.
/// </summary>
internal static class ParallelUpdate
{
    /// <summary>Elements per thread below which the update runs on the calling thread (~20 us of a 5-stream rule).</summary>
    public const int MinPerThread = 1 << 15;

    [ThreadStatic] private static UpdateSums[]? t_sums;

    /// <summary>Runs <paramref name="update"/> over all <paramref name="length"/> elements and returns its sums (default unless measuring).</summary>
    public static UpdateSums Run<TUpdate>(int length, bool measure, ref TUpdate update) where TUpdate : struct, IBlockUpdate
    {
        int blocks = Math.Min(Parallelism.NumThreads, length / MinPerThread);
        if (blocks < 2 || Parallelism.IsInsideParallelRegion) return update.Run(0, length, measure);
        var sums = t_sums is { } cached && cached.Length >= blocks ? cached : t_sums = new UpdateSums[Math.Max(blocks, 8)];
        var body = new Body<TUpdate>(update, length, blocks, measure, sums);
        Parallelism.For(blocks, ref body);
        var total = new UpdateSums();
        if (measure) for (int b = 0; b < blocks; b++) total.Add(sums[b]);
        return total;
    }

    private readonly struct Body<TUpdate>(TUpdate update, int length, int blocks, bool measure, UpdateSums[] sums) : IParallelBody
        where TUpdate : struct, IBlockUpdate
    {
        public void Invoke(int index)
        {
            var (start, end) = ElementwiseParallel.Range(index, length, blocks);
            sums[index] = update.Run(start, end - start, measure);
        }
    }
}
