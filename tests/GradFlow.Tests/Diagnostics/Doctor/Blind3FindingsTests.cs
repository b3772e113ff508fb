using GradFlow.Diagnostics;

namespace GradFlow.Tests.Diagnostics;

/// <summary>
/// The rule changed after the blind3 set's first measurement: ReLUs alive at the first step that died after updates above
/// a tenth of the weights were killed by the rate whenever the run is unwell (DeadRelu's own gate), not only once the loss
/// has gone flat: a one-cycle schedule's peak kills most units and the run limps on, slow, well above a healthy loss.
/// </summary>
public class Blind3FindingsTests
{
    private static readonly DoctorOptions s_options = new() { Classes = 10 };

    private static TensorStats Grad(double rms, long count = 100) => new(count, rms * Math.Sqrt(count), rms, rms * 3, rms, 0, 0, 0, null);

    // Two ReLU layers and an output; weights of norm 10 moved by `ratio` of it; the ReLUs' dead fraction from `dead`.
    private static StepRecord Step(long step, double loss, double ratio, double dead)
    {
        var layers = Enumerable.Range(0, 3).Select(i => new LayerGradientStats($"{2 * i}", 2 * i, Grad(dead > 0.5 && i < 2 ? 1e-3 : 0.05), 10, 10 * ratio)).ToArray();
        return new StepRecord
        {
            Step = step, Loss = loss, LearningRate = 0.1, GlobalGradNorm = 0.5,
            Parameters = layers.Select(l => new ParameterStats(l.Layer + ".weight", l.Layer, l.Gradient, l.ParamNorm, l.UpdateNorm)).ToArray(),
            Layers = layers, Flow = [],
            Activations = [new("1", "Relu", 0, 64, dead, dead, null, 0.3, 0.5), new("3", "Relu", 1, 64, dead, dead, null, 0.3, 0.5)],
            RecurrentSteps = [],
        };
    }

    // The loss falls from chance to about 1.1 by step 20, jumps while the units die (steps 21-30) and then creeps down slowly
    // from 1.8: unwell (slow, half the chance level), never flat at chance.
    private static double Loss(int t) => t <= 20 ? 2.3 - (0.06 * t) : t <= 30 ? 1.1 + (0.08 * (t - 20)) : 1.8 - (0.002 * (t - 30)) + (0.01 * Math.Sin(t));

    private static IEnumerable<StepRecord> Run(double peakRatio) => Enumerable.Range(1, 120).Select(t =>
        Step(t, Loss(t), t is >= 10 and <= 30 ? peakRatio : 1e-3, t < 30 ? 0.05 : 0.88));

    [Fact]
    public void ReluKilledByLargeUpdatesIsTheRatesFindingWhileTheRunLimpsOn()
    {
        var findings = Doctor.Diagnose(Run(0.2), s_options);
        Assert.Contains(findings, f => f.Kind == FindingKind.DeadRelu);
        var rate = Assert.Single(findings, f => f.Kind == FindingKind.LearningRateTooHigh);
        Assert.Contains(rate.Evidence, e => e.Quantity.StartsWith("largest update/weight ratio before the ReLUs died", StringComparison.Ordinal) && e.Value >= 0.2);
    }

    [Fact]
    public void UnitsThatDiedUnderSmallUpdatesAreNotTheRates()
    {
        // The same deaths and losses with updates of 1e-3 of the weights throughout: the units died of something else.
        var findings = Doctor.Diagnose(Run(1e-3), s_options);
        Assert.Contains(findings, f => f.Kind == FindingKind.DeadRelu);
        Assert.DoesNotContain(findings, f => f.Kind == FindingKind.LearningRateTooHigh);
    }
}
