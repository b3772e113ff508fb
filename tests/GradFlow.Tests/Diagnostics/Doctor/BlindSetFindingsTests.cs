using GradFlow.Diagnostics;
using GradFlow.NN;

namespace GradFlow.Tests.Diagnostics;

/// <summary>
/// The rules changed after the blind set's first measurement: a schedule that cut the rate before the loss fell, decoupled
/// decay too weak to matter, and a sigmoid taken in the loss (outside the model) that is an output, not a hidden layer.
/// </summary>
public class BlindSetFindingsTests
{
    private static TensorStats Grad(double rms, long count) => new(count, rms * Math.Sqrt(count), rms, rms * 3, rms, 0, 0, 0, null);

    private static readonly OptimizerSettings s_sgd = new("SGD", 0.05, 0, 0.9, null, null, false);

    // A one-layer run: loss, learning rate and the layer's update/weight ratio per step (weights of norm 8).
    private static IEnumerable<StepRecord> Run(int steps, Func<int, double> loss, Func<int, double> lr, Func<int, double> updateRatio, RunSetup? setup = null) =>
        Enumerable.Range(1, steps).Select(t => new StepRecord
        {
            Step = t, Loss = loss(t), LearningRate = lr(t), GlobalGradNorm = 0.1,
            Parameters = [new ParameterStats("0.weight", "0", Grad(0.1 / 64, 4096), 8, 8 * updateRatio(t))],
            Layers = [new LayerGradientStats("0", 0, Grad(0.1 / 64, 4096), 8, 8 * updateRatio(t))], Flow = [], Activations = [],
            Setup = t == 1 ? setup ?? new RunSetup([new("0.weight", [64, 64], 64, 64, "Linear")], s_sgd) : null,
        });

    private static readonly DoctorOptions s_options = new() { Classes = 10 };

    [Fact]
    public void ARateCutBeforeTheLossFellIsTooLowNotNotLearning()
    {
        // StepLR(10, 0.5) stepped every step: 128x below the peak by step 70 while the loss sits at 95% of chance.
        var findings = Doctor.Diagnose(Run(150, _ => 2.2, t => 0.05 * Math.Pow(0.5, t / 10), _ => 1e-3), s_options);
        var f = Assert.Single(findings, f => f.Kind == FindingKind.LearningRateTooLow);
        Assert.DoesNotContain(findings, f => f.Kind == FindingKind.NotLearning);
        var cut = Assert.Single(f.Evidence, e => e.Quantity.StartsWith("peak learning rate", StringComparison.Ordinal));
        Assert.True(cut.Value >= 100, $"cut {cut.Value}");
        Assert.InRange(f.FirstStep, 70, 100);
        Assert.Contains("scheduler", f.Fixes[0].Action);
    }

    [Fact]
    public void AnnealingAfterTheLossFellIsQuiet()
    {
        // The same cut, but the loss came down first (cosine or step decay at the end of a run that learnt).
        var findings = Doctor.Diagnose(Run(150, t => 2.3 * Math.Exp(-t / 15.0) + 0.3, t => 0.05 * Math.Pow(0.5, t / 10), _ => 1e-3), s_options);
        Assert.DoesNotContain(findings, f => f.Kind == FindingKind.LearningRateTooLow);
    }

    [Fact]
    public void AFlatLossAtAConstantRateIsStillNotLearning()
    {
        var findings = Doctor.Diagnose(Run(150, _ => 2.3, _ => 0.05, _ => 1e-3), s_options);
        Assert.Contains(findings, f => f.Kind == FindingKind.NotLearning);
        Assert.DoesNotContain(findings, f => f.Kind == FindingKind.LearningRateTooLow);
    }

    [Theory]
    [InlineData(0.01, false)] // AdamW's usual decay: 1e-5 of the weights a step, 0.02% over a window
    [InlineData(10, true)]    // 1% a step, 18% over a window of 20
    public void DecoupledDecayMustBeAbleToShrinkTheWeightsToDominate(double weightDecay, bool dominates)
    {
        // The gradient's part of the update has vanished (a saturated output passes none), so decay is its whole update.
        var adamW = new OptimizerSettings("AdamW", 1e-3, weightDecay, null, 0.9, 0.999, true);
        var setup = new RunSetup([new("0.weight", [64, 64], 64, 64, "Linear")], adamW);
        var findings = Doctor.Diagnose(Run(100, _ => 2.3, _ => 1e-3, _ => 1e-3 * weightDecay, setup), s_options);
        Assert.Equal(dominates, findings.Any(f => f.Kind == FindingKind.RegularisationDominates));
    }

    // SGD without weight decay; the weights' norm falls 3% a step for 40 steps, the update norm `inwardCosine` x larger than
    // the fall would need (1: every update points at the origin), and the loss sits at chance.
    private static IEnumerable<StepRecord> Pulled(double inwardCosine) => Enumerable.Range(1, 80).Select(t =>
    {
        double norm = 8 * Math.Pow(0.97, Math.Min(t, 40)), fall = t <= 40 ? norm / 0.97 - norm : 0.01 * norm;
        double update = t <= 40 ? fall / inwardCosine : fall;
        return new StepRecord
        {
            Step = t, Loss = 2.3, LearningRate = 0.05, GlobalGradNorm = 0.1,
            Parameters = [new ParameterStats("0.weight", "0", Grad(0.1 / 64, 4096), norm, update)],
            Layers = [new LayerGradientStats("0", 0, Grad(0.1 / 64, 4096), norm, update)], Flow = [], Activations = [],
            Setup = t == 1 ? new RunSetup([new("0.weight", [64, 64], 64, 64, "Linear")], s_sgd) : null,
        };
    });

    [Theory]
    [InlineData(1.0, true)]  // the whole update is the pull to zero: an L2 term in the loss
    [InlineData(0.3, false)] // the weights shrink, but most of each update goes elsewhere (a data gradient)
    public void APullToZeroWithoutWeightDecayIsAPenaltyInTheLoss(double inwardCosine, bool dominates)
    {
        var findings = Doctor.Diagnose(Pulled(inwardCosine), s_options);
        var f = findings.SingleOrDefault(f => f.Kind == FindingKind.RegularisationDominates);
        Assert.Equal(dominates, f is not null);
        if (f is not null) Assert.Contains("penalty added to the loss", f.Fixes[0].Action);
    }

    [Fact]
    public void ASigmoidTakenInTheLossIsAnOutputNotAHiddenLayer()
    {
        using var _ = Generator.UseAsDefault(new Generator(3));
        var model = new Sequential(new Linear(6, 8), new Sigmoid(), new Linear(8, 3));
        var probe = new GraphProbe(steps: 1);
        using (Autograd.AddObserver(probe))
        {
            var x = Tensor.Randn([4, 6]);
            var p = model.Call(x).Sigmoid(); // a hand-written BCE's sigmoid, in the root scope
            (-(p.Log() + (1.0 - p).Log()).Mean()).Backward();
        }
        Assert.Equal([""], probe.OutputActivationScopes); // the hidden sigmoid ("1") feeds the last Linear
    }
}
