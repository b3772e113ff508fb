namespace GradFlow.Tests.Ops;

using static TestUtil;

public class TensorIndexerTests
{
    private static Tensor Grid() => Tensor.Arange(24, DType.Float64).Reshape(2, 3, 4);

    [Fact]
    public void ReadsAreViewsWithPythonMeaning()
    {
        var x = Grid();
        var last = x[.., ^1];                      // x[:, -1]
        Assert.Equal([2, 4], last.Shape.ToArray());
        Assert.Equal([8, 9, 10, 11, 20, 21, 22, 23], last.ToDoubleArray());
        var part = x[0..1, 1..3, 0];               // x[0:1, 1:3, 0]
        Assert.Equal([1, 2], part.Shape.ToArray());
        Assert.Equal([4, 8], part.ToDoubleArray());
        Assert.Equal([2, 3], x[TensorIndex.Ellipsis, 1].Shape.ToArray());
        Assert.Equal([2, 1, 3, 4], x[.., TensorIndex.NewAxis].Shape.ToArray());
        Assert.Equal([0, 2], x[0, 0, TensorIndex.Slice(0, 4, step: 2)].ToDoubleArray());
        Assert.Equal(23, x[^1, ^1, ^1].Item());
        Assert.Equal(23, x[-1, -1, -1].Item());
        // Ranges clamp as Python slices do; an empty range gives an empty dim.
        Assert.Equal([2, 3, 4], x[..10].Shape.ToArray());
        Assert.Equal(0, x[.., 2..1].Size(1));
        // A view: it shares storage with x.
        Assert.True(ReferenceEquals(x[.., 0].Storage, x.Storage));
    }

    [Fact]
    public void WritesGoIntoTheTensorAndBroadcast()
    {
        var x = Tensor.Zeros([2, 3], DType.Float32);
        x[0] = 0.5;
        x[.., ^1] = Tensor.FromArray([7f, 8f], 2);
        x[1, 0..2] = Tensor.FromArray([1f, 2f], 2);
        Assert.Equal([0.5, 0.5, 7, 1, 2, 8], x.ToDoubleArray());
        int version = x.Version;
        x[.., 1] = Tensor.FromArray([9.0], 1); // float64 value converted, broadcast over the rows
        Assert.Equal(version + 1, x.Version);
        Assert.Equal([0.5, 9, 7, 1, 9, 8], x.ToDoubleArray());
        // Writing through a view reaches the tensor it views.
        var row = x[1];
        row[0] = -1.0;
        Assert.Equal(-1, x[1, 0].Item());
    }

    [Fact]
    public void BadIndicesNameTheDimTheIndexAndTheSize()
    {
        var x = Grid();
        var ex = Assert.Throws<ArgumentException>(() => x[0, 5]);
        Assert.Contains("index 5 is out of range for dim 1 of size 3", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => x[.., .., ^5]);
        Assert.Contains("index ^5 is out of range for dim 2 of size 4", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => x[0, 0, 0, 0]);
        Assert.Contains("4 indices for a tensor of shape [2, 3, 4]", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => x[TensorIndex.Ellipsis, 0, TensorIndex.Ellipsis]);
        Assert.Contains("only one Ellipsis", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => x[.., 0] = Tensor.Zeros([3], DType.Float64));
        Assert.Contains("shape [3] cannot be broadcast to the indexed part of shape [2, 4]", ex.Message);
        Assert.Throws<InvalidOperationException>(() => Tensor.Zeros([1], DType.Float32).Expand(3)[0] = 1.0);
    }

    [Fact]
    public void WritingIntoALeafThatRequiresGradIsRefusedUnlessGradIsOff()
    {
        var w = Tensor.Zeros([3], DType.Float32, requiresGrad: true);
        var ex = Assert.Throws<InvalidOperationException>(() => w[0] = 1.0);
        Assert.Contains("leaf", ex.Message);
        using (Autograd.NoGrad()) w[0] = 1.0;
        Assert.Equal(1, w[0].Item());
    }

    [Fact]
    public void WritingIntoAViewOfATensorThatRequiresGradIsRefused()
    {
        var a = R64(1, 3, 4);
        var h = a * 2.0;
        var view = h[0];
        var ex = Assert.Throws<InvalidOperationException>(() => view[1] = 0.0);
        Assert.Contains("is a view", ex.Message);
    }

    [Fact]
    public void AWriteIntoATensorAutogradSavedFailsAtBackward()
    {
        var a = R64(2, 3);
        var y = a.Exp();                           // Exp saves its output
        y[0] = 0.0;
        var ex = Assert.ThrowsAny<InvalidOperationException>(() => y.Sum().Backward());
        Assert.Contains("modified by an in-place operation", ex.Message);
    }

    [Fact] public void GradOfReads() => Assert.True(GradCheck.Check(x => x[0][.., ^1] * x[0][1..3, .., 0].Sum(), [R64(3, 4, 3, 2)]));

    [Fact] public void SecondOrderOfReads() => Assert.True(GradCheck.CheckSecondOrder(x => x[0][1.., TensorIndex.Slice(0, 3, 2)].Pow(3), [R64(4, 3, 3)]));

    [Fact]
    public void GradOfWritesReachesTheValueAndTheRest()
    {
        static Tensor F(Tensor[] x)
        {
            var h = x[0] * 1.5;                    // a non-leaf to write into
            h[.., 0] = x[1];                       // broadcast over the rows
            h[^1, 1..3] = x[2] * x[2];
            return h.Pow(2);
        }
        Tensor[] inputs = [R64(5, 3, 4), R64(6, 3), R64(7, 2)];
        Assert.True(GradCheck.Check(F, inputs));
        Assert.True(GradCheck.CheckSecondOrder(F, inputs));
    }

    [Fact]
    public void GradOfAWriteIntoATensorThatDidNotRequireGrad()
    {
        static Tensor F(Tensor[] x)
        {
            var buffer = Tensor.Zeros([3, 2], DType.Float64);
            buffer[1] = x[0].Exp();
            return buffer * buffer;
        }
        Assert.True(GradCheck.Check(F, [R64(8, 2)]));
    }
}
