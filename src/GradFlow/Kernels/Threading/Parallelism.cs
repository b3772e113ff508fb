using System.Runtime.CompilerServices;

namespace GradFlow.Kernels;

/// <summary>
/// The thread budget of every GradFlow kernel. Kernels split large problems across a persistent
/// worker pool; the calling thread always takes part, so <see cref="NumThreads"/> = 1 means no worker runs.
/// </summary>
public static class Parallelism
{
    /// <summary>Environment variable that sets the initial <see cref="NumThreads"/> (read once, at first use).</summary>
    public const string EnvironmentVariable = "GRADFLOW_NUM_THREADS";

    private static int numThreads = ReadDefault();

    [ThreadStatic] private static bool insideParallelRegion;

    /// <summary>
    /// Threads a kernel may use, the caller included. Defaults to <see cref="Environment.ProcessorCount"/>,
    /// or to <c>GRADFLOW_NUM_THREADS</c> when that holds a positive integer.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is less than 1.</exception>
    public static int NumThreads
    {
        get => Volatile.Read(ref numThreads);
        set
        {
            if (value < 1)
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, "Parallelism.NumThreads must be at least 1.");
            }

            Volatile.Write(ref numThreads, value);
        }
    }

    /// <summary>
    /// Runs <c>body.Invoke(i)</c> for every i in [0, count), spread over the worker pool and the caller.
    /// Runs inline when count &lt; 2, when <see cref="NumThreads"/> is 1, when called from inside another
    /// parallel loop, or when another thread holds the pool. The first exception thrown by any item is
    /// rethrown here after all items have finished. The body is copied once and shared by all threads.
    /// </summary>
    internal static void For<TBody>(int count, ref TBody body) where TBody : struct, IParallelBody
    {
        int threads = Math.Min(NumThreads, count);
        if (threads < 2 || insideParallelRegion || !WorkerPool.Shared.TryRun(count, threads, ref body))
        {
            RunInline(count, ref body);
        }
    }

    /// <summary>True while the current thread executes items of a parallel loop.</summary>
    internal static bool IsInsideParallelRegion => insideParallelRegion;

    internal static void EnterRegion() => insideParallelRegion = true;

    internal static void ExitRegion() => insideParallelRegion = false;

    private static void RunInline<TBody>(int count, ref TBody body) where TBody : struct, IParallelBody
    {
        for (int i = 0; i < count; i++)
        {
            body.Invoke(i);
        }
    }

    private static int ReadDefault()
    {
        string? text = Environment.GetEnvironmentVariable(EnvironmentVariable);
        return int.TryParse(text, out int n) && n > 0 ? n : Environment.ProcessorCount;
    }

    /// <summary>Calls <c>Invoke</c> on a body known only by address; one instantiation per body type.</summary>
    internal static unsafe class Trampoline<TBody> where TBody : struct, IParallelBody
    {
        public static readonly delegate*<void*, int, void> Pointer = &Invoke;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Invoke(void* body, int index) => Unsafe.AsRef<TBody>(body).Invoke(index);
    }
}
