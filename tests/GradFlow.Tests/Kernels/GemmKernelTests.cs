using System.Numerics;
using System.Runtime.Intrinsics;
using GradFlow.Kernels;

namespace GradFlow.Tests.Kernels;

/// <summary>
/// Drives each micro-kernel and the unpacked small path directly, so the fallbacks that this machine's
/// dispatch would not pick are still checked (each only where the hardware can execute it).
/// </summary>
public class GemmKernelTests
{
    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void EveryKernelMatchesReference(bool transA, bool transB)
    {
        foreach (var (m, n, k) in new[] { (37, 70, 300), (13, 33, 5), (200, 41, 17) })
        {
            if (Vector512.IsHardwareAccelerated)
            {
                Check<float, Kernel512<float>>(transA, transB, m, n, k, 1e-5);
                Check<double, Kernel512<double>>(transA, transB, m, n, k, 1e-13);
            }

            if (Vector256.IsHardwareAccelerated)
            {
                Check<float, Kernel256<float>>(transA, transB, m, n, k, 1e-5);
                Check<double, Kernel256<double>>(transA, transB, m, n, k, 1e-13);
            }

            Check<float, Kernel128<float>>(transA, transB, m, n, k, 1e-5);
            Check<double, Kernel128<double>>(transA, transB, m, n, k, 1e-13);
            Check<float, ScalarKernel<float>>(transA, transB, m, n, k, 1e-5);
            Check<double, ScalarKernel<double>>(transA, transB, m, n, k, 1e-13);
            CheckSmall<float>(transA, transB, m, n, k, 1e-5);
        }
    }

    private static unsafe void Check<T, TKernel>(bool transA, bool transB, int m, int n, int k, double tol)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TKernel : struct, IGemmMicroKernel<T>
    {
        foreach (var (alpha, beta) in new[] { (1.0, 0.0), (-1.5, 0.25) })
        {
            var d = Prepare<T>(transA, transB, m, n, k, beta, out var before);
            fixed (T* a = d.A, b = d.B, c = d.C)
            {
                GemmDriver<T, TKernel>.RunSerial(Problem(d, a, b, c, alpha, beta));
            }

            d.AssertMatches(before, alpha, beta, tol, $"{typeof(TKernel).Name} tA={transA} tB={transB} {m}x{n}x{k}");
        }
    }

    private static unsafe void CheckSmall<T>(bool transA, bool transB, int m, int n, int k, double tol)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var d = Prepare<T>(transA, transB, m, n, k, 0.5, out var before);
        fixed (T* a = d.A, b = d.B, c = d.C)
        {
            GemmSmall.Run(Problem(d, a, b, c, 2.0, 0.5));
        }

        d.AssertMatches(before, 2.0, 0.5, tol, $"small tA={transA} tB={transB} {m}x{n}x{k}");
    }

    private static GemmTestData<T> Prepare<T>(bool transA, bool transB, int m, int n, int k, double beta, out T[] before)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var d = new GemmTestData<T>(transA, transB, m, n, k, seed: m * n);
        if (beta == 0)
        {
            d.PoisonC();
        }

        before = (T[])d.C.Clone();
        return d;
    }

    private static unsafe GemmProblem<T> Problem<T>(GemmTestData<T> d, T* a, T* b, T* c, double alpha, double beta)
        where T : unmanaged, IFloatingPointIeee754<T> => new()
        {
            A = a, B = b, C = c, Lda = d.Lda, Ldb = d.Ldb, Ldc = d.Ldc, TransA = d.TransA, TransB = d.TransB,
            M = d.M, N = d.N, K = d.K, Alpha = T.CreateChecked(alpha), Beta = T.CreateChecked(beta),
        };
}
