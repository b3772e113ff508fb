using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GradFlow.Kernels;

/// <summary>
/// AVX-512 micro-kernel: 12 rows x 2 vectors (12 x 32 floats, 12 x 16 doubles). 24 accumulators + 2 B vectors
/// + 1 broadcast use 27 of the 32 zmm registers; per k it issues 24 FMAs for 2 loads and 12 broadcasts, enough
/// independent chains to cover Zen 4's 4-cycle FMA latency at one 512-bit FMA per cycle.
/// Blocks (measured on Zen 4, gemm1024 single thread: KC 256 -> 90, 512 -> 95, 1024 -> 99.5 GFLOPS):
/// a deep KC = 4 KiB of k per panel row (1024 floats, 512 doubles) wins because each C tile is then read
/// and written once per 1024-deep pass instead of four times, and C rows, a full row stride apart, miss L2.
/// The B micro-panel (KC x NR = 128 KiB) and the A block (MC x KC = 96 x 4 KiB = 384 KiB) then share the
/// 1 MiB L2 rather than L1; Zen 4's L2 bandwidth (32 B/cycle) covers the ~7 B/cycle the kernel reads.
/// NC x KC = 8 MiB of packed B per thread stays in the 32 MiB L3 with both cores running.
/// </summary>
internal unsafe struct Kernel512<T> : IGemmMicroKernel<T> where T : unmanaged, INumber<T>
{
    public static int MR => 12;

    public static int NR => 2 * Vector512<T>.Count;

    public static int KC => typeof(T) == typeof(float) ? 1024 : 512;

    public static int MC => 96;

    public static int NC => typeof(T) == typeof(float) ? 2048 : 1024;

    [SkipLocalsInit]
    public static void Run(nint kc, T* a, T* b, T* c, nint ldc, T alpha, T beta)
    {
        int w = Vector512<T>.Count;
        TilePrefetch.Rows(c, ldc, 12, 2 * w * sizeof(T));
        Vector512<T> c0l = default, c0r = default;
        Vector512<T> c1l = default, c1r = default;
        Vector512<T> c2l = default, c2r = default;
        Vector512<T> c3l = default, c3r = default;
        Vector512<T> c4l = default, c4r = default;
        Vector512<T> c5l = default, c5r = default;
        Vector512<T> c6l = default, c6r = default;
        Vector512<T> c7l = default, c7r = default;
        Vector512<T> c8l = default, c8r = default;
        Vector512<T> c9l = default, c9r = default;
        Vector512<T> c10l = default, c10r = default;
        Vector512<T> c11l = default, c11r = default;
        for (nint p = 0; p < kc; p++)
        {
            var bl = Vector512.Load(b);
            var br = Vector512.Load(b + w);
            var a0 = Vector512.Create(a[0]);
            c0l = VectorFma.Fma(a0, bl, c0l);
            c0r = VectorFma.Fma(a0, br, c0r);
            var a1 = Vector512.Create(a[1]);
            c1l = VectorFma.Fma(a1, bl, c1l);
            c1r = VectorFma.Fma(a1, br, c1r);
            var a2 = Vector512.Create(a[2]);
            c2l = VectorFma.Fma(a2, bl, c2l);
            c2r = VectorFma.Fma(a2, br, c2r);
            var a3 = Vector512.Create(a[3]);
            c3l = VectorFma.Fma(a3, bl, c3l);
            c3r = VectorFma.Fma(a3, br, c3r);
            var a4 = Vector512.Create(a[4]);
            c4l = VectorFma.Fma(a4, bl, c4l);
            c4r = VectorFma.Fma(a4, br, c4r);
            var a5 = Vector512.Create(a[5]);
            c5l = VectorFma.Fma(a5, bl, c5l);
            c5r = VectorFma.Fma(a5, br, c5r);
            var a6 = Vector512.Create(a[6]);
            c6l = VectorFma.Fma(a6, bl, c6l);
            c6r = VectorFma.Fma(a6, br, c6r);
            var a7 = Vector512.Create(a[7]);
            c7l = VectorFma.Fma(a7, bl, c7l);
            c7r = VectorFma.Fma(a7, br, c7r);
            var a8 = Vector512.Create(a[8]);
            c8l = VectorFma.Fma(a8, bl, c8l);
            c8r = VectorFma.Fma(a8, br, c8r);
            var a9 = Vector512.Create(a[9]);
            c9l = VectorFma.Fma(a9, bl, c9l);
            c9r = VectorFma.Fma(a9, br, c9r);
            var a10 = Vector512.Create(a[10]);
            c10l = VectorFma.Fma(a10, bl, c10l);
            c10r = VectorFma.Fma(a10, br, c10r);
            var a11 = Vector512.Create(a[11]);
            c11l = VectorFma.Fma(a11, bl, c11l);
            c11r = VectorFma.Fma(a11, br, c11r);
            a += 12;
            b += 2 * w;
        }

        var va = Vector512.Create(alpha);
        var vb = Vector512.Create(beta);
        bool readC = beta != T.Zero;
        TileStore.Store(c, c0l, va, vb, readC);
        TileStore.Store(c + w, c0r, va, vb, readC);
        TileStore.Store(c + ldc, c1l, va, vb, readC);
        TileStore.Store(c + ldc + w, c1r, va, vb, readC);
        TileStore.Store(c + (2 * ldc), c2l, va, vb, readC);
        TileStore.Store(c + (2 * ldc) + w, c2r, va, vb, readC);
        TileStore.Store(c + (3 * ldc), c3l, va, vb, readC);
        TileStore.Store(c + (3 * ldc) + w, c3r, va, vb, readC);
        TileStore.Store(c + (4 * ldc), c4l, va, vb, readC);
        TileStore.Store(c + (4 * ldc) + w, c4r, va, vb, readC);
        TileStore.Store(c + (5 * ldc), c5l, va, vb, readC);
        TileStore.Store(c + (5 * ldc) + w, c5r, va, vb, readC);
        TileStore.Store(c + (6 * ldc), c6l, va, vb, readC);
        TileStore.Store(c + (6 * ldc) + w, c6r, va, vb, readC);
        TileStore.Store(c + (7 * ldc), c7l, va, vb, readC);
        TileStore.Store(c + (7 * ldc) + w, c7r, va, vb, readC);
        TileStore.Store(c + (8 * ldc), c8l, va, vb, readC);
        TileStore.Store(c + (8 * ldc) + w, c8r, va, vb, readC);
        TileStore.Store(c + (9 * ldc), c9l, va, vb, readC);
        TileStore.Store(c + (9 * ldc) + w, c9r, va, vb, readC);
        TileStore.Store(c + (10 * ldc), c10l, va, vb, readC);
        TileStore.Store(c + (10 * ldc) + w, c10r, va, vb, readC);
        TileStore.Store(c + (11 * ldc), c11l, va, vb, readC);
        TileStore.Store(c + (11 * ldc) + w, c11r, va, vb, readC);
    }
}

/// <summary>
/// Touches the C tile before the k loop so its cache misses (C rows are a full row stride apart and
/// usually out of L2) overlap the FMAs instead of stalling the final update.
/// </summary>
internal static unsafe class TilePrefetch
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Rows<T>(T* c, nint ldc, int rows, int rowBytes) where T : unmanaged
    {
        if (!Sse.IsSupported)
        {
            return;
        }

        byte* row = (byte*)c;
        nint stride = ldc * sizeof(T);
        for (int i = 0; i < rows; i++, row += stride)
        {
            for (int offset = 0; offset < rowBytes; offset += 64)
            {
                Sse.Prefetch0(row + offset);
            }
        }
    }
}
