using GradFlow.Diagnostics;

namespace GradFlow.Tests.Diagnostics;

/// <summary>
/// The rule changed after the blind3 set's first measurement: ReLUs alive at the first step that died after updates above
/// a tenth of the weights were killed by the rate whenever the run is unwell (DeadRelu's own gate), not only once the loss
/// has gone flat: a one-cycle schedule's peak kills most units and the run limps on, slow, well above a healthy loss. And
/// a weight decay set on one parameter group only is judged on that group's weights (the setup records each parameter's).
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

    // A big layer (norm 100, decay `bigDecay`) and a norm layer whose weights shrink from 10 to 0.5 over 40 steps (decay
    // `normDecay`) while the loss sits at chance: the whole model's norm falls by 5%.
    private static IEnumerable<StepRecord> GroupRun(double bigDecay, double normDecay) => Enumerable.Range(1, 80).Select(t =>
    {
        double normWeight = Math.Max(0.5, 10 * Math.Pow(0.93, t - 1));
        ParameterStats[] parameters =
        [
            new("0.weight", "0", Grad(0.01), 100, 1e-3), new("1.weight", "1", Grad(0.001), normWeight, 0.07 * normWeight),
        ];
        return new StepRecord
        {
            Step = t, Loss = 2.3 + (0.01 * Math.Sin(t)), LearningRate = 0.05, GlobalGradNorm = 0.1,
            Parameters = parameters,
            Layers = [.. parameters.Select((p, i) => new LayerGradientStats(p.Layer, i, p.Gradient!, p.ParamNorm, p.UpdateNorm))],
            Flow = [], Activations = [], RecurrentSteps = [],
            Setup = t == 1 ? new RunSetup([new ParameterShape("0.weight", [64, 64], 64, 64, "Linear", bigDecay), new ParameterShape("1.weight", [64], 0, 0, "LayerNorm", normDecay)],
                new OptimizerSettings("SGD", 0.05, bigDecay, 0.9, null, null, false)) : null,
        };
    });

    [Fact]
    public void ADecayOnOneGroupIsJudgedOnThatGroupsWeights()
    {
        var f = Assert.Single(Doctor.Diagnose(GroupRun(0, 2), s_options), f => f.Kind == FindingKind.RegularisationDominates);
        Assert.Contains("1.weight", f.Title, StringComparison.Ordinal);
        Assert.Contains(f.Evidence, e => e.Quantity.StartsWith("norm of the group's weights (weight decay 2)", StringComparison.Ordinal) && e.Value < 0.5);
        // The same shrinking norm layer without a decay of its own (the other group's 1e-4 does not shrink its weights): not the decay's.
        Assert.DoesNotContain(Doctor.Diagnose(GroupRun(1e-4, 0), s_options), f => f.Kind == FindingKind.RegularisationDominates);
    }
}
