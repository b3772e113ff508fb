using GradFlow.Kernels;

namespace GradFlow.Optim;

/// <summary>An optimiser's update of elements [start, start + length) of one parameter (and its state).</summary>
internal interface IBlockUpdate
{
    void Run(int start, int length);
}

/// <summary>
/// Splits the update of a large parameter into element blocks over the worker pool. The rules are elementwise and
/// blocks start at multiples of 64 elements (every block but the last runs entirely in the widest vector loop,
/// the last ends with the same tail as one pass), so the result does not depend on the thread count. A measured
/// update (an optimiser observer attached) stays one pass: its sums are accumulated in a fixed block order.
/// </summary>
internal static class ParallelUpdate
{
    /// <summary>Elements per thread below which the update runs on the calling thread (~20 us of a 5-stream rule).</summary>
    public const int MinPerThread = 1 << 15;

    /// <summary>Runs <paramref name="update"/> in blocks on the pool and returns true, or returns false (the caller runs one pass).</summary>
    public static bool TryRun<TUpdate>(int length, bool measure, ref TUpdate update) where TUpdate : struct, IBlockUpdate
    {
        int blocks = measure ? 1 : Math.Min(Parallelism.NumThreads, length / MinPerThread);
        if (blocks < 2 || Parallelism.IsInsideParallelRegion) return false;
        var body = new Body<TUpdate>(update, length, blocks);
        Parallelism.For(blocks, ref body);
        return true;
    }

    private readonly struct Body<TUpdate>(TUpdate update, int length, int blocks) : IParallelBody where TUpdate : struct, IBlockUpdate
    {
        public void Invoke(int index)
        {
            var (start, end) = ElementwiseParallel.Range(index, length, blocks);
            update.Run(start, end - start);
        }
    }
}
