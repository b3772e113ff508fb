namespace GradFlow.Tests.AutogradTests;

/// <summary>The engine reuses its per-thread bookkeeping between backward passes; a backward inside a hook gets its own.</summary>
public class EngineReuseTests
{
    [Fact]
    public void BackwardInsideAHookDoesNotDisturbTheOuterOne()
    {
        var x = Tensor.FromArray(new float[] { 1, 2 }, 2).RequireGrad();
        var z = Tensor.FromArray(new float[] { 3, 4 }, 2).RequireGrad();
        var h = x * 3.0;
        h.RegisterHook(g =>
        {
            using (Autograd.EnableGrad()) (z * z).Sum().Backward(); // a whole backward while the outer one runs
            return null;
        });
        (h * h).Sum().Backward();
        Assert.Equal([18f, 36f], x.Grad!.ToArray<float>()); // d/dx (3x)^2 = 18 x
        Assert.Equal([6f, 8f], z.Grad!.ToArray<float>());
    }

    [Fact]
    public void ManyBackwardsOfDifferentGraphsInARowGiveTheRightGradients()
    {
        for (int n = 1; n < 50; n++)
        {
            var x = Tensor.FromArray(new float[] { 0.5f }, 1).RequireGrad();
            var y = x;
            for (int i = 0; i < n; i++) y = y * 1.0 + 0.0;
            Autograd.Grad(y.Sum(), x); // capture mode between plain backwards
            y = x;
            for (int i = 0; i < n; i++) y = y * 2.0;
            y.Sum().Backward();
            Assert.Equal(Math.Pow(2, n), x.Grad!.Item(), 6);
        }
    }
}

/// <summary>Gradients reaching one input from several consumers are summed in place when only the engine holds them.</summary>
public class InPlaceAccumulationTests
{
    [Fact]
    public void FanOutWithSharedGradientsGradChecks()
    {
        // a and b are used many times; Add hands one gradient to both operands, Reshape passes views through.
        Tensor F(Tensor[] t)
        {
            var a = t[0] * 1.0;
            var b = t[1].Reshape(3, 4) * 1.0;
            var c = a + b;
            var d = c * 3.0 + a + b + (a + a) * b;
            return (d.Reshape(12).Sin() + c.Reshape(12)).Sum() + (a * b).Sum();
        }
        Assert.True(GradCheck.Check(F, [TestUtil.R64(1, 3, 4), TestUtil.R64(2, 12)]));
        Assert.True(GradCheck.CheckSecondOrder(F, [TestUtil.R64(1, 3, 4), TestUtil.R64(2, 12)]));
    }

    [Fact]
    public void AWeightUsedAtEveryStepGetsTheSumOfItsGradients()
    {
        var w = Tensor.FromArray(new float[] { 0.5f, -0.25f, 0.75f, 1f }, 2, 2).RequireGrad();
        var h = Tensor.FromArray(new float[] { 1, 2 }, 1, 2);
        var expected = new double[4];
        for (int t = 0; t < 5; t++) h = h.MatMul(w).Tanh();
        h.Sum().Backward();
        var w64 = w.Detach().To(DType.Float64).RequireGrad();
        var h64 = Tensor.FromArray(new double[] { 1, 2 }, 1, 2);
        for (int t = 0; t < 5; t++) h64 = h64.MatMul(w64).Tanh();
        h64.Sum().Backward();
        var got = w.Grad!.ToArray<float>();
        var want = w64.Grad!.ToArray<double>();
        for (int i = 0; i < 4; i++) Assert.Equal(want[i], got[i], 5);
    }
}
