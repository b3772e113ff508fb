using System.Collections;

namespace GradFlow.Data;

/// <summary>
/// Iterates a data set in batches (torch.utils.data.DataLoader, single process). Each enumeration is one
/// epoch; with <c>shuffle</c> it draws a fresh permutation from the generator, so a seeded generator
/// gives the same sequence of epochs on every run (and its saved state resumes at an epoch boundary).
/// batchSize &gt;= Count gives full-batch gradient descent, batchSize 1 stochastic gradient descent.
/// </summary>
public sealed class DataLoader : IEnumerable<(Tensor Input, Tensor Target)>
{
    private readonly Dataset _dataset;
    private readonly Generator? _generator;

    /// <summary>Batches of <paramref name="batchSize"/>; the last, smaller batch is kept unless <paramref name="dropLast"/>.</summary>
    public DataLoader(Dataset dataset, int batchSize = 1, bool shuffle = false, bool dropLast = false, Generator? generator = null)
    {
        Guard.NotNull(dataset, "DataLoader", nameof(dataset));
        if (batchSize <= 0) Guard.ThrowArg(nameof(DataLoader), nameof(batchSize), $"batch size must be positive, got {batchSize}.");
        _dataset = dataset;
        BatchSize = batchSize;
        Shuffle = shuffle;
        DropLast = dropLast;
        _generator = generator;
    }

    /// <summary>Examples per batch.</summary>
    public int BatchSize { get; }

    /// <summary>Whether each epoch visits the examples in a new random order.</summary>
    public bool Shuffle { get; }

    /// <summary>Whether a final incomplete batch is dropped.</summary>
    public bool DropLast { get; }

    /// <summary>The data set.</summary>
    public Dataset Dataset => _dataset;

    /// <summary>Batches per epoch.</summary>
    public int Count => DropLast ? _dataset.Count / BatchSize : (_dataset.Count + BatchSize - 1) / BatchSize;

    /// <summary>One epoch of (input, target) batches, each stacked along dim 0.</summary>
    public IEnumerator<(Tensor Input, Tensor Target)> GetEnumerator()
    {
        int n = _dataset.Count;
        int[] order = Shuffle ? (_generator ?? Generator.Default).Permutation(n) : Enumerable.Range(0, n).ToArray();
        int batches = Count;
        for (int b = 0; b < batches; b++)
        {
            int start = b * BatchSize;
            yield return _dataset.GetBatch(order.AsSpan(start, Math.Min(BatchSize, n - start)));
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
