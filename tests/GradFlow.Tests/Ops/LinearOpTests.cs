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
    public void StridedInputIsCopiedOnceAndStaysDifferentiable()
    {
        var x = Tensor.Randn([4, 3], DType.Float64, new Generator(5)).T.RequireGrad(); // (3, 4), strides (1, 3)
        var w = R64(6, 2, 4).RequireGrad();
        var b = R64(7, 2).RequireGrad();
        Assert.Equal("AddmmBackward", Functional.Linear(x, w, b).GradFn!.Name);
        Tensor F(Tensor[] t) => Functional.Linear(t[0], t[1], t[2]).Tanh();
        Assert.True(GradCheck.Check(F, [x, w, b]));
        Assert.True(GradCheck.CheckSecondOrder(F, [x, w, b]));
    }

    [Fact]
    public void BatchedMatMulWithTransposedAndBroadcastOperandsMatchesPerBatchProducts()
    {
        var g = new Generator(8);
        var q = Tensor.Randn([2, 3, 5, 4], DType.Float64, g);
        var k = Tensor.Randn([2, 3, 7, 4], DType.Float64, g);
        var w = Tensor.Randn([4, 6], DType.Float64, g);
        var scores = q.MatMul(k.Transpose(-1, -2)); // transposed slices
        var proj = q.Transpose(1, 2).MatMul(w);      // strided a, broadcast b
        for (int i = 0; i < 2; i++)
            for (int h = 0; h < 3; h++)
            {
                var expected = q.Select(0, i).Select(0, h).Contiguous().MatMul(k.Select(0, i).Select(0, h).T.Contiguous()).ToArray<double>();
                var actual = scores.Select(0, i).Select(0, h).ToArray<double>();
                for (int e = 0; e < expected.Length; e++) Assert.Equal(expected[e], actual[e], 12);
            }
        var p0 = q.Transpose(1, 2).Contiguous().MatMul(w).ToArray<double>();
        var p1 = proj.ToArray<double>();
        for (int e = 0; e < p0.Length; e++) Assert.Equal(p0[e], p1[e], 12);
        Assert.True(GradCheck.Check(t => t[0].MatMul(t[1].Transpose(-1, -2)).Sin(), [R64(9, 2, 3, 4), R64(10, 2, 5, 4)]));
    }

    private static void Close(Tensor expected, Tensor actual)
    {
        var e = expected.ToArray<float>();
        var a = actual.ToArray<float>();
        Assert.Equal(e.Length, a.Length);
        for (int i = 0; i < e.Length; i++) Assert.True(Math.Abs(e[i] - a[i]) <= 1e-4 * (1 + Math.Abs(e[i])), $"element {i}: {a[i]} vs {e[i]}");
    }
}
