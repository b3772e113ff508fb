namespace GradFlow.Diagnostics;

/// <summary>
/// Parameter-sized vectors kept from one Lanczos run to the next (a sharpness probe's), so a run writes into memory an
/// earlier run already touched: the first touch of a fresh array costs a page fault per 4 KB, 10-20 ms for one
/// 15 MB mlp-sized vector on the bench machine (a training step is 20 ms), and a probe rents k + 2 of them for k
/// products. At most <see cref="Capacity"/> vectors are kept; not thread-safe (one probe, one thread).
/// </summary>
internal sealed class VectorPool(int length, int capacity)
{
    private readonly Stack<double[]> _free = new();

    /// <summary>Entries per vector.</summary>
    public int Length => length;

    /// <summary>Vectors kept at most.</summary>
    public int Capacity => capacity;

    /// <summary>Vectors kept now.</summary>
    public int Count => _free.Count;

    /// <summary>A kept vector, or a new uninitialised one (the caller writes every entry before reading it).</summary>
    public double[] Rent() => _free.TryPop(out var v) ? v : GC.AllocateUninitializedArray<double>(length);

    /// <summary>Keeps <paramref name="vector"/> for a later <see cref="Rent"/> if it has the pool's length and there is room.</summary>
    public void Return(double[] vector)
    {
        if (vector.Length == length && _free.Count < capacity) _free.Push(vector);
    }
}
