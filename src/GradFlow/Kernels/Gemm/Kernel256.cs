using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GradFlow.Kernels;

/// <summary>
/// AVX2 / 256-bit micro-kernel: 6 rows x 2 vectors (6 x 16 floats, 6 x 8 doubles): 12 accumulators + 3
/// working registers fit the 16 ymm registers. Blocks as for the AVX-512 kernel scaled to the narrower panel:
/// KC = 256 (B micro-panel 16 KiB), MC = 144 (144 KiB A block in L2), NC = 2048.
/// </summary>
internal unsafe struct Kernel256<T> : IGemmMicroKernel<T> where T : unmanaged, INumber<T>
{
    public static int MR => 6;

    public static int NR => 2 * Vector256<T>.Count;

    public static int KC => 256;

    public static int MC => typeof(T) == typeof(float) ? 144 : 72;

    public static int NC => typeof(T) == typeof(float) ? 2048 : 1024;

    [SkipLocalsInit]
    public static void Run(nint kc, T* a, T* b, T* c, nint ldc, T alpha, T beta)
    {
        int w = Vector256<T>.Count;
        Vector256<T> c0l = default, c0r = default;
        Vector256<T> c1l = default, c1r = default;
        Vector256<T> c2l = default, c2r = default;
        Vector256<T> c3l = default, c3r = default;
        Vector256<T> c4l = default, c4r = default;
        Vector256<T> c5l = default, c5r = default;
        for (nint p = 0; p < kc; p++)
        {
            var bl = Vector256.Load(b);
            var br = Vector256.Load(b + w);
            var a0 = Vector256.Create(a[0]);
            c0l = VectorFma.Fma(a0, bl, c0l);
            c0r = VectorFma.Fma(a0, br, c0r);
            var a1 = Vector256.Create(a[1]);
            c1l = VectorFma.Fma(a1, bl, c1l);
            c1r = VectorFma.Fma(a1, br, c1r);
            var a2 = Vector256.Create(a[2]);
            c2l = VectorFma.Fma(a2, bl, c2l);
            c2r = VectorFma.Fma(a2, br, c2r);
            var a3 = Vector256.Create(a[3]);
            c3l = VectorFma.Fma(a3, bl, c3l);
            c3r = VectorFma.Fma(a3, br, c3r);
            var a4 = Vector256.Create(a[4]);
            c4l = VectorFma.Fma(a4, bl, c4l);
            c4r = VectorFma.Fma(a4, br, c4r);
            var a5 = Vector256.Create(a[5]);
            c5l = VectorFma.Fma(a5, bl, c5l);
            c5r = VectorFma.Fma(a5, br, c5r);
            a += 6;
            b += 2 * w;
        }

        var va = Vector256.Create(alpha);
        var vb = Vector256.Create(beta);
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
    }
}

/// <summary>
/// 128-bit micro-kernel (SSE / NEON): 4 rows x 2 vectors (4 x 8 floats, 4 x 4 doubles): 8 accumulators fit
/// 16 xmm registers. Blocks: KC = 256 (B micro-panel 8 KiB), MC = 128 (128 KiB A block), NC = 1024.
/// </summary>
internal unsafe struct Kernel128<T> : IGemmMicroKernel<T> where T : unmanaged, INumber<T>
{
    public static int MR => 4;

    public static int NR => 2 * Vector128<T>.Count;

    public static int KC => 256;

    public static int MC => typeof(T) == typeof(float) ? 128 : 64;

    public static int NC => typeof(T) == typeof(float) ? 1024 : 512;

    [SkipLocalsInit]
    public static void Run(nint kc, T* a, T* b, T* c, nint ldc, T alpha, T beta)
    {
        int w = Vector128<T>.Count;
        Vector128<T> c0l = default, c0r = default;
        Vector128<T> c1l = default, c1r = default;
        Vector128<T> c2l = default, c2r = default;
        Vector128<T> c3l = default, c3r = default;
        for (nint p = 0; p < kc; p++)
        {
            var bl = Vector128.Load(b);
            var br = Vector128.Load(b + w);
            var a0 = Vector128.Create(a[0]);
            c0l = VectorFma.Fma(a0, bl, c0l);
            c0r = VectorFma.Fma(a0, br, c0r);
            var a1 = Vector128.Create(a[1]);
            c1l = VectorFma.Fma(a1, bl, c1l);
            c1r = VectorFma.Fma(a1, br, c1r);
            var a2 = Vector128.Create(a[2]);
            c2l = VectorFma.Fma(a2, bl, c2l);
            c2r = VectorFma.Fma(a2, br, c2r);
            var a3 = Vector128.Create(a[3]);
            c3l = VectorFma.Fma(a3, bl, c3l);
            c3r = VectorFma.Fma(a3, br, c3r);
            a += 4;
            b += 2 * w;
        }

        var va = Vector128.Create(alpha);
        var vb = Vector128.Create(beta);
        bool readC = beta != T.Zero;
        TileStore.Store(c, c0l, va, vb, readC);
        TileStore.Store(c + w, c0r, va, vb, readC);
        TileStore.Store(c + ldc, c1l, va, vb, readC);
        TileStore.Store(c + ldc + w, c1r, va, vb, readC);
        TileStore.Store(c + (2 * ldc), c2l, va, vb, readC);
        TileStore.Store(c + (2 * ldc) + w, c2r, va, vb, readC);
        TileStore.Store(c + (3 * ldc), c3l, va, vb, readC);
        TileStore.Store(c + (3 * ldc) + w, c3r, va, vb, readC);
    }
}
