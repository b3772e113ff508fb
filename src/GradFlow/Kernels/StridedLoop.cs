namespace GradFlow.Kernels;

/// <summary>A kernel for one innermost row of an n-d loop over up to three operands.</summary>
internal interface IRowKernel
{
    /// <summary>
    /// Processes <paramref name="n"/> elements: operand k starts at offset ok and steps by sk.
    /// A step of 0 means the operand is broadcast (or, for a reduction's output, accumulated into).
    /// </summary>
    void Row(int n, int o0, int s0, int o1, int s1, int o2, int s2);
}

/// <summary>
/// Walks an n-d index space over up to three strided operands, as PyTorch's TensorIterator does:
/// dims of size one are dropped, neighbouring dims that are contiguous for every operand are merged,
/// so a contiguous or simply broadcast loop becomes one long row that the row kernel vectorises.
/// </summary>
internal static class StridedLoop
{
    private const int MaxStackRank = 16;

    public static void Run<TK>(ref TK kernel, ReadOnlySpan<int> shape,
        ReadOnlySpan<int> strides0, int offset0,
        ReadOnlySpan<int> strides1, int offset1,
        ReadOnlySpan<int> strides2, int offset2) where TK : struct, IRowKernel
    {
        int rank = shape.Length;
        foreach (int s in shape) if (s == 0) return;
        Span<int> buf = rank <= MaxStackRank ? stackalloc int[4 * MaxStackRank] : new int[4 * rank];
        Span<int> sh = buf.Slice(0, rank), st0 = buf.Slice(rank, rank), st1 = buf.Slice(2 * rank, rank), st2 = buf.Slice(3 * rank, rank);
        int r = Coalesce(shape, strides0, strides1, strides2, sh, st0, st1, st2);
        if (r == 0)
        {
            kernel.Row(1, offset0, 0, offset1, 0, offset2, 0);
            return;
        }
        int inner = sh[r - 1], i0 = st0[r - 1], i1 = st1[r - 1], i2 = st2[r - 1];
        if (r == 1)
        {
            kernel.Row(inner, offset0, i0, offset1, i1, offset2, i2);
            return;
        }
        Span<int> counter = r <= MaxStackRank ? stackalloc int[r] : new int[r];
        counter.Clear();
        int o0 = offset0, o1 = offset1, o2 = offset2;
        while (true)
        {
            kernel.Row(inner, o0, i0, o1, i1, o2, i2);
            int d = r - 2;
            for (; d >= 0; d--)
            {
                o0 += st0[d]; o1 += st1[d]; o2 += st2[d];
                if (++counter[d] < sh[d]) break;
                o0 -= st0[d] * sh[d]; o1 -= st1[d] * sh[d]; o2 -= st2[d] * sh[d];
                counter[d] = 0;
            }
            if (d < 0) return;
        }
    }

    /// <summary>Drops size-1 dims and merges dims that are contiguous for all operands; returns the new rank.</summary>
    private static int Coalesce(ReadOnlySpan<int> shape, ReadOnlySpan<int> s0, ReadOnlySpan<int> s1, ReadOnlySpan<int> s2,
        Span<int> sh, Span<int> t0, Span<int> t1, Span<int> t2)
    {
        int r = 0;
        for (int d = 0; d < shape.Length; d++)
        {
            if (shape[d] == 1) continue;
            int a = s0.IsEmpty ? 0 : s0[d], b = s1.IsEmpty ? 0 : s1[d], c = s2.IsEmpty ? 0 : s2[d];
            if (r > 0 && t0[r - 1] == a * shape[d] && t1[r - 1] == b * shape[d] && t2[r - 1] == c * shape[d])
            {
                sh[r - 1] *= shape[d];
                t0[r - 1] = a; t1[r - 1] = b; t2[r - 1] = c;
                continue;
            }
            sh[r] = shape[d]; t0[r] = a; t1[r] = b; t2[r] = c;
            r++;
        }
        return r;
    }
}
