using GradFlow.Kernels;

namespace GradFlow.Tests.Kernels;

/// <summary>Tests that change <c>Parallelism.NumThreads</c> run one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public class ParallelismCollection
{
    public const string Name = "Parallelism";

    /// <summary>Runs <paramref name="body"/> with <c>Parallelism.NumThreads</c> set to <paramref name="threads"/>, then restores it.</summary>
    public static void WithThreads(int threads, Action body)
    {
        int saved = Parallelism.NumThreads;
        try
        {
            Parallelism.NumThreads = threads;
            body();
        }
        finally
        {
            Parallelism.NumThreads = saved;
        }
    }
}
