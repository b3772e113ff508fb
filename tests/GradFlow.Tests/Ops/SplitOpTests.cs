using static GradFlow.Tests.TestUtil;

namespace GradFlow.Tests.Ops;

/// <summary>Split/Chunk as one multi-output op whose backward concatenates the pieces' gradients.</summary>
public class SplitOpTests
{
    [Fact]
    public void OneNodeForAllPiecesAndGradChecksWithUnusedPieces()
    {
        var x = R64(1, 3, 7);
        var parts = x.Split([2, 1, 4], 1);
        Assert.Same(parts[0].GradFn, parts[2].GradFn);
        Assert.Equal([3, 4], parts[2].Shape.ToArray());
        Tensor F(Tensor[] t) { var p = t[0].Chunk(3, 1); return p[0].Sin() * p[1].Exp(); } // pieces 3, 3, 1: the last unused
        Assert.True(GradCheck.Check(F, [x]));
        Assert.True(GradCheck.CheckSecondOrder(F, [x]));
    }

    [Fact]
    public void PiecesAreViewsOfTheInput()
    {
        var x = Tensor.Arange(12).Reshape(3, 4);
        var parts = x.Split(3, 1);
        Assert.Equal([3.0, 7.0, 11.0], parts[1].ToDoubleArray());
        Assert.Equal([0.0, 1.0, 2.0, 4.0, 5.0, 6.0, 8.0, 9.0, 10.0], parts[0].ToDoubleArray());
    }
}
