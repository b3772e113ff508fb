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

    [Theory]
    [InlineData(2, 2, 0)]
    [InlineData(3, 2, 1)] // overlapping windows: a winner may take several outputs' gradients
    public void CreateGraphBackwardIsTheKernelAndItsBackwardGathers(int k, int stride, int pad)
    {
        var x = Tensor.Randn([2, 3, 7, 6], DType.Float64, new Generator(11)).RequireGrad();
        var y = Functional.MaxPool2d(x, (k, k), (stride, stride), (pad, pad));
        var gy = Tensor.Randn(y.Shape, DType.Float64, new Generator(12)).RequireGrad();
        var plain = Autograd.Grad([y], [x], [gy.Detach()], retainGraph: true)[0]!;
        var gx = Autograd.Grad([y], [x], [gy], createGraph: true)[0]!;
        Assert.Equal("MaxPool2dGradBackward", gx.GradFn!.Name);
        Assert.Equal(plain.ToArray<double>(), gx.ToArray<double>());
        // The composed form (a strided gradient takes ScatterAdd) gives the same gradient and the same second derivative.
        var gyStrided = gy.Transpose(2, 3).Contiguous().Transpose(2, 3);
        var gxComposed = Autograd.Grad([y], [x], [gyStrided], createGraph: true)[0]!;
        Assert.Equal(gx.ToArray<double>(), gxComposed.ToArray<double>());
        var v = Tensor.Randn(x.Shape, DType.Float64, new Generator(13));
        var gathered = Autograd.Grad([gx], [gy], [v], retainGraph: true)[0]!;
        var recorded = Autograd.Grad([gx], [gy], [v], createGraph: true)[0]!;
        var composed = Autograd.Grad([gxComposed], [gy], [v])[0]!;
        Assert.Equal(composed.ToArray<double>(), gathered.ToArray<double>());
        Assert.Equal(composed.ToArray<double>(), recorded.ToArray<double>());
    }

    [Fact]
    public void GradChecksToThirdOrderWithOverlappingWindows()
    {
        var x = Tensor.Randn([1, 2, 7, 7], DType.Float64, new Generator(5)).RequireGrad();
        var gy = Tensor.Randn([1, 2, 4, 4], DType.Float64, new Generator(6)).RequireGrad();
        Tensor F(Tensor[] t) => Functional.MaxPool2d(t[0], (3, 3), (2, 2), (1, 1)).Tanh();
        Assert.True(GradCheck.CheckSecondOrder(F, [x]));
        // The gradient recorded with createGraph, as a function of x and gy, checked to second order.
        Tensor G(Tensor[] t) => Autograd.Grad([F([t[0]])], [t[0]], [t[1]], createGraph: true)[0]!;
        Assert.True(GradCheck.Check(G, [x, gy]));
        Assert.True(GradCheck.CheckSecondOrder(G, [x, gy]));
    }
}
