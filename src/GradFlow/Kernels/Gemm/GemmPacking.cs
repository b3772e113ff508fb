using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace GradFlow.Kernels;

/// <summary>
/// Copies blocks of op(A) and op(B) into the k-major panels the micro-kernels read. The transposes are
/// folded in here: whichever way an operand is stored, one of two copy loops produces the same panel,
/// so a single micro-kernel serves A*B, A*B^T, A^T*B and A^T*B^T.
/// </summary>
internal static unsafe class GemmPacking
{
    /// <summary>Packs op(A)[i0 : i0+mc, p0 : p0+kc] into panels of <paramref name="mr"/> rows, zero-padded.</summary>
    public static void PackA<T>(in GemmProblem<T> g, int i0, int mc, int p0, int kc, int mr, T* dst)
        where T : unmanaged
    {
        for (int ir = 0; ir < mc; ir += mr, dst += mr * kc)
        {
            int rows = Math.Min(mr, mc - ir);
            if (g.TransA)
            {
                PackRunsAlongPanel(g.A + (p0 * g.Lda) + i0 + ir, g.Lda, rows, kc, mr, dst);
            }
            else
            {
                PackRunsAlongDepth(g.A + ((i0 + ir) * g.Lda) + p0, g.Lda, rows, kc, mr, dst);
            }
        }
    }

    /// <summary>Packs op(B)[p0 : p0+kc, j0 : j0+nc] into panels of <paramref name="nr"/> columns, zero-padded.</summary>
    public static void PackB<T>(in GemmProblem<T> g, int p0, int kc, int j0, int nc, int nr, T* dst)
        where T : unmanaged
    {
        for (int jr = 0; jr < nc; jr += nr, dst += nr * kc)
        {
            int cols = Math.Min(nr, nc - jr);
            if (g.TransB)
            {
                PackRunsAlongDepth(g.B + ((j0 + jr) * g.Ldb) + p0, g.Ldb, cols, kc, nr, dst);
            }
            else
            {
                PackRunsAlongPanel(g.B + (p0 * g.Ldb) + j0 + jr, g.Ldb, cols, kc, nr, dst);
            }
        }
    }

    // Source element (p, i) at src[p * ld + i]: each k step is one contiguous run.
    private static void PackRunsAlongPanel<T>(T* src, nint ld, int count, int kc, int width, T* dst)
        where T : unmanaged
    {
        nint bytes = count * sizeof(T);
        for (int p = 0; p < kc; p++, src += ld, dst += width)
        {
            Unsafe.CopyBlockUnaligned(dst, src, (uint)bytes);
            if (count < width)
            {
                new Span<T>(dst + count, width - count).Clear();
            }
        }
    }

    // Source element (p, i) at src[i * ld + p]: a transpose. Walk the depth outermost so the panel is
    // written sequentially (a KC = 1024 panel is 48-128 KiB, larger than L1, so scattered writes would
    // thrash it) while the `count` source rows stream in parallel.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackRunsAlongDepth<T>(T* src, nint ld, int count, int kc, int width, T* dst)
        where T : unmanaged
    {
        for (int p = 0; p < kc; p++, dst += width)
        {
            T* s = src + p;
            int i = 0;
            for (; i < count; i++, s += ld)
            {
                dst[i] = *s;
            }

            for (; i < width; i++)
            {
                dst[i] = default;
            }
        }
    }
}

/// <summary>
/// Per-thread packing buffers, grown on demand and then reused, so steady-state GEMM calls allocate
/// nothing. Pinned and 64-byte aligned so panel loads never split a cache line.
/// </summary>
internal static unsafe class PackBuffers<T> where T : unmanaged
{
    [ThreadStatic] private static T[]? bufferA;
    [ThreadStatic] private static T[]? bufferB;

    public static T* ForA(int length) => Get(ref bufferA, length);

    public static T* ForB(int length) => Get(ref bufferB, length);

    private static T* Get(ref T[]? buffer, int length)
    {
        int padded = length + (64 / sizeof(T));
        if (buffer is null || buffer.Length < padded)
        {
            buffer = GC.AllocateUninitializedArray<T>(padded, pinned: true);
        }

        nint address = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer));
        return (T*)((address + 63) & ~(nint)63);
    }
}
