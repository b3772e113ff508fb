using GradFlow.Data;

namespace GradFlow.Distributed;

/// <summary>
/// Splits each epoch's examples among the ranks (torch.utils.data.DistributedSampler): every rank draws the same
/// shuffled order of the whole data set from <c>seed + epoch</c>, pads it by repeating its head to a multiple of the
/// number of ranks (or drops the tail with <c>dropLast</c>), and takes every <c>size</c>-th example starting at its rank.
/// So the ranks' shares are disjoint, equal in size, cover the epoch, and are the same on every run with the same seed.
/// Call <see cref="SetEpoch"/> before each epoch, as with PyTorch's, or every epoch repeats the first's order.
/// </summary>
public sealed class DistributedSampler
{
    /// <summary>Shares of <paramref name="datasetSize"/> examples for rank <paramref name="rank"/> of <paramref name="worldSize"/>.</summary>
    public DistributedSampler(int datasetSize, int rank, int worldSize, bool shuffle = true, ulong seed = 0, bool dropLast = false)
    {
        if (datasetSize <= 0) throw new ArgumentOutOfRangeException(nameof(datasetSize), $"DistributedSampler: the data set must have examples, got {datasetSize}.");
        if (worldSize <= 0) throw new ArgumentOutOfRangeException(nameof(worldSize), $"DistributedSampler: worldSize must be positive, got {worldSize}.");
        if ((uint)rank >= (uint)worldSize) throw new ArgumentOutOfRangeException(nameof(rank), $"DistributedSampler: rank {rank} is not in [0, {worldSize}).");
        if (dropLast && datasetSize < worldSize)
            throw new ArgumentException($"DistributedSampler: with dropLast, {datasetSize} examples leave nothing for each of {worldSize} ranks.", nameof(dropLast));
        DatasetSize = datasetSize;
        Rank = rank;
        WorldSize = worldSize;
        Shuffle = shuffle;
        Seed = seed;
        DropLast = dropLast;
    }

    /// <summary>The sampler of this process's rank in <paramref name="communicator"/>.</summary>
    public DistributedSampler(int datasetSize, Communicator communicator, bool shuffle = true, ulong seed = 0, bool dropLast = false)
        : this(datasetSize, (communicator ?? throw new ArgumentNullException(nameof(communicator))).Rank, communicator.Size, shuffle, seed, dropLast) { }

    /// <summary>Examples in the data set.</summary>
    public int DatasetSize { get; }
    /// <summary>The rank whose share this is.</summary>
    public int Rank { get; }
    /// <summary>Ranks sharing the data.</summary>
    public int WorldSize { get; }
    /// <summary>Whether each epoch draws a new order.</summary>
    public bool Shuffle { get; }
    /// <summary>The seed every rank shares.</summary>
    public ulong Seed { get; }
    /// <summary>Whether the tail that does not divide among the ranks is dropped (else the head is repeated).</summary>
    public bool DropLast { get; }
    /// <summary>The epoch whose order <see cref="Indices"/> gives.</summary>
    public int Epoch { get; private set; }

    /// <summary>Examples in each rank's share.</summary>
    public int Count => DropLast ? DatasetSize / WorldSize : (DatasetSize + WorldSize - 1) / WorldSize;

    /// <summary>Chooses the epoch whose order the next <see cref="Indices"/> gives.</summary>
    public void SetEpoch(int epoch)
    {
        if (epoch < 0) throw new ArgumentOutOfRangeException(nameof(epoch), $"DistributedSampler.SetEpoch: epoch must be non-negative, got {epoch}.");
        Epoch = epoch;
    }

    /// <summary>This rank's example indices for the current epoch, in the order to visit them.</summary>
    public int[] Indices()
    {
        int[] order = Shuffle ? new Generator(Seed + (ulong)Epoch).Permutation(DatasetSize) : Enumerable.Range(0, DatasetSize).ToArray();
        var mine = new int[Count];
        for (int k = 0; k < mine.Length; k++)
        {
            int position = Rank + k * WorldSize; // < total; past the data set only when padding
            mine[k] = order[position % DatasetSize];
        }
        return mine;
    }

    /// <summary>A loader of this rank's share of <paramref name="dataset"/> for the current epoch, in order (the shuffle is the sampler's).</summary>
    public DataLoader Loader(Dataset dataset, int batchSize, bool dropLast = false)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        if (dataset.Count != DatasetSize)
            throw new ArgumentException($"DistributedSampler.Loader: the sampler was made for {DatasetSize} examples, the data set has {dataset.Count}.", nameof(dataset));
        return new DataLoader(new Subset(dataset, Indices()), batchSize, shuffle: false, dropLast: dropLast);
    }
}
