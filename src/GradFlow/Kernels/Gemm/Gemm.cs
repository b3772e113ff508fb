using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GradFlow.Kernels;

/// <summary>
/// General matrix multiply on row-major spans: C[m, n] = alpha * op(A) * op(B) + beta * C, with
/// op(X) = X or X^T. A is m x k (k x m when <c>transA</c>) with row stride <c>lda</c>; B is k x n
/// (n x k when <c>transB</c>) with row stride <c>ldb</c>; C has row stride <c>ldc</c>. When beta is 0,
/// C is overwritten without being read, so it may hold garbage (even NaN).
/// Large products are packed into cache blocks, run on an AVX-512 / AVX2 / 128-bit / scalar micro-kernel
/// (the widest the hardware accelerates) and split across <see cref="Parallelism.NumThreads"/> threads.
/// </summary>
public static class Gemm
{
    /// <summary>Single-precision GEMM; see <see cref="Gemm"/> for the operand layout.</summary>
    /// <exception cref="ArgumentException">A size is negative, a leading dimension is too small, or a span is too short.</exception>
    public static unsafe void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        Guard.Gemm(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        fixed (float* pa = a, pb = b, pc = c)
        {
            var g = Problem(transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
            Dispatch(g);
        }
    }

    /// <summary>Double-precision GEMM; see <see cref="Gemm"/> for the operand layout.</summary>
    /// <exception cref="ArgumentException">A size is negative, a leading dimension is too small, or a span is too short.</exception>
    public static unsafe void Dgemm(bool transA, bool transB, int m, int n, int k, double alpha,
        ReadOnlySpan<double> a, int lda, ReadOnlySpan<double> b, int ldb, double beta, Span<double> c, int ldc)
    {
        Guard.Gemm(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        fixed (double* pa = a, pb = b, pc = c)
        {
            var g = Problem(transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
            Dispatch(g);
        }
    }

    private static unsafe GemmProblem<T> Problem<T>(bool transA, bool transB, int m, int n, int k, T alpha,
        T* a, int lda, T* b, int ldb, T beta, T* c, int ldc) where T : unmanaged => new()
        {
            A = a, B = b, C = c, Lda = lda, Ldb = ldb, Ldc = ldc, TransA = transA, TransB = transB,
            M = m, N = n, K = k, Alpha = alpha, Beta = beta,
        };

    private static unsafe void Dispatch<T>(in GemmProblem<T> g) where T : unmanaged, INumber<T>
    {
        if (g.M == 0 || g.N == 0)
        {
            return;
        }

        if (g.K == 0 || g.Alpha == T.Zero)
        {
            ScaleC(g);
        }
        else if (GemmSmall.Applies(g.M, g.N, g.K))
        {
            GemmSmall.Run(g);
        }
        else if (Vector512.IsHardwareAccelerated)
        {
            GemmDriver<T, Kernel512<T>>.Run(g);
        }
        else if (Vector256.IsHardwareAccelerated && Fma.IsSupported)
        {
            GemmDriver<T, Kernel256<T>>.Run(g);
        }
        else if (Vector128.IsHardwareAccelerated)
        {
            GemmDriver<T, Kernel128<T>>.Run(g);
        }
        else
        {
            GemmDriver<T, ScalarKernel<T>>.Run(g);
        }
    }

    // C = beta * C when the product contributes nothing (k = 0 or alpha = 0); beta = 0 clears NaN garbage.
    private static unsafe void ScaleC<T>(in GemmProblem<T> g) where T : unmanaged, INumber<T>
    {
        for (int i = 0; i < g.M; i++)
        {
            var row = new Span<T>(g.C + (i * g.Ldc), g.N);
            if (g.Beta == T.Zero)
            {
                row.Clear();
            }
            else
            {
                foreach (ref T x in row)
                {
                    x *= g.Beta;
                }
            }
        }
    }
}
