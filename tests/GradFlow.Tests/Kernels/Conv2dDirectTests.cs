using GradFlow.Kernels;

namespace GradFlow.Tests.Kernels;

/// <summary>The direct few-taps convolution against the seven-loop reference and against the im2col + GEMM path.</summary>
[Collection(ParallelismCollection.Name)]
public class Conv2dDirectTests
{
    // n, c, h, w, outC, kh, kw, strideH, strideW, padH, padW, dilH, dilW, groups: all with horizontal stride 1,
    // at most 16 taps per output and output rows of at least 8 (multiples of 8 and 16 and not; 1, 3, 4, 5, 9 channels;
    // rows of 8-15 only take the direct path at 8 lanes).
    public static TheoryData<int[]> Configs => new()
    {
        new[] { 3, 1, 28, 28, 32, 3, 3, 1, 1, 0, 0, 1, 1, 1 },
        new[] { 1, 1, 7, 18, 1, 3, 3, 1, 1, 0, 0, 1, 1, 1 },
        new[] { 2, 1, 9, 33, 5, 3, 3, 2, 1, 1, 1, 1, 1, 1 },
        new[] { 1, 1, 17, 16, 3, 4, 4, 1, 1, 2, 2, 1, 1, 1 },
        new[] { 2, 2, 11, 21, 9, 2, 3, 1, 1, 1, 0, 2, 2, 1 },
        new[] { 1, 4, 6, 40, 8, 1, 3, 3, 1, 0, 1, 1, 3, 4 },
        new[] { 3, 2, 8, 19, 4, 3, 2, 2, 1, 2, 1, 1, 1, 2 },
        new[] { 1, 3, 5, 31, 6, 1, 5, 1, 1, 0, 2, 1, 1, 3 },
        new[] { 2, 1, 13, 47, 6, 1, 1, 1, 1, 0, 0, 1, 1, 1 },
        new[] { 2, 1, 9, 12, 5, 3, 3, 1, 1, 0, 0, 1, 1, 1 },
        new[] { 1, 2, 6, 10, 4, 2, 2, 1, 1, 1, 1, 1, 1, 2 },
        new[] { 3, 1, 10, 8, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1 },
    };

    [Theory]
    [MemberData(nameof(Configs))]
    public void MatchesTheReferenceAndTheGemmPath(int[] p)
    {
        var g = Conv2dGeometry.Create("Conv2d", p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12], p[13]);
        // Without AVX2 (or with rows shorter than this machine's vector) both runs below take the GEMM path.
        Assert.Equal(Conv2dDirect.Width > 0 && g.OW >= Conv2dDirect.Width, Conv2dDirect.Applies(g));
        var t = new ConvCase(p, 5);
        var (y, _, dw, db) = t.Reference();
        float[] x = F(t.X), w = F(t.Wt), b = F(t.Bias), dy = F(t.Dy);
        foreach (int threads in new[] { 1, 2 })
        {
            int saved = Parallelism.NumThreads;
            Parallelism.NumThreads = threads;
            try
            {
                var (yd, dwd, dbd) = Run(g, x, w, b, dy, allowDirect: true);
                var (yg, dwg, dbg) = Run(g, x, w, b, dy, allowDirect: false);
                Close(y, yd, "forward");
                Close(dw, dwd, "backward weight");
                Close(db, dbd, "backward bias");
                Close(Array.ConvertAll(yg, v => (double)v), yd, "forward vs GEMM");
                Close(Array.ConvertAll(dwg, v => (double)v), dwd, "backward weight vs GEMM");
                Close(Array.ConvertAll(dbg, v => (double)v), dbd, "backward bias vs GEMM");
            }
            finally
            {
                Parallelism.NumThreads = saved;
            }
        }
    }

    [Theory]
    [InlineData(1, 1, 9, 9, 1, 1, 0, 1)]   // rows of 7 outputs
    [InlineData(1, 1, 12, 12, 3, 1, 0, 1)] // rows of 10: direct at 8 lanes only
    [InlineData(1, 1, 20, 20, 1, 2, 0, 1)] // horizontal stride 2
    [InlineData(1, 2, 20, 20, 3, 1, 0, 1)] // 18 taps
    [InlineData(1, 1, 20, 20, 3, 1, 0, 1)] // first layer shape: direct
    public void TheRuleChoosesByShape(int n, int c, int h, int w, int k, int strideW, int pad, int groups)
    {
        var g = Conv2dGeometry.Create("Conv2d", n, c, h, w, 4, k, k, 1, strideW, pad, pad, 1, 1, groups);
        int width = System.Runtime.Intrinsics.X86.Avx512F.IsSupported ? 16
            : System.Runtime.Intrinsics.X86.Fma.IsSupported && System.Runtime.Intrinsics.X86.Avx2.IsSupported ? 8 : 0;
        Assert.Equal(width, Conv2dDirect.Width);
        bool expected = c * k * k <= Conv2dDirect.MaxColRows && strideW == 1 && g.OW >= width;
        Assert.Equal(expected && width > 0, Conv2dDirect.Applies(g));
        Assert.Equal(expected && width == 16, Conv2dDirect.AppliesForward(g));
    }

    private static (float[] Y, float[] Dw, float[] Db) Run(Conv2dGeometry g, float[] x, float[] w, float[] b, float[] dy, bool allowDirect)
    {
        var y = Nans(g.OutputLength);
        var dw = Nans(g.WeightLength);
        var db = Nans(g.OutC);
        Conv2dKernels.ForwardCore<float>(x, w, b, y, g, allowDirect);
        Conv2dKernels.BackwardWeightCore<float>(x, dy, dw, db, g, allowDirect);
        return (y, dw, db);
    }

    private static float[] F(double[] v) => Array.ConvertAll(v, d => (float)d);

    private static float[] Nans(int n)
    {
        var a = new float[n];
        Array.Fill(a, float.NaN);
        return a;
    }

    private static void Close(double[] expected, float[] actual, string what)
    {
        double scale = 1 + expected.Max(Math.Abs);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 2e-5 * scale, $"{what}[{i}]: got {actual[i]}, expected {expected[i]}");
    }
}
