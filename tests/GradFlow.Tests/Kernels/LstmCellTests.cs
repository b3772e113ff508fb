using GradFlow.Kernels;

namespace GradFlow.Tests.Kernels;

/// <summary>The fused LSTM cell against the formula evaluated one element at a time, on odd sizes and padded rows.</summary>
public class LstmCellTests
{
    private static double Sig(double x) => 1 / (1 + Math.Exp(-x));

    private static float[] Random(int n, int seed, double scale = 2)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)((r.NextDouble() * 2 - 1) * scale)).ToArray();
    }

    [Theory]
    [InlineData(1, 1, 0)]
    [InlineData(3, 7, 5)]
    [InlineData(2, 33, 0)]
    [InlineData(5, 64, 3)]
    public void ForwardAndBackwardMatchTheFormula(int batch, int hidden, int pad)
    {
        int ld = 4 * hidden + pad, n = batch * hidden, plane = n + 2; // padded rows and planes: not contiguous
        var pre = Random(batch * ld, 1);
        var cPrev = Random(n, 2);
        var gates = new float[LstmCell.Planes * plane];
        var c = new float[n];
        var h = new float[n];
        LstmCell.Forward<float>(batch, hidden, pre, ld, cPrev, gates, plane, c, h);

        var dh = Random(n, 3, 1);
        var dc = Random(n, 4, 1);
        var dcIn = (float[])dc.Clone();
        var dPre = new float[batch * ld];
        var dBias = Random(4 * hidden, 5, 1);
        var dBiasIn = (float[])dBias.Clone();
        LstmCell.Backward<float>(batch, hidden, dh, dc, gates, plane, cPrev, dPre, ld, dBias);

        var dBiasRef = dBiasIn.Select(v => (double)v).ToArray();
        for (int b = 0; b < batch; b++)
            for (int j = 0; j < hidden; j++)
            {
                int r = b * ld, k = b * hidden + j;
                double i = Sig(pre[r + j]), f = Sig(pre[r + hidden + j]), g = Math.Tanh(pre[r + 2 * hidden + j]), o = Sig(pre[r + 3 * hidden + j]);
                double cn = f * cPrev[k] + i * g, tc = Math.Tanh(cn);
                Near(cn, c[k]);
                Near(o * tc, h[k]);
                Near(i, gates[k]);
                Near(f, gates[plane + k]);
                Near(o, gates[2 * plane + k]);
                Near(g, gates[3 * plane + k]);
                Near(tc, gates[4 * plane + k]);

                double dct = dcIn[k] + dh[k] * o * (1 - tc * tc);
                double[] d = [dct * g * i * (1 - i), dct * cPrev[k] * f * (1 - f), dct * i * (1 - g * g), dh[k] * tc * o * (1 - o)];
                for (int q = 0; q < 4; q++)
                {
                    Near(d[q], dPre[r + q * hidden + j]);
                    dBiasRef[q * hidden + j] += d[q];
                }
                Near(dct * f, dc[k]);
            }
        for (int j = 0; j < 4 * hidden; j++) Near(dBiasRef[j], dBias[j]);
        for (int b = 0; b < batch; b++)
            for (int p = 4 * hidden; p < ld; p++) Assert.Equal(0f, dPre[b * ld + p]); // the padding is not written
    }

    [Fact]
    public void BackwardWithoutBiasLeavesItAlone()
    {
        var gates = new float[LstmCell.Planes * 3];
        LstmCell.Forward<float>(1, 3, Random(12, 1), 12, Random(3, 2), gates, 3, new float[3], new float[3]);
        var dPre = new float[12];
        LstmCell.Backward<float>(1, 3, Random(3, 3), new float[3], gates, 3, Random(3, 2), dPre, 12, default);
        Assert.Contains(dPre, v => v != 0);
    }

    [Fact]
    public void ShortSpansAreRejected()
    {
        var ex = Assert.Throws<ArgumentException>(() =>
            LstmCell.Forward<float>(2, 4, new float[31], 16, new float[8], new float[5 * 8], 8, new float[8], new float[8]));
        Assert.Contains("too short", ex.Message);
    }

    private static void Near(double expected, float actual) =>
        Assert.True(Math.Abs(expected - actual) <= 2e-6 + 2e-6 * Math.Abs(expected), $"expected {expected}, got {actual}");
}
