using GradFlow.Kernels;

namespace GradFlow.Tests.Kernels;

/// <summary>The write-once fold of narrow rows against the clear-then-add fold, bit for bit.</summary>
public class Im2ColTests
{
    // c, h, w, kh, kw, dilH, dilW (no padding, stride 1, rows of at most 16: the narrow rule)
    [Theory]
    [InlineData(32, 13, 13, 3, 3, 1, 1)]
    [InlineData(3, 11, 13, 3, 3, 2, 2)]
    [InlineData(4, 7, 16, 2, 3, 2, 1)]
    [InlineData(2, 9, 5, 4, 1, 2, 1)]
    [InlineData(5, 6, 8, 1, 1, 1, 1)]
    [InlineData(2, 4, 3, 2, 2, 1, 1)]
    public unsafe void NarrowFoldMatchesFoldAddBitForBit(int c, int h, int w, int kh, int kw, int dilH, int dilW)
    {
        var g = Conv2dGeometry.Create("Conv2d", 1, c, h, w, 1, kh, kw, 1, 1, 0, 0, dilH, dilW, 1);
        bool vectors = System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated || System.Runtime.Intrinsics.X86.Avx512F.IsSupported;
        Assert.Equal(vectors, Im2Col.FoldsNarrowRows(g));
        if (!vectors) return; // no narrow path without vectors: the rule above is the assertion
        var r = new Random(c * 100 + w);
        int slack = Im2Col.NarrowSlack, n = g.ColRows * g.ColCols;
        var col = new float[n + (2 * slack)];
        for (int i = 0; i < col.Length; i++) col[i] = i < slack || i >= slack + n ? float.NaN : r.Next(8) == 0 ? -0f : (float)r.NextDouble() - 0.5f;
        var narrow = new float[c * h * w];
        var added = new float[c * h * w];
        Array.Fill(narrow, float.NaN); // every element must be written
        fixed (float* cp = col, np = narrow, ap = added)
        {
            Im2Col.FoldNarrow(g, cp + slack, np, np + narrow.Length);
            Im2Col.FoldAdd(g, cp + slack, ap);
        }
        Assert.Equal(added.Select(BitConverter.SingleToInt32Bits), narrow.Select(BitConverter.SingleToInt32Bits));
    }
}
