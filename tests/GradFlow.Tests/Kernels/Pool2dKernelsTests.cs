using GradFlow.Kernels;

namespace GradFlow.Tests.Kernels;

public class Pool2dKernelsTests
{
    // n, c, h, w, kh, kw, strideH, strideW, padH, padW
    public static TheoryData<int[]> Configs => new()
    {
        new[] { 2, 3, 7, 9, 3, 3, 2, 2, 1, 1 },
        new[] { 1, 2, 8, 8, 2, 2, 2, 2, 0, 0 },
        new[] { 3, 1, 5, 11, 3, 2, 1, 3, 1, 1 },
        new[] { 1, 4, 13, 6, 5, 3, 2, 1, 2, 0 },
    };

    [Theory]
    [MemberData(nameof(Configs))]
    public void MaxPoolMatchesDirectLoops(int[] p)
    {
        var t = new PoolCase(p);
        var (y, idx, dx) = t.MaxReference();
        var yo = new double[y.Length];
        var io = new int[y.Length];
        var dxo = new double[dx.Length];
        Array.Fill(dxo, double.NaN);
        Pool2dKernels.MaxPool2dForward(t.X, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], yo, io);
        Pool2dKernels.MaxPool2dBackward(t.Dy, io, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], dxo);
        Assert.Equal(y, yo);
        Assert.Equal(idx, io);
        Assert.Equal(dx, dxo);

        var yf = new float[y.Length];
        Pool2dKernels.MaxPool2dForward(Array.ConvertAll(t.X, v => (float)v), p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], yf, io);
        Assert.Equal(idx, io);
        Assert.Equal(Array.ConvertAll(y, v => (float)v), yf);
    }

    [Theory]
    [MemberData(nameof(Configs))]
    public void AvgPoolMatchesDirectLoops(int[] p)
    {
        var t = new PoolCase(p);
        var (y, dx) = t.AvgReference();
        var yo = new double[y.Length];
        var dxo = new double[dx.Length];
        Pool2dKernels.AvgPool2dForward(t.X, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], yo);
        Pool2dKernels.AvgPool2dBackward(t.Dy, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], dxo);
        for (int i = 0; i < y.Length; i++)
        {
            Assert.Equal(y[i], yo[i], 12);
        }

        for (int i = 0; i < dx.Length; i++)
        {
            Assert.Equal(dx[i], dxo[i], 12);
        }
    }

    [Fact]
    public void AvgPoolCountsPaddingInTheDivisor()
    {
        // 2x2 windows, stride 1, padding 1 over a 2x2 input: the corner window holds one real value of four.
        float[] x = [4, 8, 12, 16];
        var y = new float[9];
        Pool2dKernels.AvgPool2dForward(x, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1, y);
        Assert.Equal([1f, 3f, 2f, 4f, 10f, 6f, 3f, 7f, 4f], y);
    }

    [Fact]
    public void MaxPoolPropagatesNaN()
    {
        float[] x = [1, float.NaN, 3, 2];
        var y = new float[1];
        var idx = new int[1];
        Pool2dKernels.MaxPool2dForward(x, 1, 1, 2, 2, 2, 2, 2, 2, 0, 0, y, idx);
        Assert.True(float.IsNaN(y[0]));
        Assert.Equal(1, idx[0]);
    }

    [Fact]
    public void BadIndexIsRejected()
    {
        var e = Assert.Throws<ArgumentException>(() => Pool2dKernels.MaxPool2dBackward(
            new float[1], [4], 1, 1, 2, 2, 2, 2, 2, 2, 0, 0, new float[4]));
        Assert.Contains("MaxPool2d", e.Message);
    }

    [Fact]
    public void PaddingOverHalfTheKernelIsRejected()
    {
        var e = Assert.Throws<ArgumentException>(() => Pool2dKernels.AvgPool2dForward(
            new float[16], 1, 1, 4, 4, 2, 2, 1, 1, 2, 0, new float[16]));
        Assert.Contains("AvgPool2d", e.Message);
        Assert.Contains("padding", e.Message);
    }

    private sealed class PoolCase
    {
        private readonly int n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow;

        public PoolCase(int[] p)
        {
            (n, c, h, w, kh, kw, sh, sw, ph, pw) = (p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9]);
            oh = ((h + (2 * ph) - kh) / sh) + 1;
            ow = ((w + (2 * pw) - kw) / sw) + 1;
            var random = new Random(n + (c * 10) + (h * 100));
            X = Enumerable.Range(0, n * c * h * w).Select(_ => random.NextDouble()).ToArray();
            Dy = Enumerable.Range(0, n * c * oh * ow).Select(_ => random.NextDouble() - 0.5).ToArray();
        }

        public double[] X { get; }

        public double[] Dy { get; }

        public (double[] Y, int[] Idx, double[] Dx) MaxReference()
        {
            var y = new double[Dy.Length];
            var idx = new int[Dy.Length];
            var dx = new double[X.Length];
            Windows((plane, o, iy, ix, _) =>
            {
                double v = X[(plane * h * w) + (iy * w) + ix];
                if (double.IsNegativeInfinity(y[o]) || v > y[o])
                {
                    (y[o], idx[o]) = (v, (iy * w) + ix);
                }
            }, o => y[o] = double.NegativeInfinity);
            for (int o = 0; o < y.Length; o++)
            {
                dx[((o / (oh * ow)) * h * w) + idx[o]] += Dy[o];
            }

            return (y, idx, dx);
        }

        public (double[] Y, double[] Dx) AvgReference()
        {
            var y = new double[Dy.Length];
            var dx = new double[X.Length];
            Windows((plane, o, iy, ix, count) =>
            {
                y[o] += X[(plane * h * w) + (iy * w) + ix] / count;
                dx[(plane * h * w) + (iy * w) + ix] += Dy[o] / count;
            }, _ => { });
            return (y, dx);
        }

        // Visits every in-bounds input of every window; count is kh * kw clipped to the padded extent.
        private void Windows(Action<int, int, int, int, int> visit, Action<int> start)
        {
            for (int plane = 0; plane < n * c; plane++)
            {
                for (int oy = 0; oy < oh; oy++)
                {
                    for (int ox = 0; ox < ow; ox++)
                    {
                        int o = (plane * oh * ow) + (oy * ow) + ox;
                        start(o);
                        int rows = Math.Min(kh, h + ph - (oy * sh) + ph), cols = Math.Min(kw, w + pw - (ox * sw) + pw);
                        for (int ki = 0; ki < kh; ki++)
                        {
                            for (int kj = 0; kj < kw; kj++)
                            {
                                int iy = (oy * sh) - ph + ki, ix = (ox * sw) - pw + kj;
                                if (iy >= 0 && iy < h && ix >= 0 && ix < w)
                                {
                                    visit(plane, o, iy, ix, rows * cols);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
