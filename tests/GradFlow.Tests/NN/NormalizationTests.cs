using GradFlow.NN;
using static GradFlow.Tests.TestUtil;

namespace GradFlow.Tests.NN;

public class NormalizationTests
{
    // Normalisation divides by a batch standard deviation: float32 results agree to a few ulps of the output.
    private const double Rtol = 1e-5, Atol = 2e-6;

    [Fact] public void BatchNorm2dTrainMatchesPyTorchIncludingRunningStats() => NNFixtures.Check("batchnorm2d_train", new BatchNorm2d(3, momentum: 0.2), Rtol, Atol);
    [Fact] public void BatchNorm2dEvalMatchesPyTorch() => NNFixtures.Check("batchnorm2d_eval", new BatchNorm2d(3, momentum: 0.2), Rtol, Atol, train: false);
    [Fact] public void BatchNorm1dTrainMatchesPyTorch() => NNFixtures.Check("batchnorm1d_train", new BatchNorm1d(4), Rtol, Atol);
    [Fact] public void BatchNorm1d3dNoAffineMatchesPyTorch() => NNFixtures.Check("batchnorm1d_3d_train", new BatchNorm1d(3, affine: false), Rtol, Atol);
    [Fact] public void LayerNormMatchesPyTorch() => NNFixtures.Check("layernorm", new LayerNorm([3, 4]), Rtol, Atol);
    [Fact] public void GroupNormMatchesPyTorch() => NNFixtures.Check("groupnorm", new GroupNorm(2, 4), Rtol, Atol);

    private static void GradCheckModule(Module m, Tensor x, bool secondOrder = true)
    {
        var ps = m.Parameters().ToArray();
        using (global::GradFlow.Autograd.NoGrad())
            foreach (var p in ps) p.AddInPlace(Tensor.Randn(p.Shape, DType.Float64, new Generator(3)) * 0.3);
        Tensor[] inputs = [x, .. ps];
        // Gradcheck re-runs the forward many times; with running statistics that would drift them, so use a
        // layer whose statistics are batch-only (train mode) and check running stats by fixture instead.
        Assert.True(GradCheck.Check(_ => m.Call(x), inputs));
        if (secondOrder) Assert.True(GradCheck.CheckSecondOrder(_ => m.Call(x), inputs));
    }

    [Fact] public void BatchNorm2dGradChecks() => GradCheckModule(new BatchNorm2d(2, dtype: DType.Float64), R64(1, 3, 2, 2, 2));
    [Fact] public void BatchNorm1dEvalGradChecks() => GradCheckModule(new BatchNorm1d(3, dtype: DType.Float64).Eval(), R64(2, 4, 3));
    [Fact] public void LayerNormGradChecks() => GradCheckModule(new LayerNorm(4, dtype: DType.Float64), R64(3, 2, 3, 4));
    [Fact] public void GroupNormGradChecks() => GradCheckModule(new GroupNorm(2, 4, dtype: DType.Float64), R64(4, 2, 4, 3));

    [Fact]
    public void BatchNormCumulativeAverageAndEvalMode()
    {
        var bn = new BatchNorm1d(2, momentum: null);
        var a = Tensor.FromArray(new[] { 1f, 2f, 3f, 6f }, 2, 2);
        var b = Tensor.FromArray(new[] { 5f, 0f, 7f, 0f }, 2, 2);
        bn.Call(a);
        bn.Call(b);
        Assert.Equal(2, bn.NumBatchesTracked!.Item<long>());
        // Means: batch a (2, 4), batch b (6, 0): average (4, 2).
        Fixtures.Fixture.AssertClose(Tensor.FromArray(new[] { 4f, 2f }), bn.RunningMean!, "cumulative mean");
        bn.Eval();
        var y = bn.Call(Tensor.FromArray(new[] { 4f, 2f }, 1, 2));
        Assert.All(y.ToDoubleArray(), v => Assert.Equal(0.0, v, 6));
        Assert.Equal(2, bn.NumBatchesTracked!.Item<long>());
        Assert.Equal(["weight", "bias", "running_mean", "running_var", "num_batches_tracked"], bn.StateDict().Keys);
    }
}
