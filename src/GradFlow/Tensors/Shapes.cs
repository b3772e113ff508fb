namespace GradFlow;

/// <summary>Shape arithmetic: element counts, strides, broadcasting.</summary>
internal static class Shapes
{
    public static int Count(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int s in shape) n *= s;
        if (n > int.MaxValue) throw new ArgumentException($"A tensor of shape {Guard.Shape(shape)} has more than {int.MaxValue} elements.");
        return (int)n;
    }

    public static int[] ContiguousStrides(ReadOnlySpan<int> shape)
    {
        var strides = new int[shape.Length];
        int s = 1;
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            strides[d] = s;
            s *= Math.Max(shape[d], 1);
        }
        return strides;
    }

    public static bool IsContiguous(ReadOnlySpan<int> shape, ReadOnlySpan<int> strides)
    {
        int expected = 1;
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            if (shape[d] == 1) continue;
            if (strides[d] != expected) return false;
            expected *= shape[d];
        }
        return true;
    }

    /// <summary>
    /// Strides that view data laid out as (shape, strides) with <paramref name="newShape"/>, or null when
    /// the layout needs a copy. PyTorch's computeStride: each run of dims that is contiguous within itself
    /// (a "chunk") may be split or merged freely; size-1 dims fit anywhere.
    /// </summary>
    public static int[]? ViewStrides(int[] shape, int[] strides, int[] newShape)
    {
        if (shape.Length == 0 || Count(shape) == 0) return ContiguousStrides(newShape);
        var newStrides = new int[newShape.Length];
        int viewD = newShape.Length - 1;
        int chunkBase = strides[^1];
        long tensorNumel = 1, viewNumel = 1;
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            tensorNumel *= shape[d];
            if (d == 0 || (shape[d - 1] != 1 && strides[d - 1] != tensorNumel * chunkBase))
            {
                while (viewD >= 0 && (viewNumel < tensorNumel || newShape[viewD] == 1))
                {
                    newStrides[viewD] = (int)(viewNumel * chunkBase);
                    viewNumel *= newShape[viewD];
                    viewD--;
                }
                if (viewNumel != tensorNumel) return null;
                if (d > 0)
                {
                    chunkBase = strides[d - 1];
                    tensorNumel = 1;
                    viewNumel = 1;
                }
            }
        }
        return viewD == -1 ? newStrides : null;
    }

    /// <summary>The storage position of row-major element number <paramref name="flat"/>.</summary>
    public static int StorageIndex(int flat, ReadOnlySpan<int> shape, ReadOnlySpan<int> strides, int offset)
    {
        int pos = offset;
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            int size = shape[d];
            pos += (flat % size) * strides[d];
            flat /= size;
        }
        return pos;
    }

    /// <summary>NumPy broadcasting: align from the right, sizes must match or be 1.</summary>
    public static int[] Broadcast(ReadOnlySpan<int> a, ReadOnlySpan<int> b, string op)
    {
        int rank = Math.Max(a.Length, b.Length);
        var result = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i < rank - a.Length ? 1 : a[i - (rank - a.Length)];
            int db = i < rank - b.Length ? 1 : b[i - (rank - b.Length)];
            if (da != db && da != 1 && db != 1)
                Guard.Throw(op, $"shapes {Guard.Shape(a)} and {Guard.Shape(b)} cannot be broadcast together (dim {i}: {da} vs {db}).");
            result[i] = da == 1 ? db : da;
        }
        return result;
    }

    /// <summary>Strides that read a tensor of <paramref name="shape"/> as if it had <paramref name="target"/> shape (0 where broadcast).</summary>
    public static int[] BroadcastStrides(ReadOnlySpan<int> shape, ReadOnlySpan<int> strides, ReadOnlySpan<int> target)
    {
        var result = new int[target.Length];
        int lead = target.Length - shape.Length;
        for (int i = 0; i < shape.Length; i++)
            result[lead + i] = shape[i] == 1 && target[lead + i] != 1 ? 0 : strides[i];
        return result;
    }

    public static bool Equal(ReadOnlySpan<int> a, ReadOnlySpan<int> b) => a.SequenceEqual(b);
}
