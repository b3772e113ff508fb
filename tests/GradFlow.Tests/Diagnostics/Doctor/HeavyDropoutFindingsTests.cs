using GradFlow.Diagnostics;

namespace GradFlow.Tests.Diagnostics;

/// <summary>
/// Heavy dropout (a rate above 0.5 in training mode, recorded in the setup) as the cause of a run that does not learn: the
/// units that die and the gradient that goes to zero on the way are its consequences, so NotLearning names the dropout and
/// DeadRelu and ZeroGradient stand aside; anything else (a moderate rate, eval mode, units dead from the start, updates
/// large enough to kill units, a setup without the field) leaves them as they were.
/// </summary>
public class HeavyDropoutFindingsTests
{
    private static readonly DoctorOptions s_options = new() { Classes = 10 };
    private static readonly OptimizerSettings s_sgd = new("SGD", 0.05, 0, 0.9, null, null, false);

    private static TensorStats Grad(double zeros) => new(1000, 0.1, 1e-3, 1e-2, 1e-3, zeros, 0, 0, null);

    // Two ReLU layers ("1", "4"), each followed by a dropout ("2", "5") at rate p; the units die from step 10 and with them
    // the gradient; the loss sits at chance throughout (or falls, when learning).
    private static StepRecord Step(long t, double p, bool training = true, bool bornDead = false, double updateRatio = 1e-3, bool learning = false,
        bool dropoutsKnown = true, bool symmetric = false)
    {
        bool dead = !symmetric && (bornDead || t >= 10);
        double zeros = dead || symmetric ? 0.99 : 0.1; // symmetric: a zero gradient from the first step, every unit alive
        var layers = new[] { "0", "3", "6" }.Select((l, i) => new LayerGradientStats(l, i, Grad(zeros), 10, 10 * updateRatio)).ToArray();
        ActivationStats Relu(string layer, int depth) => new(layer, OpNames.Relu, depth, 64, dead ? 0.98 : 0.1, dead ? 0.98 : 0.05, null, 0.1, 0.2);
        return new StepRecord
        {
            Step = t, Loss = learning ? 2.3 * Math.Exp(-t / 30.0) : 2.3 + 0.01 * Math.Sin(t), LearningRate = 0.05, GlobalGradNorm = 0.2,
            Parameters = layers.Select(l => new ParameterStats(l.Layer + ".weight", l.Layer, l.Gradient, l.ParamNorm, l.UpdateNorm)).ToArray(),
            Layers = layers, Flow = [], Activations = [Relu("1", 1), Relu("4", 2)],
            Setup = t == 1
                ? new RunSetup(layers.Select(l => new ParameterShape(l.Layer + ".weight", [64, 64], 64, 64, "Linear")).ToArray(), s_sgd,
                    dropoutsKnown ? [new DropoutLayer("2", "Dropout", p, training, "1"), new DropoutLayer("5", "Dropout", p, training, "4")] : null)
                : null,
        };
    }

    private static IReadOnlyList<Finding> Run(Func<long, StepRecord> step) =>
        Doctor.Diagnose(Enumerable.Range(1, 100).Select(t => step(t)), s_options).Where(f => f.Severity >= Severity.Warning).ToList();

    [Fact]
    public void UnitsThatDieUnderHeavyDropoutAreNamedAsItsConsequence()
    {
        var findings = Run(t => Step(t, 0.95));
        var finding = Assert.Single(findings);
        Assert.Equal(FindingKind.NotLearning, finding.Kind);
        Assert.Contains("heavy dropout", finding.Title, StringComparison.Ordinal);
        var rate = finding.Evidence.First(e => e.Quantity.StartsWith("dropout rate p", StringComparison.Ordinal));
        Assert.Equal((0.95, HeavyDropout.Rate), (rate.Value, rate.Threshold));
        Assert.Contains("Srivastava", rate.Source, StringComparison.Ordinal);
        Assert.Equal(19, finding.Evidence.Single(e => e.Quantity.Contains("p/(1-p)", StringComparison.Ordinal)).Value, 6);
        // Where it sits: each dead layer's output goes through one of the dropouts.
        Assert.Contains(finding.Evidence, e => e.Quantity == "dead units in 4, whose output 5 drops at p 0.95" && e.Value == 0.98);
        Assert.Contains("0.1-0.5", finding.Fixes[0].Action, StringComparison.Ordinal);
        Assert.Contains("keep_prob", finding.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void DropoutAtOneIsSaidToPassNothing()
    {
        var finding = Assert.Single(Run(t => Step(t, 1.0)));
        Assert.Equal(FindingKind.NotLearning, finding.Kind);
        Assert.Contains("passes nothing", finding.Explanation, StringComparison.Ordinal);
        Assert.Equal(double.PositiveInfinity, finding.Evidence.Single(e => e.Quantity.Contains("p/(1-p)", StringComparison.Ordinal)).Value);
    }

    public static TheoryData<string, FindingKind, Func<long, StepRecord>> NotExplained => new()
    {
        { "a moderate rate (Srivastava et al.'s 0.5 for hidden units)", FindingKind.DeadRelu, t => Step(t, 0.5) },
        { "dropout in eval mode", FindingKind.DeadRelu, t => Step(t, 0.95, training: false) },
        { "units dead from the first step (the initialisation's)", FindingKind.DeadRelu, t => Step(t, 0.95, bornDead: true) },
        { "updates of 20% of the weights (the rate's)", FindingKind.DeadRelu, t => Step(t, 0.95, updateRatio: 0.2) },
        { "a setup without the dropouts (an old run log)", FindingKind.DeadRelu, t => Step(t, 0.95, dropoutsKnown: false) },
        { "a gradient zero from the first step (a symmetric start)", FindingKind.ZeroGradient, t => Step(t, 0.95, symmetric: true) },
    };

    [Theory]
    [MemberData(nameof(NotExplained))]
    public void OtherwiseDeadUnitsAndTheZeroGradientAreFoundAsBefore(string why, FindingKind expected, Func<long, StepRecord> step)
    {
        var findings = Run(step);
        Assert.True(findings.Any(f => f.Kind == expected), why);
        Assert.DoesNotContain(findings, f => f.Kind == FindingKind.NotLearning && f.Title.Contains("dropout", StringComparison.Ordinal));
    }

    [Fact]
    public void HeavyDropoutInARunThatLearnsIsNoFinding()
    {
        // A rate alone is no fault (a 2-layer LSTM at 0.9 between its layers learns): the rule needs the loss to stand still.
        Assert.Empty(Run(t => Step(t, 0.9, learning: true)));
    }
}
