using GradFlow.Diagnostics;

namespace GradFlow.Tests.Diagnostics;

/// <summary>The doctor's per-step cost, without timing: a healthy step allocates nothing (fixed rings, indexed loops).</summary>
public class DoctorCostTests
{
    private static TensorStats Grad(double rms, long count) => new(count, rms * Math.Sqrt(count), rms, rms * 3, rms, 0.01, 0, 0, null);

    private static StepRecord Step(long t) => new()
    {
        Step = t, Loss = 2.3 * Math.Exp(-t / 50.0) + 0.05 * Math.Sin(t), LearningRate = 0.05, GlobalGradNorm = 0.5 + 0.05 * Math.Sin(t),
        Parameters = Enumerable.Range(0, 6).Select(i => new ParameterStats($"{i / 2}.{(i % 2 == 0 ? "weight" : "bias")}", $"{i / 2}", Grad(0.01, 4096), 8, 8e-3)).ToArray(),
        Layers = Enumerable.Range(0, 3).Select(i => new LayerGradientStats($"{i}", i, Grad(0.01, 4160), 8, 8e-3)).ToArray(),
        Flow = Enumerable.Range(0, 3).Select(i => new FlowStats($"{i}", i, 0.1, 0)).ToArray(),
        Activations = Enumerable.Range(0, 2).Select(i => new ActivationStats($"{i}r", "Relu", i, 64, 0.1, 0.05, null, 0.4, 0.6)).ToArray(),
        Setup = t == 1 ? new RunSetup(Enumerable.Range(0, 6).Select(i => new ParameterShape($"{i / 2}.{(i % 2 == 0 ? "weight" : "bias")}", i % 2 == 0 ? [64, 64] : [64], i % 2 == 0 ? 64 : 0, i % 2 == 0 ? 64 : 0, "Linear")).ToArray(),
            new OptimizerSettings("SGD", 0.05, 5e-4, 0.9, null, null, false)) : null,
    };

    [Fact]
    public void AHealthyStepAllocatesNothing()
    {
        var doctor = new Doctor(new DoctorOptions { Classes = 10 });
        var steps = Enumerable.Range(1, 400).Select(t => Step(t)).ToArray();
        for (int t = 0; t < 300; t++) doctor.Observe(steps[t]); // past every window, rings full
        int next = 300;
        var (least, seen) = TestUtil.SteadyAllocation(() => doctor.Observe(steps[next++]), limit: 0, rounds: 50);
        Assert.True(least == 0, $"a healthy step allocated {least} bytes (calls: {string.Join(", ", seen)})");
        Assert.Empty(doctor.Findings);
    }
}
