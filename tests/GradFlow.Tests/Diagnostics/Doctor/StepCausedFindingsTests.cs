using GradFlow.Diagnostics;

namespace GradFlow.Tests.Diagnostics;

/// <summary>
/// Faults that training's own steps bring about: a gradient that vanishes only after large steps (the rate's doing, not
/// the architecture's), a zero gradient whose dead units flicker back, a spike that comes before the loss diverges.
/// </summary>
public class StepCausedFindingsTests
{
    private static TensorStats Grad(double rms, double zeros = 0) => new(100, rms * 10, rms, rms * 3, rms, zeros, 0, 0, null);

    private static readonly DoctorOptions s_options = new() { Classes = 10 };

    private static double Stalled(int t) => 2.3 + 0.01 * Math.Sin(t);

    // A three-layer step: per-layer gradient RMS from the input side, every layer moving by `updateRatio` of its weights.
    private static StepRecord Step(long t, double loss, double[] rms, double updateRatio, double? norm = null, double zeros = 0,
        ActivationStats[]? activations = null, RecurrentStepStats[]? recurrent = null)
    {
        var layers = rms.Select((r, i) => new LayerGradientStats($"{2 * i}", 2 * i, Grad(r, zeros), 10, 10 * updateRatio)).ToArray();
        return new StepRecord
        {
            Step = t, Loss = loss, LearningRate = 0.1, GlobalGradNorm = norm ?? Math.Sqrt(rms.Sum(r => r * r * 100)),
            Parameters = layers.Select(l => new ParameterStats(l.Layer + ".weight", l.Layer, l.Gradient, l.ParamNorm, l.UpdateNorm)).ToArray(),
            Layers = layers, Flow = [], Activations = activations ?? [], RecurrentSteps = recurrent ?? [],
        };
    }

    private static readonly double[] s_healthy = [0.02, 0.03, 0.05];
    private static readonly double[] s_vanished = [1e-7, 1e-5, 1e-2];

    [Theory]
    [InlineData(0.05, true, true)]   // vanishing from the first step: the architecture's, whatever the steps
    [InlineData(0.05, false, false)] // passed at the first step, vanished after updates of 5% a step: the steps made it
    [InlineData(1e-3, false, true)]  // passed at the first step, vanished under healthy steps of 0.1%: still the network's
    public void VanishingAcrossDepthAfterLargeStepsIsLeftToTheRate(double updateRatio, bool fromTheStart, bool expected)
    {
        var findings = Doctor.Diagnose(Enumerable.Range(1, 60).Select(t => Step(t, Stalled(t), t == 1 && !fromTheStart ? s_healthy : s_vanished, updateRatio)), s_options);
        Assert.Equal(expected, findings.Any(f => f.Kind == FindingKind.VanishingGradients));
    }

    [Fact]
    public void ALaterVanishingIsJudgedFromItsOwnOnset()
    {
        // Two large first steps and a moment of vanishing at step 2, then healthy for a window and more, then vanishing under
        // healthy steps from step 41: that onset's steps were small (2 of 41 large), so the network's own vanishing is named.
        var findings = Doctor.Diagnose(Enumerable.Range(1, 100).Select(t =>
            Step(t, Stalled(t), t == 2 || t > 40 ? s_vanished : s_healthy, t <= 2 ? 0.05 : 1e-3)), s_options);
        Assert.Contains(findings, f => f.Kind == FindingKind.VanishingGradients);
    }

    // ||dL/dh_t|| = factor^(T-1-t) over 20 time steps (the gradient enters at the last step).
    private static RecurrentStepStats[] ThroughTime(double factor) =>
        [new("rnn", 0, 0, false, Enumerable.Range(0, 20).Select(t => Math.Pow(factor, 19 - t)).ToArray())];

