using GradFlow.Kernels;

namespace GradFlow.Tests.Kernels;

/// <summary>The fused activation backward kernels against the plain scalar formula and the composed tensor ops.</summary>
public class ActivationGradKernelTests
{
    public static TheoryData<int> Sizes => new() { 1, 7, 33, 1023 };

    private static float[] Values(int n, int seed, float scale)
    {
        var r = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float)((r.NextDouble() * 2) - 1) * scale;
        if (n > 3) { v[0] = 0; v[1] = -0f; v[2] = 1; }
        return v;
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void KernelsMatchTheScalarFormula(int n)
    {
        var g = Values(n, 1, 3);
        var y = Values(n, 2, 1);
        var dx = new float[n];
        Elementwise.Binary<TanhGradOp, float>(g, y, dx);
        for (int i = 0; i < n; i++) Assert.Equal(g[i] * (1 - (y[i] * y[i])), dx[i]);
        Elementwise.Binary<SigmoidGradOp, float>(g, y, dx);
        for (int i = 0; i < n; i++) Assert.Equal(g[i] * y[i] * (1 - y[i]), dx[i]);
        Elementwise.Binary<ReluGradOp, float>(g, y, dx);
        for (int i = 0; i < n; i++) Assert.Equal(g[i] * (y[i] > 0 ? 1f : 0f), dx[i]);
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void FusedBackwardIsBitIdenticalToTheComposedOps(int n)
    {
        var x = Tensor.FromArray(Values(n, 3, 4), n);
        var gy = Tensor.FromArray(Values(n, 4, 2), n);
        foreach (var f in new Func<Tensor, Tensor>[] { t => t.Tanh(), t => t.Sigmoid(), t => t.Relu() })
        {
            var leaf = x.Detach().RequireGrad();
            f(leaf).Backward(gy); // fused: no graph recorded
            var fused = leaf.Grad!.ToArray<float>();
            var leaf2 = x.Detach().RequireGrad();
            var composed = Autograd.Grad([f(leaf2)], [leaf2], [gy], createGraph: true)[0]!.ToArray<float>();
            Assert.Equal(composed, fused);
        }
    }

    [Fact]
    public void ReluCreateGraphBackwardIsOneOpAndItsDerivativesCheck()
    {
        // Away from 0, where ReLU is twice differentiable (its second derivative is zero there).
        var x = Tensor.FromArray(new[] { 0.5, -1.25, 2.0, -0.75, 1.5, -2.5, 0.25, 3.0 }, 2, 4).RequireGrad();
        var gy = Tensor.FromArray(new[] { 1.0, 2.0, -3.0, 4.0, 0.5, -1.0, 2.5, -0.5 }, 2, 4).RequireGrad();
        var gx = Autograd.Grad([x.Relu()], [x], [gy], createGraph: true)[0]!;
        Assert.Equal("ThresholdBackwardBackward", gx.GradFn!.Name); // one node, not a multiply by a kept mask
        Assert.Equal(new[] { 1.0, 0, -3.0, 0, 0.5, 0, 2.5, -0.5 }, gx.ToArray<double>());
        // d(gx)/d(gy) is the same mask, with and without a graph (the third order's path).
        var v = Tensor.FromArray(new[] { 1.0, 1, 1, 1, -2, -2, -2, -2 }, 2, 4).RequireGrad();
        var plain = Autograd.Grad([gx], [gy], [v], retainGraph: true)[0]!;
        var recorded = Autograd.Grad([gx], [gy], [v], createGraph: true)[0]!;
        Assert.Equal(new[] { 1.0, 0, 1, 0, -2, 0, -2, -2 }, plain.ToArray<double>());
        Assert.Equal(plain.ToArray<double>(), recorded.ToArray<double>());
        Assert.Equal("ThresholdBackwardBackward", recorded.GradFn!.Name);
        Tensor F(Tensor[] t) => (t[0].Relu() * t[0]).Tanh();
        Assert.True(GradCheck.Check(F, [x]));
        Assert.True(GradCheck.CheckSecondOrder(F, [x]));
        // Third order: the gradient recorded with createGraph, checked to second order as a function of x and gy.
        Tensor G(Tensor[] t) => Autograd.Grad([F([t[0]])], [t[0]], [t[1]], createGraph: true)[0]!;
        Assert.True(GradCheck.CheckSecondOrder(G, [x, gy]));
    }

    [Fact]
    public void NonContiguousGradientTakesTheComposedPath()
    {
        var x = Tensor.FromArray(Values(12, 5, 2), 3, 4).RequireGrad();
        x.Tanh().Sum().Backward(); // Sum's gradient is an expanded (stride 0) view
        var y = x.Detach().Tanh().ToArray<float>();
        var grad = x.Grad!.ToArray<float>();
        for (int i = 0; i < 12; i++) Assert.Equal(1 - (y[i] * y[i]), grad[i]);
    }
}
