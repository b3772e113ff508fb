using GradFlow.Diagnostics;

namespace GradFlow.Tests.Diagnostics;

/// <summary>
/// The rules changed after the blind2 set's first measurement: a gradient tiny in every layer alike has not vanished across
/// depth.
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
}