    [Theory]
    [InlineData(0.05, 1.2, false)] // grew back through time at the first step, vanished after large steps (dying ReLU units)
    [InlineData(1e-3, 1.2, true)]  // the same under healthy steps
    [InlineData(0.05, 0.5, true)]  // vanishing from the first step
    public void VanishingThroughTimeAfterLargeStepsIsLeftToTheRate(double updateRatio, double firstFactor, bool expected)
    {
        var findings = Doctor.Diagnose(Enumerable.Range(1, 80).Select(t =>
            Step(t, 0.69 + 0.01 * Math.Sin(t), s_healthy, updateRatio, recurrent: ThroughTime(t == 1 ? firstFactor : 0.5))), new DoctorOptions { Classes = 2 });
        Assert.Equal(expected, findings.Any(f => f.Kind == FindingKind.VanishingGradients && f.Title.Contains("through time", StringComparison.Ordinal)));
    }

    [Fact]
    public void AZeroGradientKeepsItsDeadCauseWhenSomeUnitsFlickerBack()
    {
        // 95% of the gradient exactly zero throughout; the ReLU layer 90% dead on the samples up to step 50, 50% after (a
        // growing rate or momentum moves weights that get no gradient, and some units pass something on some batches).
        var findings = Doctor.Diagnose(Enumerable.Range(1, 100).Select(t => Step(t, Stalled(t), s_healthy, 1e-3, zeros: 0.95,
            activations: (t - 1) % 5 == 0 ? [new ActivationStats("2", "Relu", 1, 64, t <= 50 ? 0.9 : 0.5, t <= 50 ? 0.9 : 0.5, null, 0.1, 0.2)] : null)), s_options);
        var zero = Assert.Single(findings, f => f.Kind == FindingKind.ZeroGradient);
        Assert.Equal(Severity.Info, zero.Severity); // a dead network: the DeadRelu warning carries the fault
        Assert.Contains("dead network", zero.Title, StringComparison.Ordinal);
    }

    [Fact]
    public void AZeroGradientWithoutDeadUnitsStaysUnclassified()
    {
        var findings = Doctor.Diagnose(Enumerable.Range(1, 100).Select(t => Step(t, Stalled(t), s_healthy, 1e-3, zeros: 0.95,
            activations: (t - 1) % 5 == 0 ? [new ActivationStats("2", "Relu", 1, 64, 0.5, 0.5, null, 0.1, 0.2)] : null)), s_options);
        var zero = Assert.Single(findings, f => f.Kind == FindingKind.ZeroGradient);
        Assert.Equal(Severity.Warning, zero.Severity);
    }

    // Norms at 0.3 with one 50x spike at `spikeAt`; the loss flat at 2.3, rising 20% a step from `divergeFrom` on.
    private static IReadOnlyList<Finding> Spiked(int spikeAt, int? divergeFrom) => Doctor.Diagnose(Enumerable.Range(1, 100).Select(t =>
        Step(t, divergeFrom is { } d && t >= d ? 2.3 * Math.Pow(1.2, t - d + 1) : 2.3 + 0.01 * Math.Sin(t), s_healthy, 1e-3, norm: t == spikeAt ? 15 : 0.3)), s_options);

    [Fact]
    public void OneSpikeBeforeTheLossDivergesIsAnExplosion()
    {
        var f = Assert.Single(Spiked(60, 62), f => f.Kind == FindingKind.ExplodingGradients);
        Assert.InRange(f.FirstStep, 63, 70); // when the median of 5 losses passes 1.5x the start
        Assert.Equal(50, f.Evidence.Single(e => e.Quantity.StartsWith("gradient norm /", StringComparison.Ordinal)).Value, 1e-9);
    }

    [Theory]
    [InlineData(60, null)] // a lone spike in a stalled run: one odd batch, not an explosion
    [InlineData(30, 62)]   // a spike more than a window before the divergence did not cause it
    public void ASpikeAloneOrLongBeforeADivergenceIsNot(int spikeAt, int? divergeFrom) =>
        Assert.DoesNotContain(Spiked(spikeAt, divergeFrom), f => f.Kind == FindingKind.ExplodingGradients);
}
