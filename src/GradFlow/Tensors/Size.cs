using System.Collections;

namespace GradFlow;

/// <summary>
/// A tensor's shape (torch.Size): prints as <c>[64, 1, 28, 28]</c>, compares by value, indexes from the end
/// (<c>x.Shape[^1]</c>), and converts to <see cref="ReadOnlySpan{T}"/> wherever a shape is taken.
/// </summary>
public readonly struct Size : IEquatable<Size>, IReadOnlyList<int>
{
    private readonly int[]? _dims;

    /// <summary>A shape with the given sizes (copied).</summary>
    public Size(params ReadOnlySpan<int> dims) => _dims = dims.ToArray();

    // Wraps an array nobody mutates (a tensor's own shape), without a copy.
    internal Size(int[] dims, bool wrap) => _dims = dims;

    private int[] Dims => _dims ?? [];

    /// <summary>The number of dims.</summary>
    public int Length => Dims.Length;

    /// <inheritdoc />
    public int Count => Dims.Length;

    /// <summary>The size of a dim (<c>^1</c> is the last).</summary>
    public int this[int dim]
    {
        get
        {
            if ((uint)dim >= (uint)Dims.Length)
                throw new ArgumentOutOfRangeException(nameof(dim), $"Size: dim {dim} is out of range for shape {this} ({Dims.Length} dims).");
            return Dims[dim];
        }
    }

    /// <summary>The sizes of <paramref name="length"/> dims from <paramref name="start"/> (so <c>x.Shape[1..]</c> works).</summary>
    public Size Slice(int start, int length) => new(Dims.AsSpan(start, length));

    /// <summary>The number of elements (the product of the sizes; 1 for a 0-d shape).</summary>
    public long Numel()
    {
        long n = 1;
        foreach (int d in Dims) n *= d;
        return n;
    }

    /// <summary>The sizes as a span.</summary>
    public ReadOnlySpan<int> AsSpan() => Dims;

    /// <summary>A copy of the sizes.</summary>
    public int[] ToArray() => (int[])Dims.Clone();

    /// <summary>True when both list the same sizes.</summary>
    public bool SequenceEqual(ReadOnlySpan<int> other) => Dims.AsSpan().SequenceEqual(other);

    /// <summary>The sizes as a span, so a shape goes wherever a <c>ReadOnlySpan&lt;int&gt;</c> is taken.</summary>
    public static implicit operator ReadOnlySpan<int>(Size size) => size.Dims;

    /// <inheritdoc />
    public bool Equals(Size other) => SequenceEqual(other.Dims);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is Size s && Equals(s);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (int d in Dims) h.Add(d);
        return h.ToHashCode();
    }

    /// <summary>True when both list the same sizes.</summary>
    public static bool operator ==(Size a, Size b) => a.Equals(b);

    /// <summary>True when the sizes differ.</summary>
    public static bool operator !=(Size a, Size b) => !a.Equals(b);

    /// <summary>As PyTorch prints a list of sizes: <c>[64, 1, 28, 28]</c>.</summary>
    public override string ToString() => "[" + string.Join(", ", Dims) + "]";

    /// <summary>A span enumerator, so <c>foreach</c> allocates nothing.</summary>
    public ReadOnlySpan<int>.Enumerator GetEnumerator() => new ReadOnlySpan<int>(Dims).GetEnumerator();

    IEnumerator<int> IEnumerable<int>.GetEnumerator() => ((IEnumerable<int>)Dims).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => Dims.GetEnumerator();
}
