namespace GradFlow.Tests.Tensors;

/// <summary>ToString prints what PyTorch 1.13 prints (strings copied from torch's repr), except for dtype names and line wrapping.</summary>
public class TensorFormatterTests
{
    private static Tensor F(params float[] v) => Tensor.FromArray(v);

    [Fact] public void IntegralFloats() => Assert.Equal("tensor([1., 2., 3.])", F(1, 2, 3).ToString());
    [Fact] public void NegativesAlign() => Assert.Equal("tensor([-1.,  2.])", F(-1, 2).ToString());
    [Fact] public void FourDecimals() => Assert.Equal("tensor([ 1.5000, -2.2500])", F(1.5f, -2.25f).ToString());
    [Fact] public void CommonWidth() => Assert.Equal("tensor([  0.1000,  10.2500, 100.0000])", F(0.1f, 10.25f, 100).ToString());
    [Fact] public void Scientific() => Assert.Equal("tensor([1.0000e-05, 1.0000e+00])", F(1e-5f, 1).ToString());
    [Fact] public void ScientificLarge() => Assert.Equal("tensor([1.0000e+09, 1.0000e+00])", F(1e9f, 1).ToString());
    [Fact]
    public void Scalars()
    {
        Assert.Equal("tensor(3.5000)", Tensor.Scalar(3.5).ToString());
        Assert.Equal("tensor(2.)", Tensor.Scalar(2).ToString());
    }
    [Fact] public void Matrix() => Assert.Equal("tensor([[-1.,  2.],\n        [ 3., -4.]])", Tensor.FromArray(new float[] { -1, 2, 3, -4 }, 2, 2).ToString());
    [Fact] public void Column() => Assert.Equal("tensor([[ 1.5000],\n        [22.2500]])", Tensor.FromArray(new float[] { 1.5f, 22.25f }, 2, 1).ToString());
    [Fact]
    public void ThreeD() =>
        Assert.Equal("tensor([[[0., 1.],\n         [2., 3.]],\n\n        [[4., 5.],\n         [6., 7.]]])", Tensor.Arange(8).Reshape(2, 2, 2).ToString());
    [Fact] public void Int64() => Assert.Equal("tensor([-10,   2])", Tensor.FromArray(new long[] { -10, 2 }).ToString());
    [Fact] public void Float64() => Assert.Equal("tensor([1., 2.], dtype=float64)", Tensor.FromArray(new double[] { 1, 2 }).ToString());
    [Fact] public void NonFinite() => Assert.Equal("tensor([nan, 1., inf])", F(float.NaN, 1, float.PositiveInfinity).ToString());
    [Fact] public void Empty() => Assert.Equal("tensor([])", F().ToString());
    [Fact] public void RequiresGrad() => Assert.Equal("tensor([1., 1.], requiresGrad=True)", Tensor.Ones([2], DType.Float32, requiresGrad: true).ToString());
    [Fact] public void GradFn() => Assert.Equal("tensor([2., 2.], gradFn=<MulBackward>)", (Tensor.Ones([2], DType.Float32, requiresGrad: true) * Tensor.Full([2], 2.0)).ToString());
    [Fact] public void TransposedViewPrintsLogicalOrder() => Assert.Equal("tensor([[0., 2.],\n        [1., 3.]])", Tensor.Arange(4).Reshape(2, 2).T.ToString());
    [Fact]
    public void Summarised() =>
        Assert.Equal("tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03, 1.9990e+03])", Tensor.Arange(2000).ToString());
    [Fact]
    public void SummarisedRows() =>
        Assert.Equal("tensor([[0, 0],\n        [0, 0],\n        [0, 0],\n        ...,\n        [0, 0],\n        [0, 0],\n        [0, 0]])",
            Tensor.Zeros([1001, 2], DType.Int64).ToString());
}
