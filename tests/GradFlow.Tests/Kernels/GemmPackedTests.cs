using GradFlow.Kernels;

namespace GradFlow.Tests.Kernels;

/// <summary>GEMM with a pre-packed B against the double-accumulating reference, on odd sizes and padded operands.</summary>
[Collection(ParallelismCollection.Name)]
public class GemmPackedTests
{
    public static TheoryData<int, int, int> Sizes => new()
    {
        { 1, 1, 1 },
        { 7, 33, 65 },
        { 65, 7, 33 },
        { 32, 160, 96 },
        { 33, 40, 1100 },
        { 1, 130, 65 },
        { 130, 1, 33 },
        { 20, 70, 2100 },
    };

    [Theory]
    [MemberData(nameof(Sizes))]
    public void SinglePrecisionMatchesReference(int m, int n, int k)
    {
        RunAll<float>(m, n, k, 1, 1e-5);
        RunAll<float>(m, n, k, 2, 1e-5);
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void DoublePrecisionMatchesReference(int m, int n, int k)
    {
        RunAll<double>(m, n, k, 1, 1e-13);
        RunAll<double>(m, n, k, 2, 1e-13);
    }

    [Fact]
    public void OnePackServesManyProductsAndRepacksIntoTheSameInstance()
    {
        var packed = new PackedMatrix<float>();
        foreach (var (n, k) in new[] { (40, 9), (9, 40) })
        {
            var d = new GemmTestData<float>(false, true, 5, n, k, seed: n);
            GemmPacked.PackB<float>(true, k, n, d.B, d.Ldb, packed);
            for (int rep = 0; rep < 2; rep++)
            {
                var before = (float[])d.C.Clone();
                GemmPacked.Run(false, 5, 1f, d.A, d.Lda, packed, 1f, d.C, d.Ldc);
                d.AssertMatches(before, 1, 1, 1e-5, $"n={n} k={k} rep={rep}");
            }
        }
    }

    [Fact]
    public void ShortOperandsAreRejected()
    {
        var packed = new PackedMatrix<float>();
        var e = Assert.Throws<ArgumentException>(() => GemmPacked.PackB<float>(false, 4, 5, new float[19], 5, packed));
        Assert.Equal("b", e.ParamName);
        GemmPacked.PackB<float>(false, 4, 5, new float[20], 5, packed);
        e = Assert.Throws<ArgumentException>(() => GemmPacked.Run(false, 3, 1f, new float[11], 4, packed, 0f, new float[15], 5));
        Assert.Equal("a", e.ParamName);
    }

    private static void RunAll<T>(int m, int n, int k, int threads, double relTol)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        int saved = Parallelism.NumThreads;
        Parallelism.NumThreads = threads;
        try
        {
            foreach (bool transA in new[] { false, true })
                foreach (bool transB in new[] { false, true })
                    foreach (var (alpha, beta) in new[] { (1.0, 0.0), (-0.5, 1.0), (2.0, 0.5) })
                    {
                        var d = new GemmTestData<T>(transA, transB, m, n, k, seed: m + (7 * n) + (13 * k));
                        if (beta == 0) d.PoisonC();
                        var before = (T[])d.C.Clone();
                        var packed = new PackedMatrix<T>();
                        GemmPacked.PackB<T>(transB, k, n, d.B, d.Ldb, packed);
                        GemmPacked.Run(transA, m, T.CreateChecked(alpha), d.A, d.Lda, packed, T.CreateChecked(beta), d.C, d.Ldc);
                        d.AssertMatches(before, alpha, beta, relTol, $"{typeof(T).Name} tA={transA} tB={transB} {m}x{n}x{k} a={alpha} b={beta} threads={threads}");
                    }
        }
        finally
        {
            Parallelism.NumThreads = saved;
        }
    }
}
