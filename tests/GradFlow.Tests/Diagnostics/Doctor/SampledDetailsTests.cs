using GradFlow.Diagnostics;

namespace GradFlow.Tests.Diagnostics;

/// <summary>
/// The activation rules on a monitor's default schedule (MonitorOptions.DetailEvery): activations come on every 5th record
/// only, and the rules must judge the same window of records, raise at the same step, and stay quiet on one bad sample.
/// </summary>
public class SampledDetailsTests
{
    private static TensorStats Grad(double rms) => new(100, rms * 10, rms, rms * 3, rms, 0, 0, 0, null);

    // A stalled three-layer run (healthy gradients); activation i of layer "1" on the records with details.
    private static StepRecord Step(long t, ActivationStats[] activations)
    {
        double[] rms = [0.02, 0.03, 0.05];
        var layers = rms.Select((r, i) => new LayerGradientStats($"{2 * i}", 2 * i, Grad(r), 10, 1e-2)).ToArray();
        return new StepRecord
        {
            Step = t, Loss = 2.3 + 0.01 * Math.Sin(t), LearningRate = 0.1, GlobalGradNorm = Math.Sqrt(rms.Sum(r => r * r * 100)),
            Parameters = layers.Select(l => new ParameterStats(l.Layer + ".weight", l.Layer, l.Gradient, l.ParamNorm, l.UpdateNorm)).ToArray(),
            Layers = layers, Flow = activations.Length > 0 ? [new FlowStats("2", 2, 0.1, 0)] : [], Activations = activations,
        };
    }

    private static IEnumerable<StepRecord> Run(int every, Func<long, ActivationStats> activation) =>
        Enumerable.Range(1, 80).Select(t => Step(t, (t - 1) % every == 0 ? [activation(t)] : []));

    private static ActivationStats Relu(double dead) => new("1", "Relu", 1, 64, dead, dead, null, 0.3, 0.5);

    private static ActivationStats Sigmoid(double saturated) => new("1", "Sigmoid", 1, 64, null, null, saturated, 0.5, 0.45);

    private static readonly DoctorOptions s_options = new() { Classes = 10 };

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    public void DeadUnitsAreFoundAtTheSameStepWhateverTheSchedule(int every)
    {
        var f = Assert.Single(Doctor.Diagnose(Run(every, _ => Relu(0.9)), s_options), f => f.Kind == FindingKind.DeadRelu);
        Assert.Equal(20, f.FirstStep); // the window of 20 records, judged on its 20 or 4 samples
        Assert.Equal(["1"], f.Layers);
        Assert.Equal(0.9, f.Evidence[0].Value);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    public void SaturationIsFoundAtTheSameStepWhateverTheSchedule(int every)
    {
        var f = Assert.Single(Doctor.Diagnose(Run(every, _ => Sigmoid(0.9)), s_options), f => f.Kind == FindingKind.SaturatedActivations);
        Assert.Equal(20, f.FirstStep);
        Assert.Equal(["1"], f.Layers);
    }

    [Fact]
    public void OneBadSampleIsNotAPersistentCondition()
    {
        // Every 5th record sampled: the sample at record 26 alone is one of four in its window.
        var findings = Doctor.Diagnose(Run(5, t => t == 26 ? Relu(0.95) : Relu(0.1)), s_options);
        Assert.DoesNotContain(findings, f => f.Kind == FindingKind.DeadRelu);
        findings = Doctor.Diagnose(Run(5, t => t == 26 ? Sigmoid(0.95) : Sigmoid(0.1)), s_options);
        Assert.DoesNotContain(findings, f => f.Kind == FindingKind.SaturatedActivations);
    }

    [Fact]
    public void AConditionThatEndsStopsBeingRaisedAtTheNextSample()
    {
        var doctor = new Doctor(s_options);
        var raised = new List<long>();
        foreach (var step in Run(5, t => Relu(t <= 41 ? 0.9 : 0.0)))
        {
            doctor.Observe(step);
            raised.Add(doctor.Findings.SingleOrDefault(f => f.Kind == FindingKind.DeadRelu)?.LastStep ?? 0);
        }
        // Raised from record 20 on, held between samples, and no longer once the sample at 46 shows the units alive.
        Assert.Equal(0, raised[18]); // records are 1-based, the list 0-based
        Assert.Equal(20, raised[19]);
        Assert.Equal(45, raised[44]);
        Assert.Equal(45, raised[^1]);
    }
}
