using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GradFlow.Kernels;

/// <summary>
/// A register-blocked GEMM micro-kernel: C[0:MR, 0:NR] = alpha * Ap * Bp + beta * C, where Ap is an
/// MR-row panel packed k-major (MR values per k) and Bp an NR-column panel packed k-major (NR values per k).
/// beta == 0 overwrites C without reading it. The cache blocks (KC, MC, NC) belong to the kernel because
/// they depend on its register tile and element size.
/// </summary>
internal unsafe interface IGemmMicroKernel<T> where T : unmanaged
{
    static abstract int MR { get; }

    static abstract int NR { get; }

    /// <summary>Depth of a packed panel: the B micro-panel (KC x NR) should stay in L1 across the MR loop.</summary>
    static abstract int KC { get; }

    /// <summary>Rows of the packed A block (MC x KC), sized to sit in L2.</summary>
    static abstract int MC { get; }

    /// <summary>Columns of the packed B block (KC x NC), sized to sit in a share of L3.</summary>
    static abstract int NC { get; }

    static abstract void Run(nint kc, T* a, T* b, T* c, nint ldc, T alpha, T beta);
}

/// <summary>Fused multiply-add on any vector width and element type; the typeof tests fold away in the JIT.</summary>
internal static class VectorFma
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Fma<T>(Vector512<T> a, Vector512<T> b, Vector512<T> c)
    {
        if (typeof(T) == typeof(float))
        {
            return Vector512.FusedMultiplyAdd(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>();
        }

        if (typeof(T) == typeof(double))
        {
            return Vector512.FusedMultiplyAdd(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();
        }

        return (a * b) + c;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Fma<T>(Vector256<T> a, Vector256<T> b, Vector256<T> c)
    {
        if (typeof(T) == typeof(float))
        {
            return Vector256.MultiplyAddEstimate(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>();
        }

        if (typeof(T) == typeof(double))
        {
            return Vector256.MultiplyAddEstimate(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();
        }

        return (a * b) + c;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> Fma<T>(Vector128<T> a, Vector128<T> b, Vector128<T> c)
    {
        if (typeof(T) == typeof(float))
        {
            return Vector128.MultiplyAddEstimate(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>();
        }

        if (typeof(T) == typeof(double))
        {
            return Vector128.MultiplyAddEstimate(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();
        }

        return (a * b) + c;
    }
}

/// <summary>Writes one accumulator vector to C as alpha * acc (+ beta * C).</summary>
internal static unsafe class TileStore
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store<T>(T* c, Vector512<T> acc, Vector512<T> alpha, Vector512<T> beta, bool readC)
        where T : unmanaged
    {
        var r = acc * alpha;
        Vector512.Store(readC ? VectorFma.Fma(beta, Vector512.Load(c), r) : r, c);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store<T>(T* c, Vector256<T> acc, Vector256<T> alpha, Vector256<T> beta, bool readC)
        where T : unmanaged
    {
        var r = acc * alpha;
        Vector256.Store(readC ? VectorFma.Fma(beta, Vector256.Load(c), r) : r, c);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store<T>(T* c, Vector128<T> acc, Vector128<T> alpha, Vector128<T> beta, bool readC)
        where T : unmanaged
    {
        var r = acc * alpha;
        Vector128.Store(readC ? VectorFma.Fma(beta, Vector128.Load(c), r) : r, c);
    }
}

/// <summary>
/// Scalar fallback, 4 x 4, for hardware without SIMD. Blocks: KC 256, MC 128, NC 1024 (small enough for
/// any cache hierarchy; speed here only needs to beat a naive triple loop).
/// </summary>
internal unsafe struct ScalarKernel<T> : IGemmMicroKernel<T> where T : unmanaged, INumber<T>
{
    public static int MR => 4;

    public static int NR => 4;

    public static int KC => 256;

    public static int MC => 128;

    public static int NC => 1024;

    public static void Run(nint kc, T* a, T* b, T* c, nint ldc, T alpha, T beta)
    {
        T* acc = stackalloc T[16];
        for (int i = 0; i < 16; i++)
        {
            acc[i] = T.Zero;
        }

        for (nint p = 0; p < kc; p++, a += 4, b += 4)
        {
            for (int i = 0; i < 4; i++)
            {
                T ai = a[i];
                acc[(i * 4) + 0] += ai * b[0];
                acc[(i * 4) + 1] += ai * b[1];
                acc[(i * 4) + 2] += ai * b[2];
                acc[(i * 4) + 3] += ai * b[3];
            }
        }

        bool readC = beta != T.Zero;
        for (int i = 0; i < 4; i++)
        {
            for (int j = 0; j < 4; j++)
            {
                T r = alpha * acc[(i * 4) + j];
                c[(i * ldc) + j] = readC ? r + (beta * c[(i * ldc) + j]) : r;
            }
        }
    }
}
