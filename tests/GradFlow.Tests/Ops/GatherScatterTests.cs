namespace GradFlow.Tests.Ops;

/// <summary>
/// Gather, Scatter and ScatterAdd along the last dim take typed row loops when the index covers every other dim
/// (MaxPool2d's createGraph backward); against a per-element reference, bit for bit, with negative and repeated
/// indices (ScatterAdd sums repeats in index order), and with an index smaller in another dim (the general walk).
/// </summary>
public class GatherScatterTests
{
    private static readonly long[] Index = [0, -1, 2, 2, 4, 1, -5, 3, 3, 3, 0, 1];

    [Theory]
    [InlineData(DType.Float32, 3)]
    [InlineData(DType.Float64, 3)]
    [InlineData(DType.Int64, 3)]
    [InlineData(DType.Float32, 2)] // index rows fewer than the target's: the general path
    public void LastDim_MatchesThePerElementReference(DType dtype, int indexRows)
    {
        var gen = new Generator(3);
        var values = Enumerable.Range(0, 15).Select(_ => Math.Round(gen.NextNormal() * 1000) / 7).ToArray();
        var x = Tensor.FromArray(values, 3, 5).To(dtype);
        var src = Tensor.FromArray(values[..(indexRows * 4)].Select(v => v * 3.1).ToArray(), indexRows, 4).To(dtype);
        var idx = Tensor.FromArray(Index[..(indexRows * 4)], indexRows, 4);
        var xs = x.ToDoubleArray();
        var ss = src.ToDoubleArray();

        var gathered = x.Gather(1, idx).ToDoubleArray();
        var added = x.ScatterAdd(1, idx, src).ToDoubleArray();
        var written = x.Scatter(1, idx, src).ToDoubleArray();

        var refAdded = (double[])xs.Clone();
        var refWritten = (double[])xs.Clone();
        for (int r = 0; r < indexRows; r++)
            for (int j = 0; j < 4; j++)
            {
                int p = (r * 4) + j, k = (int)((Index[p] + 5) % 5);
                Assert.Equal(xs[(r * 5) + k], gathered[p]);
                refAdded[(r * 5) + k] = Round(dtype, refAdded[(r * 5) + k] + ss[p]);
                refWritten[(r * 5) + k] = ss[p];
            }
        Assert.Equal(refAdded, added);
        Assert.Equal(refWritten, written);
    }

    private static double Round(DType dtype, double x) => dtype == DType.Float32 ? (float)x : x;
}
