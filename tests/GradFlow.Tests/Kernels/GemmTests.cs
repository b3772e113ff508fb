using GradFlow.Kernels;

namespace GradFlow.Tests.Kernels;

[Collection(ParallelismCollection.Name)]
public class GemmTests
{
    public static TheoryData<int, int, int> Sizes => new()
    {
        { 1, 1, 1 },
        { 7, 33, 65 },
        { 65, 7, 33 },
        { 33, 65, 7 },
        { 1, 130, 65 },
        { 130, 1, 33 },
        { 130, 130, 130 },
        { 1023, 33, 65 },
        { 65, 130, 1023 },
        { 33, 1023, 7 },
        { 20, 70, 2100 },
    };

    private static readonly (double Alpha, double Beta)[] Scalars = [(1, 0), (-0.5, 1), (2, 0.5)];

    [Theory]
    [MemberData(nameof(Sizes))]
    public void SgemmMatchesReferenceSingleThread(int m, int n, int k) => RunAll<float>(m, n, k, 1, 1e-5);

    [Theory]
    [MemberData(nameof(Sizes))]
    public void SgemmMatchesReferenceTwoThreads(int m, int n, int k) => RunAll<float>(m, n, k, 2, 1e-5);

    [Theory]
    [MemberData(nameof(Sizes))]
    public void DgemmMatchesReferenceSingleThread(int m, int n, int k) => RunAll<double>(m, n, k, 1, 1e-13);

    [Theory]
    [MemberData(nameof(Sizes))]
    public void DgemmMatchesReferenceTwoThreads(int m, int n, int k) => RunAll<double>(m, n, k, 2, 1e-13);

    [Fact]
    public void ZeroDepthScalesC()
    {
        var c = new float[] { 1, 2, float.NaN, 4 };
        Gemm.Sgemm(false, false, 2, 2, 0, 1f, [], 1, [], 2, 2f, c, 2);
        Assert.Equal([2f, 4f, float.NaN, 8f], c);
        Gemm.Sgemm(false, false, 2, 2, 0, 1f, [], 1, [], 2, 0f, c, 2);
        Assert.Equal([0f, 0f, 0f, 0f], c);
    }

    [Fact]
    public void NegativeSizeIsRejectedWithSizes()
    {
        var e = Assert.Throws<ArgumentException>(() =>
            Gemm.Sgemm(false, false, -1, 2, 2, 1f, new float[4], 2, new float[4], 2, 0f, new float[4], 2));
        Assert.Contains("Gemm", e.Message);
        Assert.Contains("m=-1", e.Message);
        Assert.Equal("m", e.ParamName);
    }

    [Fact]
    public void ShortSpanIsRejectedNamingTheOperand()
    {
        var e = Assert.Throws<ArgumentException>(() =>
            Gemm.Dgemm(false, true, 3, 4, 5, 1, new double[15], 5, new double[19], 5, 0, new double[12], 4));
        Assert.Equal("b", e.ParamName);
        Assert.Contains("Gemm", e.Message);
        Assert.Contains("19", e.Message);
        Assert.Contains("20", e.Message);
    }

    [Fact]
    public void SmallLeadingDimensionIsRejected()
    {
        var e = Assert.Throws<ArgumentException>(() =>
            Gemm.Sgemm(true, false, 3, 4, 5, 1f, new float[15], 2, new float[20], 4, 0f, new float[12], 4));
        Assert.Equal("lda", e.ParamName);
        Assert.Contains("lda=2", e.Message);
    }

    private static void RunAll<T>(int m, int n, int k, int threads, double relTol)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        int saved = Parallelism.NumThreads;
        Parallelism.NumThreads = threads;
        try
        {
            foreach (bool transA in new[] { false, true })
            {
                foreach (bool transB in new[] { false, true })
                {
                    foreach (var (alpha, beta) in Scalars)
                    {
                        RunOne<T>(transA, transB, m, n, k, alpha, beta, relTol);
                    }
                }
            }
        }
        finally
        {
            Parallelism.NumThreads = saved;
        }
    }

    private static void RunOne<T>(bool transA, bool transB, int m, int n, int k, double alpha, double beta,
        double relTol) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        var d = new GemmTestData<T>(transA, transB, m, n, k, seed: m + (7 * n) + (13 * k));
        if (beta == 0)
        {
            d.PoisonC();
        }

        var before = (T[])d.C.Clone();
        if (typeof(T) == typeof(float))
        {
            Gemm.Sgemm(transA, transB, m, n, k, (float)alpha, (float[])(object)d.A, d.Lda,
                (float[])(object)d.B, d.Ldb, (float)beta, (float[])(object)d.C, d.Ldc);
        }
        else
        {
            Gemm.Dgemm(transA, transB, m, n, k, alpha, (double[])(object)d.A, d.Lda,
                (double[])(object)d.B, d.Ldb, beta, (double[])(object)d.C, d.Ldc);
        }

        d.AssertMatches(before, alpha, beta, relTol, $"{typeof(T).Name} tA={transA} tB={transB} {m}x{n}x{k} a={alpha} b={beta}");
    }
}
