using System.Runtime.InteropServices;

namespace GradFlow.Kernels;

/// <summary>
/// <see cref="Gemm.Sgemm"/> or <see cref="Gemm.Dgemm"/> chosen by element type, for kernels written once
/// over float and double; the typeof test folds away when the JIT specialises <typeparamref name="T"/>.
/// </summary>
internal static class GemmOf<T> where T : unmanaged
{
    public static void Run(bool transA, bool transB, int m, int n, int k, T alpha, ReadOnlySpan<T> a, int lda,
        ReadOnlySpan<T> b, int ldb, T beta, Span<T> c, int ldc)
    {
        if (typeof(T) == typeof(float))
        {
            Gemm.Sgemm(transA, transB, m, n, k, (float)(object)alpha, MemoryMarshal.Cast<T, float>(a), lda,
                MemoryMarshal.Cast<T, float>(b), ldb, (float)(object)beta, MemoryMarshal.Cast<T, float>(c), ldc);
        }
        else if (typeof(T) == typeof(double))
        {
            Gemm.Dgemm(transA, transB, m, n, k, (double)(object)alpha, MemoryMarshal.Cast<T, double>(a), lda,
                MemoryMarshal.Cast<T, double>(b), ldb, (double)(object)beta, MemoryMarshal.Cast<T, double>(c), ldc);
        }
        else
        {
            throw new NotSupportedException($"Gemm: element type {typeof(T).Name} is not supported.");
        }
    }
}
