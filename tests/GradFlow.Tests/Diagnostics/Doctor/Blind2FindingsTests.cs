using GradFlow.Diagnostics;

namespace GradFlow.Tests.Diagnostics;

/// <summary>
/// The rules changed after the blind2 set's first measurement: a gradient tiny in every layer alike has not vanished across
/// depth; what the first step shows is raised as soon as the run diverges; a gradient already growing back through time at
/// the first step is the initialisation's; and a first loss no mean cross entropy of the measured outputs could reach is the
/// loss's definition (a sum over the batch), not the initialisation's.
/// </summary>
public class Blind2FindingsTests
{
    private static TensorStats Grad(double rms, long count = 100) => new(count, rms * Math.Sqrt(count), rms, rms * 3, rms, 0, 0, 0, null);

    private static readonly DoctorOptions s_options = new() { Classes = 10 };

    // A three-layer step: per-layer gradient RMS from the input side to the loss side, weights of norm 10 moved by 1e-3.
    private static StepRecord Step(long step, double? loss, double[] rms, IReadOnlyList<ActivationStats>? activations = null,
        IReadOnlyList<RecurrentStepStats>? recurrent = null)
    {
        var layers = rms.Select((r, i) => new LayerGradientStats($"{2 * i}", 2 * i, Grad(r), 10, 1e-2)).ToArray();
        return new StepRecord
        {
            Step = step, Loss = loss, LearningRate = 0.1, GlobalGradNorm = Math.Sqrt(rms.Sum(r => r * r * 100)),
            Parameters = layers.Select(l => new ParameterStats(l.Layer + ".weight", l.Layer, l.Gradient, l.ParamNorm, l.UpdateNorm)).ToArray(),
            Layers = layers, Flow = [], Activations = activations ?? [], RecurrentSteps = recurrent ?? [],
        };
    }

    private static double Flat(int t) => 2.3 + 0.01 * Math.Sin(t);

    [Fact]
    public void AGradientTinyInEveryLayerAlikeHasNotVanished()
    {
        // A loss divided by 1e6: every layer's mean |g| about 1e-9, the first/last ratio near 1, the loss flat at chance.
        var uniform = Doctor.Diagnose(Enumerable.Range(1, 60).Select(t => Step(t, Flat(t) * 1e-6, [1e-9, 1.5e-9, 5e-9])), s_options);
        Assert.DoesNotContain(uniform, f => f.Kind == FindingKind.VanishingGradients);
        // The floor still names a first layer that gets nothing while the last gets more than it (ratio 0.05: above 1e-2).
        var shrinking = Doctor.Diagnose(Enumerable.Range(1, 60).Select(t => Step(t, Flat(t), [5e-8, 1e-7, 1e-6])), s_options);
        Assert.Contains(shrinking, f => f.Kind == FindingKind.VanishingGradients);
    }

    private static ActivationStats Relu(int depth, double std) => new($"{2 * depth + 1}", "Relu", depth, 64, 0, 0, null, 0.6 * std, std);

    [Fact]
    public void AStartThatBlowsUpIsRaisedAsSoonAsTheRunDiverges()
    {
        // Twelve residual blocks without normalisation: activations grow 380x across depth at the first step, the loss goes
        // 560 -> 1e4 -> NaN within five steps and the run ends there, long before a window.
        double[] losses = [560, 1.2e4, 8.7e6, 4.9e22, double.NaN];
        var acts = new[] { Relu(0, 0.34), Relu(1, 1.9), Relu(2, 130) };
        var findings = Doctor.Diagnose(losses.Select((l, i) => Step(i + 1, l, [5, 5, 65], i == 0 ? acts : null)), s_options);
        var f = Assert.Single(findings, f => f.Kind == FindingKind.PoorInitialisation);
        Assert.InRange(f.FirstStep, 2, 5);
        Assert.Contains(f.Evidence, e => e.Quantity.StartsWith("activation std", StringComparison.Ordinal));
    }

    // A recurrent step whose ||dL/dh_t|| grows by `factor` per step back from the last of 30 steps.
    private static RecurrentStepStats[] Through(double factor) =>
        [new RecurrentStepStats("rnn", 0, 0, false, Enumerable.Range(0, 30).Select(t => Math.Pow(factor, 29 - t)).ToArray())];

    [Theory]
    [InlineData(1.43, true)]  // a tanh RNN at spectral radius 3: 1.5e4 from the last steps to the first at step 1
    [InlineData(0.9, false)]  // a standard start: the gradient shrinks back through time
    public void AGradientGrowingBackThroughTimeAtTheFirstStepIsTheInitialisation(double factor, bool raised)
    {
        // Only the first step carries the profile (its update then throws the weights out); the loss sits at chance after.
        var findings = Doctor.Diagnose(Enumerable.Range(1, 40).Select(t => Step(t, Flat(t) * 0.3, [0.01, 0.02, 0.05], recurrent: t == 1 ? Through(factor) : null)),
            new DoctorOptions { Classes = 2 });
        Assert.Equal(raised, findings.Any(f => f.Kind == FindingKind.PoorInitialisation));
        if (raised) Assert.Contains(findings.Single(f => f.Kind == FindingKind.PoorInitialisation).Evidence, e => e.Quantity.Contains("at the first step", StringComparison.Ordinal) && e.Value > 70);
    }

    [Theory]
    [InlineData(0.08, false)] // outputs near uniform (last activations' RMS 0.1): a mean cross entropy cannot start at 590
    [InlineData(50, true)]    // activations at 50: logits that large can
    public void AFirstLossNoMeanOfTheOutputsCouldReachIsNotTheInitialisation(double std, bool raised)
    {
        // Cross entropy summed over a batch of 256: 256 ln(10) = 590 at the first step, and the loss stays there.
        var findings = Doctor.Diagnose(Enumerable.Range(1, 40).Select(t => Step(t, 590 + Math.Sin(t), [0.2, 0.3, 1], t == 1 ? [Relu(1, std)] : null)), s_options);
        Assert.Equal(raised, findings.Any(f => f.Kind == FindingKind.PoorInitialisation));
    }
}
