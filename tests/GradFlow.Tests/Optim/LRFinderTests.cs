using GradFlow.Optim;

namespace GradFlow.Tests.Optim;

public class LRFinderTests
{
    /// <summary>
    /// Full-batch least squares whose Hessian (XᵀX/n) has eigenvalues 0.5..2 by construction: gradient
    /// descent converges for lr below 2/λmax = 1 and diverges above it.
    /// </summary>
    private static (Tensor W, Func<double> Step) Problem()
    {
        int n = 64, d = 4;
        var q = Tensor.Eye(d, dtype: DType.Float64);
        var scales = new[] { Math.Sqrt(0.5), 1.0, Math.Sqrt(1.5), Math.Sqrt(2.0) };
        // Rows are ±e_j·s_j·√(n/d): XᵀX/n = diag(s²).
        var rows = new double[n * d];
        for (int i = 0; i < n; i++) rows[i * d + i % d] = (i / d % 2 == 0 ? 1 : -1) * scales[i % d] * Math.Sqrt((double)d);
        var x = Tensor.FromArray(rows, n, d);
        var y = x.MatMul(Tensor.FromArray([1.0, -2.0, 0.5, 3.0], d, 1));
        var w = Tensor.Zeros([d, 1], DType.Float64, requiresGrad: true);
        double Step()
        {
            w.Grad = null;
            var r = x.MatMul(w) - y;
            var loss = (r * r).Mean() * 0.5;
            loss.Backward();
            return loss.Item();
        }
        return (w, Step);
    }

    [Fact]
    public void SuggestsARateBelowTheDivergenceLimitAndStopsOnDivergence()
    {
        var (w, step) = Problem();
        var opt = new SGD([w], lr: 0.1);
        var result = new LRFinder(opt, step).Run(minLr: 1e-4, maxLr: 100, steps: 120);
        Assert.True(result.Diverged);
        Assert.True(result.Lrs.Count < 120, "the sweep should stop once the loss blows up");
        Assert.InRange(result.Lrs[^1], 1.0, 100);
        Assert.InRange(result.SuggestedLr, 0.01, 1.0);
        for (int i = 1; i < result.Lrs.Count; i++) Assert.True(result.Lrs[i] > result.Lrs[i - 1]);
        Assert.Equal(result.Lrs.Count, result.Losses.Count);
        Assert.Equal(result.Lrs.Count, result.RawLosses.Count);
        // Restored: weights back at zero, the group's rate back at 0.1, no momentum state.
        Assert.All(w.ToDoubleArray(), v => Assert.Equal(0.0, v));
        Assert.Equal(0.1, opt.ParamGroups[0].Lr);
    }

    [Fact]
    public void WithoutRestoreTheTrainingStays()
    {
        var (w, step) = Problem();
        var opt = new Adam([w]);
        var result = new LRFinder(opt, step).Run(1e-5, 1e-2, steps: 30, restore: false);
        Assert.False(result.Diverged);
        Assert.Equal(30, result.Lrs.Count);
        Assert.Equal(1e-2, result.Lrs[^1], 12);
        Assert.Contains(w.ToDoubleArray(), v => v != 0);
        Assert.Throws<ArgumentException>(() => new LRFinder(opt, step).Run(1, 0.1));
    }
}
