using GradFlow.Diagnostics;

namespace GradFlow.Tests.Reporting;

/// <summary>Step records with every field set (and awkward values) and a field-by-field comparison.</summary>
internal static class RunLogTestData
{
    public static StepRecord Record(long step)
    {
        var h = new Log2Histogram { Zero = 3, NonFinite = 1 };
        h.Positive[0] = 2;
        h.Positive[Log2Histogram.BucketCount - 1] = 5;
        h.Negative[Log2Histogram.BucketOf(-7)] = 11 + step;
        var grad = new TensorStats(22 + step, 1.5 + step, 0.1, 1e300, double.Epsilon, 3.0 / 22, 0, 1, h);
        var noHistogram = grad with { Histogram = null, L2Norm = double.PositiveInfinity, NaNCount = 4, MeanAbs = double.NaN };
        return new StepRecord
        {
            Step = step,
            Loss = step % 2 == 0 ? 0.1 * step + 1e-17 : null,
            LearningRate = 3e-4,
            GlobalGradNorm = step == 3 ? double.NaN : 1.0 / 3,
            ClippedGradNorm = step % 2 == 0 ? -0.0 : null,
            Parameters =
            [
                new ParameterStats("enc.\"quoted\"\nname.weight", "enc.\"quoted\"\nname", grad, 2.5, 0.001),
                new ParameterStats("bias", "", null, 0, null),
                new ParameterStats("dec.é.weight", "dec.é", noHistogram, double.MaxValue, double.NegativeInfinity),
            ],
            Layers = [new LayerGradientStats("enc", 0, grad, 2.5, null), new LayerGradientStats("", 1_000_001, noHistogram, 1, 1e-3)],
            Flow = [new FlowStats("enc", 0, 0.25, 0), new FlowStats("dec", 1, double.NaN, long.MaxValue)],
            Activations =
            [
                new ActivationStats("enc", "Relu", 0, 64, 0.5, 0.25, null, 0.3, 0.7),
                new ActivationStats("dec", "Tanh", 1, 8, null, null, 0.125, -0.1, 1.1),
            ],
            // Every other step has recurrent layers: a line without the field reads as none (logs from before it existed).
            RecurrentSteps = step % 2 == 0 ? [] :
            [
                new RecurrentStepStats("rnn", 0, 0, false, [1e-9, 0.5, double.NaN, 2.25]),
                new RecurrentStepStats("rnn", 0, 1, true, [double.PositiveInfinity, 3]),
            ],
            Curvature = (step % 3) switch
            {
                0 => null,
                1 => new SharpnessProbeResult(step, "SGD", 0.05, 0.7, 38.5, null, 40, "2/lr", 38.5 / 40, 17, true),
                // Adam's default probe measures the preconditioned sharpness only: "sharpness" is then absent (schema 2).
                _ => new SharpnessProbeResult(step, "Adam", 1e-3, double.NaN, step % 4 == 2 ? null : 2.5, 3.8e4, 3.8e4, "(2+2 beta1)/((1-beta1) lr) on lambda_max(P^-1 H)", 1, 30, false),
            },
            Setup = (step % 4) switch
            {
                1 => new RunSetup([new ParameterShape("enc.weight", [64, 1, 3, 3], 9, 576, "Conv2d", 0.01), new ParameterShape("enc.bias", [64], 0, 0, WeightDecay: 0)],
                    new OptimizerSettings("AdamW", 1e-3, 0.01, null, 0.9, 0.999, true),
                    [new DropoutLayer("enc.2", "Dropout", 0.95, true, "enc.1"), new DropoutLayer("attn", "MultiheadAttention", 0.1, false)]),
                // No dropout module (empty) and unknown dropouts (null, as a log from before the field) are told apart.
                3 => new RunSetup([new ParameterShape("enc.weight", [64, 1, 3, 3], 9, 576, "Conv2d")], null, step % 8 == 3 ? [] : null),
                _ => null,
            },
        };
    }

    public static void AssertSame(StepRecord expected, StepRecord actual)
    {
        Assert.Equal(expected.Step, actual.Step);
        Assert.Equal(expected.Loss, actual.Loss);
        Assert.Equal(expected.LearningRate, actual.LearningRate);
        Assert.Equal(expected.GlobalGradNorm, actual.GlobalGradNorm);
        Assert.Equal(expected.ClippedGradNorm, actual.ClippedGradNorm);
        Assert.Equal(expected.Parameters.Count, actual.Parameters.Count);
        for (int i = 0; i < expected.Parameters.Count; i++)
        {
            var (e, a) = (expected.Parameters[i], actual.Parameters[i]);
            Assert.Equal(e with { Gradient = null }, a with { Gradient = null });
            AssertSame(e.Gradient, a.Gradient);
        }
        Assert.Equal(expected.Layers.Count, actual.Layers.Count);
        for (int i = 0; i < expected.Layers.Count; i++)
        {
            var (e, a) = (expected.Layers[i], actual.Layers[i]);
            Assert.Equal(e with { Gradient = a.Gradient }, a);
            AssertSame(e.Gradient, a.Gradient);
        }
        Assert.Equal(expected.Flow, actual.Flow);
        Assert.Equal(expected.Activations, actual.Activations);
        Assert.Equal(expected.RecurrentSteps.Count, actual.RecurrentSteps.Count);
        for (int i = 0; i < expected.RecurrentSteps.Count; i++)
        {
            var (e, a) = (expected.RecurrentSteps[i], actual.RecurrentSteps[i]);
            Assert.Equal((e.Layer, e.Depth, e.RecurrentLayer, e.Reverse), (a.Layer, a.Depth, a.RecurrentLayer, a.Reverse));
            Assert.Equal(e.GradNorms, a.GradNorms);
        }
        Assert.Equal(expected.Curvature, actual.Curvature);
        Assert.Equal(expected.Setup is null, actual.Setup is null);
        if (expected.Setup is { } s)
        {
            Assert.Equal(s.Optimizer, actual.Setup!.Optimizer);
            Assert.Equal(s.Dropouts is null, actual.Setup.Dropouts is null);
            if (s.Dropouts is { } dropouts) Assert.Equal(dropouts, actual.Setup.Dropouts!);
            Assert.Equal(s.Parameters.Count, actual.Setup.Parameters.Count);
            for (int i = 0; i < s.Parameters.Count; i++)
            {
                Assert.Equal(s.Parameters[i].Shape, actual.Setup.Parameters[i].Shape);
                Assert.Equal(s.Parameters[i] with { Shape = [] }, actual.Setup.Parameters[i] with { Shape = [] });
            }
        }
    }

    private static void AssertSame(TensorStats? e, TensorStats? a)
    {
        if (e is null) { Assert.Null(a); return; }
        Assert.NotNull(a);
        Assert.Equal(e with { Histogram = null }, a with { Histogram = null });
        if (e.Histogram is null) { Assert.Null(a.Histogram); return; }
        Assert.NotNull(a.Histogram);
        Assert.Equal(e.Histogram.Positive, a.Histogram.Positive);
        Assert.Equal(e.Histogram.Negative, a.Histogram.Negative);
        Assert.Equal(e.Histogram.Zero, a.Histogram.Zero);
        Assert.Equal(e.Histogram.NonFinite, a.Histogram.NonFinite);
    }
}
