using GradFlow.Kernels;

namespace GradFlow.Tests.Kernels;

[Collection(ParallelismCollection.Name)]
public class Conv2dKernelsTests
{
    // n, c, h, w, outC, kh, kw, strideH, strideW, padH, padW, dilH, dilW, groups
    public static TheoryData<int[]> Configs => new()
    {
        new[] { 2, 4, 9, 7, 6, 3, 2, 2, 1, 1, 1, 1, 2, 2 },
        new[] { 1, 3, 11, 13, 5, 3, 3, 1, 1, 0, 0, 2, 2, 1 },
        new[] { 3, 6, 5, 4, 9, 1, 1, 1, 1, 0, 0, 1, 1, 3 },
        new[] { 2, 4, 8, 8, 8, 3, 3, 2, 2, 1, 1, 1, 1, 4 },
        new[] { 1, 2, 7, 5, 3, 5, 3, 3, 2, 2, 1, 1, 1, 1 },
        new[] { 1, 16, 33, 33, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1 },
        new[] { 3, 8, 17, 15, 12, 3, 3, 1, 1, 1, 1, 1, 1, 2 },
        new[] { 2, 8, 12, 19, 6, 3, 2, 2, 1, 0, 0, 1, 2, 2 },
        new[] { 1, 5, 9, 8, 3, 2, 1, 1, 1, 0, 0, 3, 1, 1 },
        new[] { 3, 4, 7, 16, 6, 2, 3, 1, 1, 0, 0, 2, 1, 2 },
        new[] { 4, 2, 9, 5, 3, 4, 1, 1, 1, 0, 0, 2, 1, 1 },
    };

    [Theory]
    [MemberData(nameof(Configs))]
    public void FloatMatchesDirectLoops(int[] cfg)
    {
        foreach (int threads in new[] { 1, 2 })
        {
            WithThreads(threads, () => Check(cfg, 2e-5, 7));
        }
    }

    [Theory]
    [MemberData(nameof(Configs))]
    public void DoubleMatchesDirectLoops(int[] cfg)
    {
        foreach (int threads in new[] { 1, 2 })
        {
            WithThreads(threads, () => Check(cfg, 1e-12, 11));
        }
    }

    [Fact]
    public void GroupsThatDoNotDivideChannelsAreRejected()
    {
        var e = Assert.Throws<ArgumentException>(() => Conv2dKernels.Forward(new float[1 * 3 * 4 * 4], 1, 3, 4, 4,
            new float[4 * 3 * 9], 4, 3, 3, [], 1, 1, 0, 0, 1, 1, 2, new float[4 * 4]));
        Assert.Contains("Conv2d", e.Message);
        Assert.Contains("groups", e.Message);
    }

    [Fact]
    public void WrongOutputLengthIsRejectedWithShapes()
    {
        var e = Assert.Throws<ArgumentException>(() => Conv2dKernels.Forward(new float[2 * 3 * 4 * 4], 2, 3, 4, 4,
            new float[5 * 3 * 9], 5, 3, 3, [], 1, 1, 0, 0, 1, 1, 1, new float[2 * 5 * 3]));
        Assert.Equal("output", e.ParamName);
        Assert.Contains("[2, 5, 2, 2]", e.Message);
    }

    private static void Check(int[] p, double tol, int seed)
    {
        var conv = new ConvCase(p, seed);
        var (y, dx, dw, db) = conv.Reference();

        var yF = new double[y.Length];
        var dxF = new double[dx.Length];
        var dwF = new double[dw.Length];
        var dbF = new double[db.Length];
        if (tol > 1e-9)
        {
            RunFloat(conv, yF, dxF, dwF, dbF);
        }
        else
        {
            RunDouble(conv, yF, dxF, dwF, dbF);
        }

        AssertClose(y, yF, tol, "forward");
        AssertClose(dx, dxF, tol, "backward input");
        AssertClose(dw, dwF, tol, "backward weight");
        AssertClose(db, dbF, tol, "backward bias");
    }

    private static void RunFloat(ConvCase t, double[] y, double[] dx, double[] dw, double[] db)
    {
        float[] x = Floats(t.X), w = Floats(t.Wt), b = Floats(t.Bias), dy = Floats(t.Dy);
        float[] yo = Nans(y.Length), dxo = Nans(dx.Length), dwo = Nans(dw.Length), dbo = Nans(db.Length);
        var p = t.P;
        Conv2dKernels.Forward(x, p[0], p[1], p[2], p[3], w, p[4], p[5], p[6], b, p[7], p[8], p[9], p[10], p[11], p[12], p[13], yo);
        Conv2dKernels.BackwardInput(dy, p[0], p[1], p[2], p[3], w, p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12], p[13], dxo);
        Conv2dKernels.BackwardWeight(x, p[0], p[1], p[2], p[3], dy, p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12], p[13], dwo, dbo);
        Copy(yo, y);
        Copy(dxo, dx);
        Copy(dwo, dw);
        Copy(dbo, db);
    }

    private static void RunDouble(ConvCase t, double[] y, double[] dx, double[] dw, double[] db)
    {
        Array.Fill(y, double.NaN);
        Array.Fill(dx, double.NaN);
        Array.Fill(dw, double.NaN);
        Array.Fill(db, double.NaN);
        var p = t.P;
        Conv2dKernels.Forward(t.X, p[0], p[1], p[2], p[3], t.Wt, p[4], p[5], p[6], t.Bias, p[7], p[8], p[9], p[10], p[11], p[12], p[13], y);
        Conv2dKernels.BackwardInput(t.Dy, p[0], p[1], p[2], p[3], t.Wt, p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12], p[13], dx);
        Conv2dKernels.BackwardWeight(t.X, p[0], p[1], p[2], p[3], t.Dy, p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12], p[13], dw, db);
    }

    private static float[] Floats(double[] v) => Array.ConvertAll(v, d => (float)d);

    private static float[] Nans(int n)
    {
        var a = new float[n];
        Array.Fill(a, float.NaN);
        return a;
    }

    private static void Copy(float[] src, double[] dst)
    {
        for (int i = 0; i < src.Length; i++)
        {
            dst[i] = src[i];
        }
    }

    private static void AssertClose(double[] expected, double[] actual, double tol, string what)
    {
        double scale = 1 + expected.Max(Math.Abs);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol * scale,
                $"{what}[{i}]: got {actual[i]}, expected {expected[i]}");
        }
    }

    private static void WithThreads(int threads, Action action)
    {
        int saved = Parallelism.NumThreads;
        Parallelism.NumThreads = threads;
        try
        {
            action();
        }
        finally
        {
            Parallelism.NumThreads = saved;
        }
    }
}
