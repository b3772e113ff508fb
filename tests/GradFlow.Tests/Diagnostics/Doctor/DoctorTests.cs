using GradFlow.Diagnostics;
using GradFlow.NN;
using GradFlow.Optim;

namespace GradFlow.Tests.Diagnostics;

public class DoctorTests
{
    private static TensorStats Grad(double rms, long count = 100, long nan = 0) =>
        new(count, rms * Math.Sqrt(count), rms, rms * 3, rms, 0, nan, 0, null);

    // A synthetic step of a three-layer network: per-layer gradient RMS from the input side to the loss side.
    private static StepRecord Step(long step, double loss, double[] rms, double updateRatio = 1e-3, double weightNorm = 10, long nan = 0)
    {
        var layers = rms.Select((r, i) => new LayerGradientStats($"{2 * i}", 2 * i, Grad(r, nan: i == 0 ? nan : 0), weightNorm, weightNorm * updateRatio)).ToArray();
        var parameters = layers.Select(l => new ParameterStats(l.Layer + ".weight", l.Layer, l.Gradient, l.ParamNorm, l.UpdateNorm)).ToArray();
        return new StepRecord
        {
            Step = step, Loss = loss, LearningRate = 0.1, GlobalGradNorm = nan > 0 ? double.NaN : Math.Sqrt(rms.Sum(r => r * r * 100)),
            Parameters = parameters, Layers = layers, Flow = [], Activations = [],
        };
    }

    private static IEnumerable<StepRecord> Run(int steps, Func<int, double> loss, Func<int, double[]> rms) =>
        Enumerable.Range(1, steps).Select(t => Step(t, loss(t), rms(t)));

    [Fact]
    public void AHealthyRunRaisesNothing()
    {
        var findings = Doctor.Diagnose(Run(100, t => 2.3 * Math.Exp(-t / 30.0) + 0.05 * Math.Sin(t), _ => [0.02, 0.03, 0.05]));
        Assert.Empty(findings);
    }

    [Fact]
    public void VanishingGradientsAreFoundWhenTheLossStalls()
    {
        var findings = Doctor.Diagnose(Run(60, t => 2.3 + 0.01 * Math.Sin(t), _ => [1e-7, 1e-5, 1e-2]), new DoctorOptions { Classes = 10 });
        var f = Assert.Single(findings, f => f.Kind == FindingKind.VanishingGradients);
        Assert.Equal(Severity.Warning, f.Severity);
        Assert.Equal(20, f.FirstStep); // after one window of persistence
        var ratio = f.Evidence[0];
        Assert.Equal(1e-5, ratio.Value, 1e-9);
        Assert.Equal(1e-2, ratio.Threshold); // the loss is flat: AUTOTRAINER's 1e-3 relaxed to 1e-2
        Assert.Contains("AUTOTRAINER", ratio.Source);
        Assert.NotEmpty(f.Fixes);
        Assert.Equal(1, f.Fixes[0].Rank);
        Assert.Contains(f.Layers, l => l == "0");
    }

    [Fact]
    public void AModerateAttenuationCountsOnlyWhileTheLossIsFlat()
    {
        double[] rms = [4e-5, 1e-3, 1e-2]; // 4e-3: above AUTOTRAINER's 1e-3, below the flat-loss 1e-2
        var flat = Doctor.Diagnose(Run(60, t => 2.3 + 0.01 * Math.Sin(t), _ => rms), new DoctorOptions { Classes = 10 });
        Assert.Contains(flat, f => f.Kind == FindingKind.VanishingGradients);
        var slowlyFalling = Doctor.Diagnose(Run(60, t => 2.3 - 0.02 * t, _ => rms), new DoctorOptions { Classes = 10 });
        Assert.DoesNotContain(slowlyFalling, f => f.Kind == FindingKind.VanishingGradients);
    }

    [Fact]
    public void TheSameGradientsWithoutASymptomRaiseNothing()
    {
        // The gate: a network that learns well despite a small first-layer gradient is not told it has a problem.
        var findings = Doctor.Diagnose(Run(60, t => 2.3 * Math.Exp(-t / 10.0), _ => [1e-7, 1e-5, 1e-2]));
        Assert.DoesNotContain(findings, f => f.Kind == FindingKind.VanishingGradients);
    }

    [Fact]
    public void ANonFiniteLossIsAnErrorAtItsStep()
    {
        var steps = Run(40, t => t < 30 ? 2.3 * Math.Exp(-t / 30.0) : double.NaN, _ => [0.02, 0.03, 0.05]).ToList();
        steps[29] = Step(30, double.NaN, [0.02, 0.03, 0.05], nan: 3);
        var f = Assert.Single(Doctor.Diagnose(steps), f => f.Kind == FindingKind.NonFiniteValues);
        Assert.Equal(Severity.Error, f.Severity);
        Assert.Equal(30, f.FirstStep);
    }

