using System.Numerics;
using System.Runtime.Intrinsics;

namespace GradFlow.Kernels;

/// <summary>General matrix multiply on row-major spans.</summary>
public static class Gemm
{
    /// <summary>C = alpha * op(A) * op(B) + beta * C, row-major, op(X) = X or X^T.</summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha, ReadOnlySpan<float> a, int lda,
        ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc) =>
        Run(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    /// <summary>C = alpha * op(A) * op(B) + beta * C in double precision.</summary>
    public static void Dgemm(bool transA, bool transB, int m, int n, int k, double alpha, ReadOnlySpan<double> a, int lda,
        ReadOnlySpan<double> b, int ldb, double beta, Span<double> c, int ldc) =>
        Run(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    private static void Run<T>(bool transA, bool transB, int m, int n, int k, T alpha, ReadOnlySpan<T> a, int lda,
        ReadOnlySpan<T> b, int ldb, T beta, Span<T> c, int ldc) where T : unmanaged, INumber<T>
    {
        // Row i of C accumulates alpha * A[i,p] * B[p,:], vectorised along the row; B^T is first made row-major.
        T[]? bt = null;
        if (transB)
        {
            bt = new T[k * n];
            for (int j = 0; j < n; j++)
                for (int p = 0; p < k; p++) bt[p * n + j] = b[j * ldb + p];
            b = bt;
            ldb = n;
        }
        for (int i = 0; i < m; i++)
        {
            var crow = c.Slice(i * ldc, n);
            if (beta == T.Zero) crow.Clear();
            else if (beta != T.One) Elementwise.BinaryScalarRight<MulOp, T>(crow, beta, crow);
            for (int p = 0; p < k; p++)
            {
                T av = alpha * (transA ? a[p * lda + i] : a[i * lda + p]);
                var brow = b.Slice(p * ldb, n);
                int j = 0;
                if (Vector256.IsHardwareAccelerated)
                {
                    var s = Vector256.Create(av);
                    for (; j + Vector256<T>.Count <= n; j += Vector256<T>.Count)
                        (Vector256.Create(crow.Slice(j)) + s * Vector256.Create(brow.Slice(j))).CopyTo(crow.Slice(j));
                }
                for (; j < n; j++) crow[j] += av * brow[j];
            }
        }
    }
}
