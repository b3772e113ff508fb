namespace GradFlow.Tests.Kernels;

/// <summary>Tests that change <c>Parallelism.NumThreads</c> run one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public class ParallelismCollection
{
    public const string Name = "Parallelism";
}
