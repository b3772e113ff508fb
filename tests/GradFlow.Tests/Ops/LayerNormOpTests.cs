using GradFlow.NN;
using static GradFlow.Tests.TestUtil;

namespace GradFlow.Tests.Ops;

/// <summary>The fused layer-norm op: gradients (first and second order) and agreement with the composed formula.</summary>
public class LayerNormOpTests
{
    private static void Both(Func<Tensor[], Tensor> f, params Tensor[] inputs)
    {
        Assert.True(GradCheck.Check(f, inputs));
        Assert.True(GradCheck.CheckSecondOrder(f, inputs));
    }

    [Fact] public void AffineGradChecks() => Both(x => Functional.LayerNorm(x[0], [5], x[1], x[2]), R64(1, 3, 5), R64(2, 5), R64(3, 5));
    [Fact] public void TwoTrailingDimsGradCheck() => Both(x => Functional.LayerNorm(x[0], [2, 3], x[1], x[2]), R64(1, 2, 2, 3), R64(2, 2, 3), R64(3, 2, 3));
    [Fact] public void NoAffineGradChecks() => Both(x => Functional.LayerNorm(x[0], [7]), R64(1, 2, 7));
    [Fact] public void WeightOnlyGradChecks() => Both(x => Functional.LayerNorm(x[0], [4], x[1]), R64(1, 3, 4), R64(2, 4));
    [Fact] public void BiasOnlyGradChecks() => Both(x => Functional.LayerNorm(x[0], [4], null, x[1]), R64(1, 3, 4), R64(2, 4));
    [Fact] public void StridedInputGradChecks() => Both(x => Functional.LayerNorm(x[0].Transpose(0, 1), [3], x[1], x[2]), R64(1, 3, 4), R64(2, 3), R64(3, 3));

    [Fact]
    public void MatchesTheComposedFormulaOnAStridedInput()
    {
        var x = (Tensor.Randn([33, 4], DType.Float32, new Generator(1)) * 3 + 2).Detach().RequireGrad();
        var gy = Tensor.Randn([4, 33], DType.Float32, new Generator(4));
        var xt = x.T; // (4, 33), normalised over 33 with stride 4
        var w33 = Tensor.Randn([33], DType.Float32, new Generator(5)).RequireGrad();
        var b33 = Tensor.Randn([33], DType.Float32, new Generator(6)).RequireGrad();
        var y = Functional.LayerNorm(xt, [33], w33, b33);
        Assert.Equal("NativeLayerNormBackward", y.GradFn!.Name);
        var centred = xt - xt.Mean([1], keepDim: true);
        var expected = centred / ((centred * centred).Mean([1], keepDim: true) + 1e-5).Sqrt() * w33 + b33;
        Close(expected.ToDoubleArray(), y.ToDoubleArray(), 1e-5, 1e-5);
        var fused = Autograd.Grad([y], [x, w33, b33], [gy]);
        var composed = Autograd.Grad([expected], [x, w33, b33], [gy]);
        for (int i = 0; i < 3; i++) Close(composed[i]!.ToDoubleArray(), fused[i]!.ToDoubleArray(), 1e-4, 1e-5);
    }
}
