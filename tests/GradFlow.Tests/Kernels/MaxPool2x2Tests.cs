using GradFlow.Kernels;

namespace GradFlow.Tests.Kernels;

/// <summary>The 2x2 / stride 2 max-pool fast path against a plain reference, with ties and NaNs.</summary>
public class MaxPool2x2Tests
{
    [Theory]
    [InlineData(1, 1, 2, 2)]
    [InlineData(2, 3, 7, 33)]
    [InlineData(1, 2, 3, 1023)]
    [InlineData(1, 1, 5, 17)]
    [InlineData(2, 1, 4, 18)]
    [InlineData(3, 2, 26, 26)]
    [InlineData(2, 2, 11, 11)]
    [InlineData(1, 3, 9, 15)]
    [InlineData(2, 2, 3, 8)]
    [InlineData(1, 2, 7, 9)]
    [InlineData(1, 1, 2, 7)]
    public void MatchesTheReferenceWithTiesAndNaNs(int n, int c, int h, int w)
    {
        var r = new Random(h * w);
        var x = new float[n * c * h * w];
        for (int i = 0; i < x.Length; i++)
            x[i] = r.Next(10) switch { 0 => float.NaN, < 4 => 1f, _ => (float)r.Next(-3, 4) }; // many ties
        int oh = h / 2, ow = w / 2;
        var y = new float[n * c * oh * ow];
        var idx = new int[y.Length];
        Pool2dKernels.MaxPool2dForward(x, n, c, h, w, 2, 2, 2, 2, 0, 0, y, idx);
        for (int p = 0, o = 0; p < n * c; p++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++, o++)
                {
                    float max = float.NegativeInfinity;
                    int best = 0;
                    foreach (var (dy, dx) in new[] { (0, 0), (0, 1), (1, 0), (1, 1) })
                    {
                        int at = ((2 * oy + dy) * w) + (2 * ox) + dx;
                        float v = x[(p * h * w) + at];
                        if (v > max || float.IsNaN(v) || (dy, dx) == (0, 0)) { max = v; best = at; }
                    }
                    Assert.Equal(best, idx[o]);
                    Assert.Equal(max, y[o]);
                }

        // Backward scatters each output gradient to its winner; the double path picks the same winners.
        var gy = new float[y.Length];
        for (int i = 0; i < gy.Length; i++) gy[i] = i + 1;
        var gx = new float[x.Length];
        Array.Fill(gx, float.NaN); // every input must be written, also the odd last row and column no window covers
        Pool2dKernels.MaxPool2dBackward(gy, idx, n, c, h, w, 2, 2, 2, 2, 0, 0, gx);
        var expected = new float[x.Length];
        for (int o = 0; o < y.Length; o++) expected[((o / (oh * ow)) * h * w) + idx[o]] += gy[o];
        Assert.Equal(expected, gx);

        var yd = new double[y.Length];
        var idxd = new int[y.Length];
        Pool2dKernels.MaxPool2dForward(Array.ConvertAll(x, v => (double)v), n, c, h, w, 2, 2, 2, 2, 0, 0, yd, idxd);
        Assert.Equal(idx, idxd);
    }

    [Theory]
    [InlineData(2, 3, 16, 16)]
    [InlineData(1, 2, 9, 17)]
    [InlineData(2, 2, 26, 26)]
    [InlineData(1, 1, 5, 33)]
    [InlineData(1, 3, 4, 40)]
    [InlineData(2, 2, 11, 11)]
    [InlineData(1, 2, 8, 9)]
    [InlineData(1, 1, 6, 15)]
    public void VectorBackwardMatchesTheScalarBitForBit(int n, int c, int h, int w)
    {
        // Gradients with NaN, -0, infinities and subnormals move as their bits; every input is written (the NaN fill).
        var g = Pool2dGeometry.Create("MaxPool2d backward", n, c, h, w, 2, 2, 2, 2, 0, 0);
        Assert.True(!System.Runtime.Intrinsics.X86.Sse2.IsSupported || Pool2dVector.BackwardApplies(g));
        var r = new Random(h * 31 + w);
        var gy = new float[n * c * g.OH * g.OW];
        var idx = new int[gy.Length];
        float[] special = [float.NaN, -0f, float.PositiveInfinity, float.NegativeInfinity, float.Epsilon, -1e-40f];
        for (int p = 0, o = 0; p < n * c; p++)
            for (int oy = 0; oy < g.OH; oy++)
                for (int ox = 0; ox < g.OW; ox++, o++)
                {
                    gy[o] = r.Next(4) == 0 ? special[r.Next(special.Length)] : (float)r.NextDouble() - 0.5f;
                    idx[o] = (2 * oy * w) + (2 * ox) + r.Next(4) switch { 0 => 0, 1 => 1, 2 => w, _ => w + 1 };
                }

        var scalar = new float[n * c * h * w];
        var vector = new float[scalar.Length];
        Array.Fill(scalar, float.NaN);
        Array.Fill(vector, float.NaN);
        Assert.True(Pool2dCore<float>.MaxBackward2x2Scalar(g, gy, idx, scalar));
        Pool2dKernels.MaxPool2dBackward(gy, idx, n, c, h, w, 2, 2, 2, 2, 0, 0, vector);
        Assert.Equal(scalar.Select(BitConverter.SingleToInt32Bits), vector.Select(BitConverter.SingleToInt32Bits));
    }

    [Theory]
    [InlineData(5, 17)]
    [InlineData(4, 9)]
    public void BackwardScattersIndicesOutsideTheirWindow(int h, int w)
    {
        // Indices the 2x2 write-once path cannot express (all name the plane's first element): the scatter result.
        int oh = h / 2, ow = w / 2;
        var gy = new float[2 * oh * ow];
        for (int i = 0; i < gy.Length; i++) gy[i] = 1;
        var gx = new float[2 * h * w];
        Array.Fill(gx, float.NaN);
        Pool2dKernels.MaxPool2dBackward(gy, new int[gy.Length], 1, 2, h, w, 2, 2, 2, 2, 0, 0, gx);
        for (int p = 0; p < 2; p++)
            for (int i = 0; i < h * w; i++)
                Assert.Equal(i == 0 ? oh * ow : 0f, gx[(p * h * w) + i]);
    }
}
