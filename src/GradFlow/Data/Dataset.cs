namespace GradFlow.Data;

/// <summary>
/// A finite collection of (input, target) examples (torch.utils.data.Dataset with a length).
/// <see cref="GetBatch"/> gathers several at once; the default stacks single examples, and
/// tensor-backed data sets override it with one gather per tensor.
/// </summary>
public abstract class Dataset
{
    /// <summary>The number of examples.</summary>
    public abstract int Count { get; }

    /// <summary>Example <paramref name="index"/> (0 &lt;= index &lt; Count).</summary>
    public abstract (Tensor Input, Tensor Target) Get(int index);

    /// <summary>Example <paramref name="index"/>.</summary>
    public (Tensor Input, Tensor Target) this[int index] => Get(index);

    /// <summary>The examples at <paramref name="indices"/>, stacked along a new first dimension.</summary>
    public virtual (Tensor Input, Tensor Target) GetBatch(ReadOnlySpan<int> indices)
    {
        var inputs = new Tensor[indices.Length];
        var targets = new Tensor[indices.Length];
        for (int i = 0; i < indices.Length; i++) (inputs[i], targets[i]) = Get(indices[i]);
        return (Tensor.Stack(inputs), Tensor.Stack(targets));
    }

    /// <summary>Checks an index, naming the data set and its size.</summary>
    protected void CheckIndex(int index)
    {
        if ((uint)index >= (uint)Count)
            Guard.ThrowOutOfRange(GetType().Name, nameof(index), $"index {index} is out of range for {Count} examples.");
    }

    /// <summary>This data set with <paramref name="inputTransform"/> applied to each input as it is read (augmentation).</summary>
    public Dataset WithTransform(ITransform inputTransform) => new TransformedDataset(this, inputTransform);

    /// <summary>
    /// Splits a data set into non-overlapping random subsets of the given sizes, which must add up to its
    /// count (torch.utils.data.random_split). The same generator state gives the same split.
    /// </summary>
    public static Subset[] RandomSplit(Dataset dataset, IReadOnlyList<int> sizes, Generator? generator = null)
    {
        Guard.NotNull(dataset, "Dataset.RandomSplit", nameof(dataset));
        Guard.NotNull(sizes, "Dataset.RandomSplit", nameof(sizes));
        if (sizes.Any(s => s < 0) || sizes.Sum(s => (long)s) != dataset.Count)
            Guard.ThrowArg(nameof(RandomSplit), nameof(sizes), $"sizes [{string.Join(", ", sizes)}] must be non-negative and add up to the data set's {dataset.Count} examples.");
        var perm = (generator ?? Generator.Default).Permutation(dataset.Count);
        var parts = new Subset[sizes.Count];
        for (int i = 0, start = 0; i < sizes.Count; start += sizes[i], i++) parts[i] = new Subset(dataset, perm.AsSpan(start, sizes[i]).ToArray());
        return parts;
    }

    /// <summary>Splits by fractions (e.g. 0.8, 0.2); rounding remainders go to the first parts, as PyTorch does.</summary>
    public static Subset[] RandomSplit(Dataset dataset, IReadOnlyList<double> fractions, Generator? generator = null)
    {
        Guard.NotNull(dataset, "Dataset.RandomSplit", nameof(dataset));
        Guard.NotNull(fractions, "Dataset.RandomSplit", nameof(fractions));
        if (fractions.Any(f => !(f >= 0 && f <= 1)) || Math.Abs(fractions.Sum() - 1) > 1e-9)
            Guard.ThrowArg(nameof(RandomSplit), nameof(fractions), $"fractions [{string.Join(", ", fractions)}] must be in [0, 1] and add up to 1.");
        var sizes = fractions.Select(f => (int)Math.Floor(dataset.Count * f)).ToArray();
        int rest = dataset.Count - sizes.Sum();
        for (int i = 0; i < rest; i++) sizes[i % sizes.Length]++;
        return RandomSplit(dataset, sizes, generator);
    }
}

/// <summary>The examples of a data set at the given indices, in that order (torch.utils.data.Subset).</summary>
public sealed class Subset : Dataset
{
    private readonly int[] _indices;

    /// <summary>A view of <paramref name="dataset"/> through <paramref name="indices"/>.</summary>
    public Subset(Dataset dataset, IEnumerable<int> indices)
    {
        Guard.NotNull(dataset, "Subset", nameof(dataset));
        Guard.NotNull(indices, "Subset", nameof(indices));
        Source = dataset;
        _indices = indices.ToArray();
        foreach (int i in _indices)
            if ((uint)i >= (uint)dataset.Count)
                Guard.ThrowOutOfRange("Subset", nameof(indices), $"index {i} is out of range for {dataset.Count} examples.");
    }

    /// <summary>The underlying data set.</summary>
    public Dataset Source { get; }

    /// <summary>The indices into <see cref="Source"/>.</summary>
    public IReadOnlyList<int> Indices => _indices;

    /// <inheritdoc />
    public override int Count => _indices.Length;

    /// <inheritdoc />
    public override (Tensor Input, Tensor Target) Get(int index)
    {
        CheckIndex(index);
        return Source.Get(_indices[index]);
    }

    /// <inheritdoc />
    public override (Tensor Input, Tensor Target) GetBatch(ReadOnlySpan<int> indices)
    {
        var mapped = new int[indices.Length];
        for (int i = 0; i < indices.Length; i++)
        {
            CheckIndex(indices[i]);
            mapped[i] = _indices[indices[i]];
        }
        return Source.GetBatch(mapped);
    }
}

/// <summary>A data set whose inputs pass through a transform when read.</summary>
public sealed class TransformedDataset(Dataset source, ITransform transform) : Dataset
{
    private readonly Dataset _source = Guard.NotNull(source, "TransformedDataset", nameof(source));
    private readonly ITransform _transform = Guard.NotNull(transform, "TransformedDataset", nameof(transform));

    /// <inheritdoc />
    public override int Count => _source.Count;

    /// <inheritdoc />
    public override (Tensor Input, Tensor Target) Get(int index)
    {
        var (x, y) = _source.Get(index);
        return (_transform.Apply(x), y);
    }
}
