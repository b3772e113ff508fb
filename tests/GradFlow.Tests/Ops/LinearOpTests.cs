using GradFlow.NN;
using static GradFlow.Tests.TestUtil;

namespace GradFlow.Tests.Ops;

/// <summary>The fused linear op (one node, bias accumulated by GEMM) against the composed x W^T + b.</summary>
public class LinearOpTests
{
    public static TheoryData<int[], bool> Cases => new()
    {
        { [4], true }, { [1, 4], true }, { [7, 4], false }, { [2, 3, 4], true }, { [33, 4], true },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void GradChecksFirstAndSecondOrder(int[] xShape, bool bias)
    {
        var x = R64(1, xShape).RequireGrad();
        var w = R64(2, 3, 4).RequireGrad();
        var b = R64(3, 3).RequireGrad();
        Tensor[] inputs = bias ? [x, w, b] : [x, w];
        Tensor F(Tensor[] t) => Functional.Linear(t[0], t[1], bias ? t[2] : null).Tanh();
        Assert.True(GradCheck.Check(F, inputs));
        Assert.True(GradCheck.CheckSecondOrder(F, inputs));
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(7, 33, 5)]
    [InlineData(33, 7, 1023)]
    [InlineData(128, 10, 64)]
    public void MatchesTheComposedFormWithItsGradients(int rows, int outF, int inF)
    {
        var g = new Generator(4);
        var x = Tensor.Randn([rows, inF], DType.Float32, g).RequireGrad();
        var w = Tensor.Randn([outF, inF], DType.Float32, g).RequireGrad();
        var b = Tensor.Randn([outF], DType.Float32, g).RequireGrad();
        var gy = Tensor.Randn([rows, outF], DType.Float32, g);
        var fused = Functional.Linear(x, w, b);
        Assert.Equal("AddmmBackward", fused.GradFn!.Name);
        fused.Backward(gy);
        var (gx, gw, gb) = (x.Grad!, w.Grad!, b.Grad!);
        x.Grad = w.Grad = b.Grad = null;
        var composed = x.MatMul(w.T) + b;
        composed.Backward(gy);
        Close(composed, fused);
        Close(x.Grad!, gx);
        Close(w.Grad!, gw);
        Close(b.Grad!, gb);
    }

    [Fact]
    public void NonContiguousInputTakesTheComposedPath()
    {
        var x = Tensor.Randn([4, 3], DType.Float64, new Generator(5)).T.RequireGrad(); // (3, 4), strides (1, 3)
        var w = R64(6, 2, 4).RequireGrad();
        var y = Functional.Linear(x, w, null);
        Assert.NotEqual("AddmmBackward", y.GradFn!.Name);
        Assert.True(GradCheck.Check(t => Functional.Linear(t[0], t[1]), [x, w]));
    }

    private static void Close(Tensor expected, Tensor actual)
    {
        var e = expected.ToArray<float>();
        var a = actual.ToArray<float>();
        Assert.Equal(e.Length, a.Length);
        for (int i = 0; i < e.Length; i++) Assert.True(Math.Abs(e[i] - a[i]) <= 1e-4 * (1 + Math.Abs(e[i])), $"element {i}: {a[i]} vs {e[i]}");
    }
}
