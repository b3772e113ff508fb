using GradFlow.Kernels;

namespace GradFlow.Tests.Kernels;

/// <summary>The layer-norm kernels against a plain double-precision evaluation of the same formulas.</summary>
public class LayerNormKernelTests
{
    public static TheoryData<int, int> Sizes => new() { { 1, 1 }, { 3, 7 }, { 2, 33 }, { 5, 128 }, { 1, 130 } };

    private static float[] Values(int n, int seed, float scale, float shift = 0)
    {
        var r = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = ((float)((r.NextDouble() * 2) - 1) * scale) + shift;
        return v;
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void ForwardAndBackwardMatchTheFormula(int rows, int n)
    {
        const float eps = 1e-5f;
        // A shifted input: a one-pass E[x^2] - mean^2 would lose the variance in float32.
        var x = Values(rows * n, 1, 2, 50);
        var w = Values(n, 2, 1, 1);
        var b = Values(n, 3, 1);
        var g = Values(rows * n, 4, 1);
        var y = new float[rows * n];
        var mean = new float[rows];
        var rstd = new float[rows];
        LayerNorm.Forward<float>(x, w, b, y, mean, rstd, rows, n, eps);
        var dx = new float[rows * n];
        var dw = new float[n];
        var db = new float[n];
        LayerNorm.Backward<float>(g, x, mean, rstd, w, dx, dw, db, rows, n);

        var edw = new double[n];
        var edb = new double[n];
        for (int r = 0; r < rows; r++)
        {
            double m = 0, v = 0;
            for (int i = 0; i < n; i++) m += x[(r * n) + i];
            m /= n;
            for (int i = 0; i < n; i++) v += (x[(r * n) + i] - m) * (x[(r * n) + i] - m);
            double rs = 1 / Math.Sqrt((v / n) + eps);
            Assert.Equal(m, mean[r], 1e-4);
            Assert.Equal(rs, rstd[r], rs * 1e-4);
            double a = 0, c = 0;
            for (int i = 0; i < n; i++)
            {
                double xh = (x[(r * n) + i] - m) * rs, gw = g[(r * n) + i] * (double)w[i];
                Assert.Equal((xh * w[i]) + b[i], y[(r * n) + i], 1e-4);
                a += gw;
                c += gw * xh;
                edw[i] += g[(r * n) + i] * xh;
                edb[i] += g[(r * n) + i];
            }
            for (int i = 0; i < n; i++)
            {
                double xh = (x[(r * n) + i] - m) * rs, gw = g[(r * n) + i] * (double)w[i];
                Assert.Equal(rs * (gw - (a / n) - (xh * c / n)), dx[(r * n) + i], 1e-3 * Math.Max(1, rs));
            }
        }
        for (int i = 0; i < n; i++)
        {
            Assert.Equal(edw[i], dw[i], 1e-4);
            Assert.Equal(edb[i], db[i], 1e-4);
        }
    }

    [Fact]
    public void WithoutAffineAndOnlySomeGradients()
    {
        int rows = 3, n = 37;
        var x = Values(rows * n, 5, 3);
        var g = Values(rows * n, 6, 1);
        var y = new float[rows * n];
        var mean = new float[rows];
        var rstd = new float[rows];
        LayerNorm.Forward<float>(x, default, default, y, mean, rstd, rows, n, 1e-5f);
        var dxFull = new float[rows * n];
        var dw = new float[n];
        LayerNorm.Backward<float>(g, x, mean, rstd, default, dxFull, dw, default, rows, n);
        var dxOnly = new float[rows * n];
        LayerNorm.Backward<float>(g, x, mean, rstd, default, dxOnly, default, default, rows, n);
        Assert.Equal(dxFull, dxOnly);
        for (int r = 0; r < rows; r++)
        {
            double s = 0, s2 = 0;
            for (int i = 0; i < n; i++) { s += y[(r * n) + i]; s2 += y[(r * n) + i] * (double)y[(r * n) + i]; }
            Assert.Equal(0, s / n, 1e-5);
            Assert.Equal(1, s2 / n, 1e-3);
        }
    }
}
