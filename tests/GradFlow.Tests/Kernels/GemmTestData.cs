using System.Numerics;

namespace GradFlow.Tests.Kernels;

/// <summary>
/// A GEMM case laid out as submatrix views: every operand has a leading dimension larger than its
/// width, and the padding holds NaN (A, B) or a sentinel (C) so reading or writing outside a view shows.
/// </summary>
internal sealed class GemmTestData<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public const double Sentinel = 12345;

    public GemmTestData(bool transA, bool transB, int m, int n, int k, int seed)
    {
        (TransA, TransB, M, N, K) = (transA, transB, m, n, k);
        var random = new Random(seed);
        (A, Lda) = Fill(random, transA ? k : m, transA ? m : k, 3, T.NaN);
        (B, Ldb) = Fill(random, transB ? n : k, transB ? k : n, 5, T.NaN);
        (C, Ldc) = Fill(random, m, n, 2, T.CreateChecked(Sentinel));
    }

    public bool TransA { get; }

    public bool TransB { get; }

    public int M { get; }

    public int N { get; }

    public int K { get; }

    public T[] A { get; }

    public int Lda { get; }

    public T[] B { get; }

    public int Ldb { get; }

    public T[] C { get; }

    public int Ldc { get; }

    public double OpA(int i, int p) => double.CreateChecked(TransA ? A[(p * Lda) + i] : A[(i * Lda) + p]);

    public double OpB(int p, int j) => double.CreateChecked(TransB ? B[(j * Ldb) + p] : B[(p * Ldb) + j]);

    /// <summary>Fills C's view with NaN, so a beta = 0 GEMM that reads C fails.</summary>
    public void PoisonC()
    {
        for (int i = 0; i < M; i++)
        {
            C.AsSpan(i * Ldc, N).Fill(T.NaN);
        }
    }

    /// <summary>
    /// Checks C against a double-accumulating reference computed from <paramref name="before"/>; the
    /// tolerance scales with sum |a||b| (float rounding grows with k), and C's padding must be untouched.
    /// </summary>
    public void AssertMatches(T[] before, double alpha, double beta, double relTol, string label)
    {
        for (int i = 0; i < M; i++)
        {
            for (int j = 0; j < N; j++)
            {
                double sum = 0, sumAbs = 0;
                for (int p = 0; p < K; p++)
                {
                    double prod = OpA(i, p) * OpB(p, j);
                    sum += prod;
                    sumAbs += Math.Abs(prod);
                }

                double c0 = beta == 0 ? 0 : double.CreateChecked(before[(i * Ldc) + j]);
                double expected = (alpha * sum) + (beta * c0);
                double actual = double.CreateChecked(C[(i * Ldc) + j]);
                double tol = relTol * ((Math.Abs(alpha) * sumAbs) + Math.Abs(beta * c0) + 1);
                Assert.True(Math.Abs(actual - expected) <= tol,
                    $"{label}: C[{i},{j}] = {actual}, expected {expected} (tol {tol})");
            }
        }

        for (int i = 0; i < C.Length; i++)
        {
            bool inView = i / Ldc < M && i % Ldc < N;
            if (!inView)
            {
                Assert.True(double.CreateChecked(C[i]) == Sentinel, $"{label}: C padding at {i} was written");
            }
        }
    }

    private static (T[] Data, int Ld) Fill(Random random, int rows, int cols, int pad, T padValue)
    {
        int ld = cols + pad;
        var data = new T[Math.Max(1, rows * ld)];
        Array.Fill(data, padValue);
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < cols; j++)
            {
                data[(i * ld) + j] = T.CreateChecked((random.NextDouble() * 2) - 1);
            }
        }

        return (data, ld);
    }
}