    [Fact]
    public void AFindingIsRaisedOnceThenEscalated()
    {
        var doctor = new Doctor(new DoctorOptions { Window = 10, EscalateAfterWindows = 2 });
        var raised = new List<Finding>();
        doctor.FindingRaised += raised.Add;
        foreach (var s in Run(60, _ => 2.3, _ => [1e-7, 1e-5, 1e-2])) doctor.Observe(s);
        var vanishing = raised.Where(f => f.Kind == FindingKind.VanishingGradients).ToList();
        Assert.Equal(2, vanishing.Count); // raised, then escalated once (warning -> error after 2 windows held)
        Assert.Equal(Severity.Warning, vanishing[0].Severity);
        Assert.Equal(Severity.Error, vanishing[1].Severity);
        Assert.Equal(vanishing[0].FirstStep, vanishing[1].FirstStep);
        Assert.Single(doctor.Findings, f => f.Kind == FindingKind.VanishingGradients);
    }

    [Fact]
    public void CurvatureFlagsARateAboveTheStabilityBound()
    {
        // lambda_max * lr = 3 > 2 with a rising loss: too high even though the update ratio alone would not say so.
        var steps = Run(30, t => 1.0 + 0.2 * t, _ => [0.02, 0.03, 0.05]).ToList();
        var findings = Doctor.Diagnose(steps, curvature: [new CurvatureSample(1, LambdaMax: 30, LambdaMin: null)]);
        var f = Assert.Single(findings, f => f.Kind == FindingKind.LearningRateTooHigh);
        Assert.Contains(f.Evidence, e => e.Quantity == "lambda_max * lr" && e.Value == 3);
        Assert.Contains("0.03", f.Fixes[0].Action); // 1 / lambda_max
    }

    // Early losses in the shape of two benchmark runs: the CLI's residual sigmoid demo (momentum overshoots for four steps
    // with huge updates, then it learns) and a transformer at Adam lr 0.5 (thrown forty times above its start).
    private static readonly double[] s_overshoot = [3.1, 8.6, 19.9, 30.2, 24.7, 21, 18.6];
    private static readonly double[] s_blowUp = [0.73, 3.5, 30, 16, 5, 1.0];

    private static IEnumerable<StepRecord> Early(double[] start, int steps, Func<int, double> after) => Enumerable.Range(1, steps).Select(t =>
        Step(t, t <= start.Length ? start[t - 1] : after(t), [0.02, 0.03, 0.05], updateRatio: t <= 5 ? 0.7 : 1e-3));

    [Fact]
    public void AnEarlyOvershootThatRecoversIsNotARateProblem()
    {
        // Regression: the first loss alone counted as "the best so far", so the recovery from the overshoot looked like a
        // fourfold rise and the run was told its rate diverged; it then learned to a tenth of its start.
        var findings = Doctor.Diagnose(Early(s_overshoot, 200, t => 18.6 * Math.Exp(-(t - 7) / 30.0) + 0.3), new DoctorOptions { Classes = 10 });
        Assert.Empty(findings);
    }

    [Fact]
    public void ABlowUpFollowedByAFlatLossIsARateProblem()
    {
        var findings = Doctor.Diagnose(Early(s_blowUp, 120, t => 0.69 + 0.02 * Math.Sin(t)), new DoctorOptions { Classes = 2 });
        var f = Assert.Single(findings, f => f.Kind == FindingKind.LearningRateTooHigh);
        Assert.Contains("blew up", f.Title);
        Assert.Equal(0.7, f.Evidence[0].Value, 1e-9);
        Assert.True(f.FirstStep > 40, $"judged once the loss had been flat for a window, at step {f.FirstStep}");
    }

    [Fact]
    public void BadOptionsAndInputAreRejected()
    {
        Assert.Throws<ArgumentException>(() => new Doctor(new DoctorOptions { Window = 2 }));
        Assert.Throws<ArgumentException>(() => new Doctor(new DoctorOptions { Persistence = 0 }));
        Assert.Throws<ArgumentException>(() => new Doctor(new DoctorOptions { Classes = 1 }));
        Assert.Throws<ArgumentNullException>(() => Doctor.Diagnose(null!));
        Assert.Throws<ArgumentException>(() => new Doctor().AddCurvature(new CurvatureSample(1, double.NaN, null)));
    }

    [Fact]
    public void OnlineProbesSeeASoftmaxFedToCrossEntropy()
    {
        using var seeded = Generator.UseAsDefault(new Generator(3)); // not the shared default: tests run side by side
        var model = new Sequential(new Linear(4, 8), new ReLU(), new Linear(8, 3), new Softmax(1));
        var optimizer = new SGD(model.Parameters(), 0.1);
        using var monitor = GradientMonitor.Attach(model, optimizer);
        using var doctor = Doctor.Attach(monitor);
        var x = Tensor.Randn([16, 4], generator: new Generator(1));
        var y = Tensor.FromArray(Enumerable.Range(0, 16).Select(i => (long)(i % 3)).ToArray());
        for (int i = 0; i < 3; i++)
        {
            optimizer.ZeroGrad();
            Functional.CrossEntropy(model.Call(x), y).Backward();
            optimizer.Step();
        }
        var f = Assert.Single(doctor.Findings, f => f.Kind == FindingKind.ProbabilitiesIntoLogitLoss);
        Assert.Equal(Severity.Error, f.Severity);
        Assert.Contains("Softmax", f.Title);
        Assert.Equal(1, f.FirstStep);
    }
}
