using GradFlow.Diagnostics;
using GradFlow.NN;
using GradFlow.Optim;
using GradFlow.Reporting;

namespace GradFlow.Tests.Diagnostics;

public class GradientsThroughTimeTests
{
    // A step of a recurrent model whose ||dL/dh_t|| is `factor`^(T-1-t) in time order (the gradient enters at the last step).
    private static StepRecord Step(long step, double loss, double factor, int steps = 20, bool reverse = false)
    {
        var grad = new TensorStats(100, 0.1, 0.01, 0.05, 0.01, 0, 0, 0, null);
        var layers = new[] { new LayerGradientStats("rnn", 0, grad, 5, 5e-3), new LayerGradientStats("head", 1, grad, 5, 5e-3) };
        var norms = Enumerable.Range(0, steps).Select(t => Math.Pow(factor, reverse ? t : steps - 1 - t)).ToArray();
        return new StepRecord
        {
            Step = step, Loss = loss, LearningRate = 0.1, GlobalGradNorm = 0.14,
            Parameters = layers.Select(l => new ParameterStats(l.Layer + ".weight", l.Layer, l.Gradient, l.ParamNorm, l.UpdateNorm)).ToArray(),
            Layers = layers, Flow = [], Activations = [],
            RecurrentSteps = [new RecurrentStepStats("rnn", 0, 0, reverse, norms)],
        };
    }

    private static IReadOnlyList<Finding> Diagnose(Func<int, double> loss, double factor, bool reverse = false) =>
        Doctor.Diagnose(Enumerable.Range(1, 80).Select(t => Step(t, loss(t), factor, reverse: reverse)), new DoctorOptions { Classes = 2 });

    private static double Stalled(int t) => 0.69 + 0.01 * Math.Sin(t);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void VanishingThroughTimeNamesTheLayerAndTheFirstSteps(bool reverse)
    {
        // 0.5 per step: the first two steps run get 0.5^18 ~ 4e-6 of the last two, below 1e-3.
        var f = Assert.Single(Diagnose(Stalled, 0.5, reverse));
        Assert.Equal(FindingKind.VanishingGradients, f.Kind);
        Assert.Equal(["rnn"], f.Layers);
        Assert.Equal(reverse ? [18, 19] : [0, 1], f.TimeSteps); // T/8 = 2 steps at each end
        Assert.Contains("through time", f.Title, StringComparison.Ordinal);
        var ratio = f.Evidence[0];
        Assert.Equal(1e-3, ratio.Threshold);
        Assert.InRange(ratio.Value, 1e-6, 1e-5);
        Assert.Equal(0.5, f.Evidence[1].Value, 6); // the per-step factor
        Assert.Contains(f.Fixes, x => x.Action.Contains("Init.Orthogonal", StringComparison.Ordinal));
        Assert.Contains(f.Fixes, x => x.Action.StartsWith("truncate backpropagation through time to about 9 steps", StringComparison.Ordinal)); // 0.5^9 ~ 2e-3
    }

    [Fact]
    public void ExplodingThroughTimeIsFound()
    {
        // Growing from the very first step, before any update: the start is named too (PoorInitialisation, through time).
        var findings = Diagnose(Stalled, 1.5);
        Assert.Equal([FindingKind.ExplodingGradients, FindingKind.PoorInitialisation], findings.Select(x => x.Kind).Order());
        var f = findings.Single(x => x.Kind == FindingKind.ExplodingGradients);
        Assert.Equal(70, f.Evidence[0].Threshold);
        Assert.Contains(f.Fixes, x => x.Action.StartsWith("clip the gradient norm at max norm", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(1.5)]
    public void ALearningRunIsLeftAlone(double factor) => Assert.Empty(Diagnose(t => 0.69 * Math.Exp(-t / 20.0) + 0.01, factor));

    [Fact]
    public void AGentleDecayIsNotVanishing() =>
        // 0.8^18 ~ 2e-2, above 1e-3: the stalled loss is then NotLearning's to explain, not the gradient's.
        Assert.DoesNotContain(Diagnose(Stalled, 0.8), f => f.Kind is FindingKind.VanishingGradients or FindingKind.ExplodingGradients);

    [Fact]
    public void ARunLogIsDiagnosedThroughTimeAfterTheFact()
    {
        // Two stacked tanh layers with tiny recurrent weights; the label is the sign of the first inputs of 30 steps.
        using var seeded = Generator.UseAsDefault(new Generator(11)); // not the shared default: tests run side by side
        var rnn = new RNN(1, 16, numLayers: 2);
        foreach (var (name, p) in rnn.NamedParameters())
            if (name.StartsWith("weight_hh", StringComparison.Ordinal)) Init.Normal(p, 0, 0.05, new Generator(3));
        var model = new LastStep(rnn, new Linear(16, 2));
        var optimizer = new SGD(model.Parameters(), 0.05, momentum: 0.9);
        string path = Path.Combine(Path.GetTempPath(), $"gradflow-time-{Guid.NewGuid():N}.jsonl");
        try
        {
            using (var monitor = GradientMonitor.Attach(model, optimizer))
            using (RunLog.Attach(monitor, path))
            {
                var gen = new Generator(2);
                for (int i = 0; i < 60; i++)
                {
                    var x = Tensor.Randn([30, 16, 1], generator: gen);
                    var v = x.ToDoubleArray();
                    var y = Tensor.FromArray(Enumerable.Range(0, 16).Select(b => v[b] + v[16 + b] + v[32 + b] > 0 ? 1L : 0L).ToArray());
                    optimizer.ZeroGrad();
                    Functional.CrossEntropy(model.Call(x), y).Backward();
                    optimizer.Step();
                }
            }
            var findings = RunLog.Diagnose(path, new DoctorOptions { Classes = 2 });
            var f = Assert.Single(findings, f => f.Kind == FindingKind.VanishingGradients);
            Assert.Equal(["rnn"], f.Layers);
            Assert.Contains("through time", f.Title, StringComparison.Ordinal);
            Assert.True(f.Evidence[0].Value < 1e-3);
        }
        finally { File.Delete(path); }
    }

    private sealed class LastStep : Module
    {
        private readonly Module _rnn, _head;

        public LastStep(Module rnn, Module head)
        {
            _rnn = RegisterModule("rnn", rnn);
            _head = RegisterModule("head", head);
        }

        public override Tensor Forward(Tensor input)
        {
            var o = _rnn.Call(input);
            return _head.Call(o.Select(0, o.Size(0) - 1));
        }
    }
}
