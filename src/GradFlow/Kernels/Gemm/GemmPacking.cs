using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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

    // Source element (p, i) at src[p * ld + i]: each k step is one contiguous run. Full runs of the kernels' panels
    // are copied as vectors, since a memmove call per run cost as much as the copy.
    private static void PackRunsAlongPanel<T>(T* src, nint ld, int count, int kc, int width, T* dst)
        where T : unmanaged
    {
        nint bytes = count * sizeof(T);
        if (count == width && bytes == 128 && Vector512.IsHardwareAccelerated)
        {
            for (int p = 0; p < kc; p++, src += ld, dst += width)
            {
                Vector512.Store(Vector512.Load((byte*)src), (byte*)dst);
                Vector512.Store(Vector512.Load((byte*)src + 64), (byte*)dst + 64);
            }
            return;
        }

        if (count == width && bytes == 48 && Vector256.IsHardwareAccelerated)
        {
            // A panels of 12 floats (the 512-bit kernel's MR): 32 + 16 bytes.
            for (int p = 0; p < kc; p++, src += ld, dst += width)
            {
                Vector256.Store(Vector256.Load((byte*)src), (byte*)dst);
                Vector128.Store(Vector128.Load((byte*)src + 32), (byte*)dst + 32);
            }
            return;
        }

        if (count == width && bytes is 16 or 24 or 32 or 64 && Vector128.IsHardwareAccelerated && SmallRunsEnabled)
        {
            // Panels of the AVX2 and 128-bit kernels: 6 or 16 floats (24, 64 bytes), 4 or 8 (16, 32), 8 doubles (64).
            for (int p = 0; p < kc; p++, src += ld, dst += width)
            {
                CopyRun((byte*)src, (byte*)dst, bytes);
            }
            return;
        }

        for (int p = 0; p < kc; p++, src += ld, dst += width)
        {
            Unsafe.CopyBlockUnaligned(dst, src, (uint)bytes);
            if (count < width)
            {
                new Span<T>(dst + count, width - count).Clear();
            }
        }
    }

    /// <summary>Off to copy the AVX2 and 128-bit kernels' panel runs with memmove again (the bench's A/B in one process).</summary>
    internal static bool SmallRunsEnabled { get; set; } = true;

    // 16 to 64 bytes in 128-bit moves (an 8-byte move for the 24-byte runs of 6 floats).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyRun(byte* src, byte* dst, nint bytes)
    {
        Vector128.Store(Vector128.Load(src), dst);
        if (bytes == 24)
        {
            Unsafe.WriteUnaligned(dst + 16, Unsafe.ReadUnaligned<ulong>(src + 16));
            return;
        }

        if (bytes >= 32)
        {
            Vector128.Store(Vector128.Load(src + 16), dst + 16);
        }

        if (bytes == 64)
        {
            Vector128.Store(Vector128.Load(src + 32), dst + 32);
            Vector128.Store(Vector128.Load(src + 48), dst + 48);
        }
    }

    // Source element (p, i) at src[i * ld + p]: a transpose. Walk the depth outermost so the panel is
    // written sequentially (a KC = 1024 panel is 48-128 KiB, larger than L1, so scattered writes would
    // thrash it) while the `count` source rows stream in parallel.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackRunsAlongDepth<T>(T* src, nint ld, int count, int kc, int width, T* dst)
        where T : unmanaged
    {
        if (typeof(T) == typeof(float) && count == width && (width == 12 || width % 16 == 0) && Avx512F.IsSupported)
        {
            int blocked = kc & ~15;
            GemmTranspose.Pack16((float*)src, ld, count, blocked, (float*)dst);
            src += blocked;
            dst += blocked * width;
            kc -= blocked;
        }
        else if (typeof(T) == typeof(float) && count == width && (width == 4 || width == 6 || width % 8 == 0) && Avx.IsSupported
            && GemmTranspose.Pack8Enabled)
        {
            int blocked = kc & ~7;
            GemmTranspose.Pack8((float*)src, ld, count, blocked, (float*)dst);
            src += blocked;
            dst += blocked * width;
            kc -= blocked;
        }

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
