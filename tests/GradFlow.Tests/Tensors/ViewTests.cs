namespace GradFlow.Tests.Tensors;

/// <summary>Views share storage (and its version counter) with their base; strides describe the layout.</summary>
public class ViewTests
{
    private static Tensor Iota(params int[] shape) => Tensor.Arange(Shapes(shape)).Reshape(shape);
    private static int Shapes(int[] shape) => shape.Aggregate(1, (a, b) => a * b);

    [Fact]
    public void ContiguousStrides()
    {
        var t = Iota(2, 3, 4);
        Assert.Equal([12, 4, 1], t.Strides.ToArray());
        Assert.True(t.IsContiguous);
    }

    [Fact]
    public void TransposeSwapsStrides()
    {
        var t = Iota(2, 3, 4).Transpose(0, 2);
        Assert.Equal([4, 3, 2], t.Shape.ToArray());
        Assert.Equal([1, 4, 12], t.Strides.ToArray());
        Assert.False(t.IsContiguous);
        Assert.Equal(13.0, t[1, 0, 1].Item()); // element [1,0,1] of the base
    }

    [Fact]
    public void PermuteReordersStrides()
    {
        var t = Iota(2, 3, 4).Permute(1, 2, 0);
        Assert.Equal([3, 4, 2], t.Shape.ToArray());
        Assert.Equal([4, 1, 12], t.Strides.ToArray());
        Assert.False(t.IsContiguous);
    }

    [Fact]
    public void SliceWithStep()
    {
        var t = Iota(3, 7).Slice(1, 1, 6, 2);
        Assert.Equal([3, 3], t.Shape.ToArray());
        Assert.Equal([7, 2], t.Strides.ToArray());
        Assert.False(t.IsContiguous);
        Assert.Equal(new float[] { 1, 3, 5, 8, 10, 12, 15, 17, 19 }, t.ToArray<float>());
        Assert.True(Iota(4, 3).Slice(0, 1, 3).IsContiguous, "a row slice is contiguous from its offset");
    }

    [Fact]
    public void ExpandHasZeroStrides()
    {
        var t = Iota(3, 1).Expand(2, 3, 4);
        Assert.Equal([0, 1, 0], t.Strides.ToArray());
        Assert.False(t.IsContiguous);
        Assert.Equal(2.0, t[1, 2, 3].Item());
    }

    [Fact]
    public void ContiguousCopiesOnlyWhenNeeded()
    {
        var t = Iota(2, 3);
        Assert.Same(t, t.Contiguous());
        var c = t.T.Contiguous();
        Assert.True(c.IsContiguous);
        Assert.Equal(new float[] { 0, 3, 1, 4, 2, 5 }, c.ToArray<float>());
        c.Fill(7);
        Assert.Equal(15.0, t.Sum().Item()); // the copy does not alias the base
    }

    [Fact]
    public void WritesThroughViewsReachTheBase()
    {
        var t = Tensor.Zeros(3, 4);
        t.Select(0, 1).CopyFrom(Tensor.Ones(4));
        t.T.Select(0, 3).CopyFrom(Tensor.Full([3], 2.0));
        t.Slice(1, 0, 3, 2).Select(0, 0).CopyFrom(Tensor.Full([2], 5.0));
        Assert.Equal(new float[] { 5, 0, 5, 2, 1, 1, 1, 2, 0, 0, 0, 2 }, t.ToArray<float>());
    }

    [Fact]
    public void ViewsShareTheVersionCounter()
    {
        var t = Tensor.Zeros(2, 2);
        var v = t.Reshape(4);
        int before = t.Version;
        v.AddInPlace(1.0);
        Assert.Equal(before + 1, t.Version);
        Assert.Equal(4.0, t.Sum().Item());
    }

    [Fact]
    public void ReshapeOfNonContiguousCopies()
    {
        var t = Iota(2, 3);
        var r = t.T.Reshape(6);
        Assert.Equal(new float[] { 0, 3, 1, 4, 2, 5 }, r.ToArray<float>());
        Assert.Throws<InvalidOperationException>(() => t.T.View(6));
    }

    [Fact]
    public void SqueezeUnsqueezeFlatten()
    {
        var t = Tensor.Zeros(3, 1, 4, 1);
        Assert.Equal([3, 4], t.Squeeze().Shape.ToArray());
        Assert.Equal([3, 4, 1], t.Squeeze(1).Shape.ToArray());
        Assert.Equal([3, 1, 4, 1], t.Squeeze(0).Shape.ToArray());
        Assert.Equal([3, 1, 4, 1, 1], t.Unsqueeze(-1).Shape.ToArray());
        Assert.Equal([3, 4, 1], t.Flatten(1, 2).Shape.ToArray());
        Assert.Equal([12], t.Flatten().Shape.ToArray());
    }

    [Fact]
    public void SelectSqueezeUnsqueezeOfStridedTensorsAreViews()
    {
        var t = Iota(3, 4);
        var column = t.T.Select(0, 1);
        Assert.Equal([4], column.Strides.ToArray());
        column.Unsqueeze(1).CopyFrom(Tensor.Zeros(3, 1));
        Assert.Equal(0.0, t[2, 1].Item());
        Assert.Equal(0.0, t.Select(1, 1).Abs().Sum().Item());
    }

    [Fact]
    public void ReshapeSplitsAndMergesContiguousChunksWithoutCopy()
    {
        var t = Iota(4, 6).Slice(1, 0, 4); // [4, 4], rows 6 apart: each row is a contiguous chunk
        Assert.Equal(new float[] { 0, 1, 2, 3, 6 }, t.Reshape(16).ToArray<float>()[..5]); // merging rows needs a copy
        var r = t.Reshape(4, 2, 2);
        Assert.Equal([6, 2, 1], r.Strides.ToArray());
        r.Fill(-1);
        Assert.Equal(-1.0, t[3, 3].Item());
    }
}
