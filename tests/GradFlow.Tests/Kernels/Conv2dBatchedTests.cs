using GradFlow.Kernels;

namespace GradFlow.Tests.Kernels;

/// <summary>The batched-columns conv path against the seven-loop reference, the per-image path, thread counts and chunkings.</summary>
[Collection(ParallelismCollection.Name)]
public unsafe class Conv2dBatchedTests
{
    // n, c, h, w, outC, kh, kw, strideH, strideW, padH, padW, dilH, dilW, groups: stride, padding, dilation, groups,
    // batch 1, odd planes whose columns do not fill a SIMD width, and the cnn bench's conv2 (last).
    public static TheoryData<int[]> Configs => new()
    {
        new[] { 3, 4, 9, 7, 6, 3, 2, 2, 1, 1, 1, 1, 2, 2 },
        new[] { 2, 3, 11, 13, 5, 3, 3, 1, 1, 0, 0, 2, 2, 1 },
        new[] { 4, 8, 8, 8, 8, 3, 3, 2, 2, 1, 1, 1, 1, 4 },
        new[] { 5, 2, 7, 5, 3, 5, 3, 3, 2, 2, 1, 1, 1, 1 },
        new[] { 1, 6, 6, 9, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1 },
        new[] { 3, 5, 9, 8, 3, 2, 1, 1, 1, 0, 0, 3, 1, 1 },
        new[] { 3, 32, 13, 13, 64, 3, 3, 1, 1, 0, 0, 1, 1, 1 },
    };

    [Theory]
    [MemberData(nameof(Configs))]
    public void FloatMatchesTheReferenceForEveryChunkingAndThreadCount(int[] p)
    {
        var t = new ConvCase(p, 3);
        var (y, dx, _, _) = t.Reference();
        var g = Geometry(p);
        float[] x = F(t.X), w = F(t.Wt), b = F(t.Bias), dy = F(t.Dy);
        foreach (int chunk in Chunkings(g))
        {
            foreach (int threads in new[] { 1, 2 })
            {
                var (yb, dxb) = Batched(g, x, w, b, dy, chunk, threads);
                Close(y, Array.ConvertAll(yb, v => (double)v), 2e-5, $"forward, chunk {chunk}, {threads} threads");
                Close(dx, Array.ConvertAll(dxb, v => (double)v), 2e-5, $"input gradient, chunk {chunk}, {threads} threads");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Configs))]
    public void DoubleMatchesTheReference(int[] p)
    {
        var t = new ConvCase(p, 4);
        var (y, dx, _, _) = t.Reference();
        var g = Geometry(p);
        foreach (int chunk in Chunkings(g))
        {
            var (yb, dxb) = Batched(g, t.X, t.Wt, t.Bias, t.Dy, chunk, 2);
            Close(y, yb, 1e-12, $"forward, chunk {chunk}");
            Close(dx, dxb, 1e-12, $"input gradient, chunk {chunk}");
        }
    }

    // Same micro-kernel, same depth split, same bias-as-C: each output is the same sum in the same order, so the bits
    // agree with the per-image path and do not move with the chunking or the thread count (conv2 of the cnn bench,
    // where both paths run the packed GEMM).
    [Fact]
    public void TheCnnConv2ShapeGivesThePerImageBits()
    {
        int[] p = [5, 32, 13, 13, 64, 3, 3, 1, 1, 0, 0, 1, 1, 1];
        var t = new ConvCase(p, 6);
        var g = Geometry(p);
        float[] x = F(t.X), w = F(t.Wt), b = F(t.Bias), dy = F(t.Dy);
        float[] y = new float[g.OutputLength], dx = new float[g.InputLength];
        Conv2dKernels.ForwardCore<float>(x, w, b, y, g, allowBatched: false);
        Conv2dKernels.BackwardInputCore<float>(dy, w, dx, g, allowBatched: false);
        Assert.True(Conv2dBatching.Applies(g));
        foreach (int chunk in Chunkings(g))
        {
            foreach (int threads in new[] { 1, 2 })
            {
                var (yb, dxb) = Batched(g, x, w, b, dy, chunk, threads);
                Assert.Equal(y, yb);
                Assert.Equal(dx, dxb);
            }
        }
    }

