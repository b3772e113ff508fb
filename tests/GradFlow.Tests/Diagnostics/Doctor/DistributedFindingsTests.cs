using GradFlow.Diagnostics;

namespace GradFlow.Tests.Diagnostics;

/// <summary>The doctor on data-parallel runs: the rank that first made a NaN, and ranks that stray step after step.</summary>
public class DistributedFindingsTests
{
    private static TensorStats Grad(double rms, long nan = 0) => new(100, rms * 10, rms, rms * 3, rms, 0, nan, 0, null);

    // A healthy-looking two-layer step whose distributed view has these per-rank norms (and, from nanStep on, rank nanRank's NaN).
    private static StepRecord Step(long t, double[] rankNorms, int nanRank = -1, long nanStep = long.MaxValue)
    {
        bool nan = t >= nanStep;
        var layers = new[] { new LayerGradientStats("0", 0, Grad(0.03, nan ? 5 : 0), 10, 0.01), new LayerGradientStats("2", 2, Grad(0.05), 10, 0.01) };
        var parameters = layers.Select(l => new ParameterStats(l.Layer + ".weight", l.Layer, l.Gradient, l.ParamNorm, l.UpdateNorm)).ToArray();
        var ranks = rankNorms.Select((n, r) => new RankGradientStats(r, n, nan && r == nanRank ? 5 : 0, [n], [nan && r == nanRank ? 5 : 0])).ToArray();
        double median = rankNorms.Order().ElementAt(rankNorms.Length / 2);
        var divergent = rankNorms.Select((n, r) => (n, r)).Where(x => x.n > 10 * median || x.n < median / 10).Select(x => x.r).ToArray();
        return new StepRecord
        {
            Step = t, Loss = nan ? double.NaN : 2.3 * Math.Exp(-t / 30.0), LearningRate = 0.1, GlobalGradNorm = nan ? double.NaN : 0.6,
            Parameters = parameters, Layers = layers, Flow = [], Activations = [],
            Distributed = new DistributedGradientStats(rankNorms.Length, 0.6, ["0.weight"], ranks, divergent, 10,
                nan ? new NonFiniteOrigin(nanStep, nanRank, "0.weight", [nanRank]) : null),
        };
    }

    [Fact]
    public void AHealthyDataParallelRunRaisesNothing()
    {
        var findings = Doctor.Diagnose(Enumerable.Range(1, 100).Select(t => Step(t, [0.6 + 0.1 * Math.Sin(t), 0.6 + 0.1 * Math.Cos(t), 0.55])));
        Assert.Empty(findings);
    }

    [Fact]
    public void TheNonFiniteFindingNamesTheRankThatMadeItFirst()
    {
        var findings = Doctor.Diagnose(Enumerable.Range(1, 40).Select(t => Step(t, [0.6, 0.6, 0.6], nanRank: 2, nanStep: 25)));
        var f = Assert.Single(findings, f => f.Kind == FindingKind.NonFiniteValues);
        Assert.Equal(25, f.FirstStep);
        Assert.Contains("first on rank 2", f.Title, StringComparison.Ordinal);
        Assert.Contains(f.Evidence, e => e.Quantity.StartsWith("rank that first produced", StringComparison.Ordinal) && e.Value == 2);
    }

    [Fact]
    public void ARankThatStraysStepAfterStepIsNamed()
    {
        // Rank 1's gradients are 50x the others' on every step: another shard scaling, another loss.
        var findings = Doctor.Diagnose(Enumerable.Range(1, 60).Select(t => Step(t, [0.6, 30, 0.55])));
        var f = Assert.Single(findings, f => f.Kind == FindingKind.RanksDisagree);
        Assert.Contains("rank 1 ", f.Title, StringComparison.Ordinal);
        Assert.Equal(Severity.Warning, f.Severity);
        Assert.Contains(f.Evidence, e => e.Quantity.StartsWith("rank 1's gradient norm", StringComparison.Ordinal) && e.Value == 30 / 0.6 && e.Threshold == 10);
    }

    [Fact]
    public void AFewStrayBatchesAreNotADisagreement()
    {
        // One step in ten strays (an outlier batch): below the window's persistence.
        var findings = Doctor.Diagnose(Enumerable.Range(1, 100).Select(t => Step(t, [0.6, t % 10 == 0 ? 30 : 0.6, 0.55])));
        Assert.DoesNotContain(findings, f => f.Kind == FindingKind.RanksDisagree);
    }
}
