using GradFlow.NN;

namespace GradFlow.Tests.Ops;

/// <summary>Undilated MaxPool2d on the plane kernels against the window-column path (dilation 1 vs a dilated-by-1 twin).</summary>
public class MaxPoolDirectTests
{
    [Theory]
    [InlineData(1, 1, 1, 1, 1, 1, 0)]
    [InlineData(2, 3, 7, 7, 2, 2, 0)]
    [InlineData(1, 2, 33, 9, 3, 2, 1)]
    [InlineData(3, 1, 8, 1023, 2, 3, 1)]
    public void MatchesTheColumnPathWithGradients(int n, int c, int h, int w, int k, int stride, int pad)
    {
        var x = Tensor.Randn([n, c, h, w], DType.Float32, new Generator((ulong)(h * w))).RequireGrad();
        var y = Functional.MaxPool2d(x, (k, k), (stride, stride), (pad, pad));
        Assert.Equal("MaxPool2dBackward", y.GradFn!.Name);
        var gy = Tensor.Randn(y.Shape, DType.Float32, new Generator(9));
        y.Backward(gy);
        var direct = x.Grad!.ToArray<float>();
        x.Grad = null;
        // The column path, reached through a non-contiguous input (the direct path needs a contiguous one).
        var xt = x.Transpose(2, 3).Contiguous().Transpose(2, 3);
        var yc = Functional.MaxPool2d(xt, (k, k), (stride, stride), (pad, pad));
        Assert.Equal(yc.ToArray<float>(), y.ToArray<float>());
        yc.Backward(gy);
        var columns = x.Grad!.ToArray<float>(); // overlapping windows may sum a winner's gradients in another order
        for (int i = 0; i < direct.Length; i++) Assert.True(Math.Abs(columns[i] - direct[i]) <= 1e-6 * (1 + Math.Abs(columns[i])), $"element {i}");
    }

    [Fact]
    public void GradChecksFirstAndSecondOrder()
    {
        var x = Tensor.Randn([2, 2, 5, 6], DType.Float64, new Generator(5)).RequireGrad();
        Tensor F(Tensor[] t) => Functional.MaxPool2d(t[0], (2, 2), (2, 2), (1, 1)).Tanh();
        Assert.True(GradCheck.Check(F, [x]));
        Assert.True(GradCheck.CheckSecondOrder(F, [x]));
    }
}
