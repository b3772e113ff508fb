namespace GradFlow.Tests.Tensors;

public class BroadcastTests
{
    [Fact]
    public void ColumnPlusRow()
    {
        var y = Tensor.FromArray(new float[] { 0, 10, 20 }, 3, 1) + Tensor.FromArray(new float[] { 1, 2, 3, 4 }, 1, 4);
        Assert.Equal([3, 4], y.Shape.ToArray());
        Assert.Equal(new float[] { 1, 2, 3, 4, 11, 12, 13, 14, 21, 22, 23, 24 }, y.ToArray<float>());
    }

    [Fact]
    public void LeadingDimsAreAdded()
    {
        var y = Tensor.Ones(2, 1, 3) * Tensor.FromArray(new float[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 }, 4, 3);
        Assert.Equal([2, 4, 3], y.Shape.ToArray());
        Assert.Equal(2 * 78.0, y.Sum().Item());
    }

    [Fact]
    public void ScalarTensorBroadcastsEverywhere()
    {
        var y = Tensor.Scalar(2) * Tensor.Ones(2, 3);
        Assert.Equal([2, 3], y.Shape.ToArray());
        Assert.Equal(12.0, y.Sum().Item());
    }

    [Fact]
    public void IncompatibleShapesNameBoth()
    {
        var e = Assert.Throws<ArgumentException>(() => Tensor.Ones(2, 3) + Tensor.Ones(4));
        Assert.Contains("Add", e.Message);
        Assert.Contains("[2, 3]", e.Message);
        Assert.Contains("[4]", e.Message);
    }

    [Fact]
    public void BroadcastsWithNonContiguousOperands()
    {
        var a = Tensor.Arange(6).Reshape(2, 3).T; // [3, 2], strides [1, 3]
        var y = a - Tensor.FromArray(new float[] { 1, 2 });
        Assert.Equal(new float[] { -1, 1, 0, 2, 1, 3 }, y.ToArray<float>());
    }
}