    [Theory]
    [InlineData(64, 32, 13, 64, 3, 0, true)]   // the cnn's conv2: 11x11 planes, 288 rows
    [InlineData(1, 32, 13, 64, 3, 0, false)]   // one image
    [InlineData(64, 1, 28, 32, 3, 0, false)]   // the cnn's conv1: 9 rows
    [InlineData(64, 16, 16, 32, 3, 1, false)]  // 16x16 planes fill whole tiles
    [InlineData(64, 64, 8, 128, 1, 0, false)]  // pointwise: no unfold
    public void TheRuleChoosesByShape(int n, int c, int hw, int outC, int k, int pad, bool expected)
    {
        var g = Conv2dGeometry.Create("Conv2d", n, c, hw, hw, outC, k, k, 1, 1, pad, pad, 1, 1, 1);
        Assert.Equal(expected, Conv2dBatching.Applies(g));
    }

    [Theory]
    [InlineData(64, 262144)]
    [InlineData(64, 34848)]
    [InlineData(7, 69696)]
    [InlineData(1, 1)]
    public void ChunksCoverTheBatchEvenlyWithinTheBound(int n, int maxElements)
    {
        var g = Geometry([n, 32, 13, 13, 64, 3, 3, 1, 1, 0, 0, 1, 1, 1]);
        int saved = Conv2dBatched<float>.MaxChunkElements;
        Conv2dBatched<float>.MaxChunkElements = maxElements;
        try
        {
            int chunks = Conv2dBatched<float>.Chunks(g), per = Conv2dBatched<float>.ImagesPerChunk(g);
            Assert.True(per == 1 || (long)per * g.ColRows * g.ColCols <= maxElements, $"{per} images of {g.ColRows * g.ColCols} exceed {maxElements}");
            Assert.Equal(0, Conv2dBatched<float>.ChunkStart(g, chunks, 0));
            Assert.Equal(n, Conv2dBatched<float>.ChunkStart(g, chunks, chunks));
            for (int c = 0; c < chunks; c++)
            {
                int size = Conv2dBatched<float>.ChunkStart(g, chunks, c + 1) - Conv2dBatched<float>.ChunkStart(g, chunks, c);
                Assert.InRange(size, Math.Max(1, per - 1), per);
            }
        }
        finally
        {
            Conv2dBatched<float>.MaxChunkElements = saved;
        }
    }

    private static Conv2dGeometry Geometry(int[] p) =>
        Conv2dGeometry.Create("Conv2d", p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12], p[13]);

    // One image per chunk, two (a shorter last chunk when N is odd), and the default.
    private static int[] Chunkings(in Conv2dGeometry g)
    {
        int perImage = Math.Max(g.ColRows, g.OutPerGroup) * g.ColCols;
        return [perImage, 2 * perImage, Conv2dBatched<float>.MaxChunkElements];
    }

    private static (T[] Y, T[] Dx) Batched<T>(Conv2dGeometry g, T[] x, T[] w, T[] b, T[] dy, int chunk, int threads)
        where T : unmanaged, System.Numerics.INumber<T>
    {
        T[] y = Nans<T>(g.OutputLength), dx = Nans<T>(g.InputLength);
        int saved = Conv2dBatched<T>.MaxChunkElements;
        Conv2dBatched<T>.MaxChunkElements = chunk;
        try
        {
            ParallelismCollection.WithThreads(threads, () =>
            {
                fixed (T* px = x, pw = w, pb = b, pdy = dy, py = y, pdx = dx)
                {
                    Conv2dBatched<T>.Forward(g, px, pw, pb, py);
                    Conv2dBatched<T>.BackwardInput(g, pdy, pw, pdx);
                }
            });
        }
        finally
        {
            Conv2dBatched<T>.MaxChunkElements = saved;
        }

        return (y, dx);
    }

    private static T[] Nans<T>(int n) where T : unmanaged, System.Numerics.INumber<T>
    {
        var a = new T[n];
        Array.Fill(a, T.CreateChecked(double.NaN));
        return a;
    }

    private static float[] F(double[] v) => Array.ConvertAll(v, d => (float)d);

    private static void Close(double[] expected, double[] actual, double tol, string what)
    {
        double scale = 1 + expected.Max(Math.Abs);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol * scale, $"{what}[{i}]: got {actual[i]}, expected {expected[i]}");
        }
    }
}
