using GradFlow.Diagnostics;

namespace GradFlow.Tests.Diagnostics;

/// <summary>Findings that depend on what the model is: the setup the monitor records (shapes, fans, layer types, optimiser).</summary>
public class ArchitectureFindingsTests
{
    private static TensorStats Grad(double rms, long count) => new(count, rms * Math.Sqrt(count), rms, rms * 3, rms, 0, 0, 0, null);

    // Steps of a two-layer model whose gradient norm grows a hundredfold per 10 steps while the loss rises.
    private static IEnumerable<StepRecord> Exploding(RunSetup setup, double weightNorm = 8) => Enumerable.Range(1, 60).Select(t =>
    {
        double rms = 0.01 * Math.Pow(10, Math.Max(0, t - 20) / 5.0);
        var ps = setup.Parameters.Select(p => new ParameterStats(p.Name, GradientMonitor.LayerOf(p.Name), Grad(rms, p.Count), weightNorm, weightNorm * 1e-3)).ToArray();
        var layers = ps.GroupBy(p => p.Layer).Select((g, i) => new LayerGradientStats(g.Key, i, Grad(rms, g.Sum(p => p.Gradient!.Count)), weightNorm, weightNorm * 1e-3)).ToArray();
        return new StepRecord
        {
            Step = t, Loss = t < 25 ? 2.3 : 2.3 * Math.Pow(1.2, t - 25), LearningRate = 0.1, GlobalGradNorm = rms * Math.Sqrt(ps.Sum(p => p.Gradient!.Count)),
            Parameters = ps, Layers = layers, Flow = [], Activations = [], Setup = t == 1 ? setup : null,
        };
    });

    private static readonly OptimizerSettings s_sgd = new("SGD", 0.1, 0, 0.9, null, null, false);

    [Fact]
    public void ExplodingFixesFollowTheArchitecture()
    {
        var rnn = new RunSetup([new("rnn.weight_ih_l0", [32, 1], 1, 32, "RNN"), new("rnn.weight_hh_l0", [32, 32], 32, 32, "RNN"), new("head.weight", [2, 32], 32, 2, "Linear")], s_sgd);
        var mlp = new RunSetup([new("0.weight", [64, 64], 64, 64, "Linear"), new("2.weight", [10, 64], 64, 10, "Linear")], s_sgd);
        var recurrent = Assert.Single(Doctor.Diagnose(Exploding(rnn)), f => f.Kind == FindingKind.ExplodingGradients);
        var feedForward = Assert.Single(Doctor.Diagnose(Exploding(mlp)), f => f.Kind == FindingKind.ExplodingGradients);
        Assert.StartsWith("clip the gradient norm at max norm", recurrent.Fixes[0].Action);
        Assert.Contains(recurrent.Fixes, f => f.Action.Contains("LSTM or GRU") && f.Action.Contains("rnn"));
        Assert.Contains(recurrent.Fixes, f => f.Action.Contains("orthogonally"));
        Assert.DoesNotContain(feedForward.Fixes, f => f.Action.Contains("LSTM") || f.Action.Contains("recurrent"));
        Assert.Contains(feedForward.Fixes, f => f.Action.Contains("BatchNorm"));
        Assert.Contains(feedForward.Fixes, f => f.Action.Contains("Kaiming"));
        Assert.Contains("through time", recurrent.Explanation);
    }

    [Fact]
    public void WeightsFarFromTheirFanInScaleArePoorInitialisation()
    {
        // RMS 8 / sqrt(4096) = 0.125, times sqrt(fan-in 64) = 1: a sound start. RMS 0.0125 gives 0.1, below 0.19.
        var mlp = new RunSetup([new("0.weight", [64, 64], 64, 64, "Linear"), new("2.weight", [10, 64], 64, 10, "Linear")], s_sgd);
        Assert.DoesNotContain(Doctor.Diagnose(Exploding(mlp)), f => f.Kind == FindingKind.PoorInitialisation);
        var f = Assert.Single(Doctor.Diagnose(Exploding(mlp, weightNorm: 0.8)), f => f.Kind == FindingKind.PoorInitialisation);
        var e = Assert.Single(f.Evidence, e => e.Quantity.StartsWith("weight RMS x sqrt(fan-in)", StringComparison.Ordinal));
        Assert.Equal(0.1, e.Value, 1e-9);
        Assert.Equal(0.577 / 3, e.Threshold, 1e-9);
        // An embedding is a lookup: its N(0, 1) rows are not judged against a fan-in.
        var embed = new RunSetup([new("embed.weight", [12, 64], 64, 12, "Embedding"), new("2.weight", [10, 64], 64, 10, "Linear")], s_sgd);
        Assert.DoesNotContain(Doctor.Diagnose(Exploding(embed, weightNorm: 0.8)), f => f.Evidence.Any(e => e.Quantity.Contains("embed.weight")));
    }

    [Fact]
    public void DecayThatOutweighsTheGradientIsRegularisationDominating()
    {
        // wd |W| = 1 x 8 against |g| = 0.1: the decay is 99% of the update while the loss stalls.
        var setup = new RunSetup([new("0.weight", [64, 64], 64, 64, "Linear")], s_sgd with { WeightDecay = 1 });
        var steps = Enumerable.Range(1, 60).Select(t => new StepRecord
        {
            Step = t, Loss = 2.3, LearningRate = 0.1, GlobalGradNorm = 0.1,
            Parameters = [new ParameterStats("0.weight", "0", Grad(0.1 / 64, 4096), 8, 8e-3)],
            Layers = [new LayerGradientStats("0", 0, Grad(0.1 / 64, 4096), 8, 8e-3)], Flow = [], Activations = [], Setup = t == 1 ? setup : null,
        });
        var f = Assert.Single(Doctor.Diagnose(steps, new DoctorOptions { Classes = 10 }), f => f.Kind == FindingKind.RegularisationDominates);
        var share = Assert.Single(f.Evidence, e => e.Quantity.StartsWith("weight decay's part", StringComparison.Ordinal));
        Assert.Equal(8 / 8.1, share.Value, 1e-9);
        Assert.Contains("weight decay 1 with SGD", f.Explanation);
        Assert.Contains("lower the weight decay to 1e-3", f.Fixes[0].Action); // a tenth of the gradient part: 1 x (0.1/8) / 10 = 1.25e-3
    }
}
