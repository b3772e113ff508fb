namespace GradFlow.Kernels;

/// <summary>
/// The work of one parallel loop, as a struct so <see cref="Parallelism.For{TBody}(int, ref TBody)"/>
/// is specialised per body by the JIT and runs without a delegate or a closure allocation.
/// </summary>
internal interface IParallelBody
{
    /// <summary>Runs item <paramref name="index"/>; called concurrently for different indices.</summary>
    void Invoke(int index);
}
