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
