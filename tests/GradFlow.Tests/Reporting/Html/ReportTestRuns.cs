using GradFlow.Diagnostics;
using GradFlow.NN;
using GradFlow.Optim;
using GradFlow.Reporting.Html;

namespace GradFlow.Tests.Reporting.Html;

/// <summary>Runs for the report tests: real monitored training, and large synthetic records.</summary>
internal static class ReportTestRuns
{
    /// <summary>A small MLP trained for a few steps under the monitor (ReLU or sigmoid hidden layers).</summary>
    public static ReportRun Trained(string name, bool sigmoid, int steps = 30, ulong seed = 1, bool curvature = false)
    {
        var gen = new Generator(seed);
        var x = Tensor.Randn([64, 8], generator: gen);
        var y = Tensor.RandInt(0, 3, [64], generator: gen);
        Module act() => sigmoid ? new Sigmoid() : new ReLU();
        var model = new Sequential(new Linear(8, 16), act(), new Linear(16, 16), act(), new Linear(16, 3));
        var opt = new SGD(model.Parameters(), lr: 0.1, momentum: 0.9);
        using var monitor = GradientMonitor.Attach(model, opt);
        var records = new List<StepRecord>();
        monitor.StepRecorded += records.Add;
        Tensor Loss() => Functional.CrossEntropy(model.Call(x), y);
        if (curvature) monitor.AddSharpnessProbe(new SharpnessProbe(Loss, model, opt, every: 10));
        for (int i = 0; i < steps; i++)
        {
            opt.ZeroGrad();
            Functional.CrossEntropy(model.Call(x), y).Backward();
            monitor.ClipGradNorm(5.0);
            opt.Step();
        }
        var run = new ReportRun(name, records, new Dictionary<string, string> { ["model"] = sigmoid ? "sigmoid MLP" : "ReLU MLP", ["lr"] = "0.1" });
        if (!curvature) return run;
        monitor.Suspend(); // the curvature passes below are not training steps
        var alphas = LossLandscape.Range(-1, 1, 21);
        return run with
        {
            Density = Spectrum.Density(CurvatureOperator.Hessian(Loss, model), steps: 20),
            Landscape = new Dictionary<string, LossSlice>
            {
                ["direction 1"] = LossLandscape.Slice(Loss, model, LossLandscape.FilterNormalizedDirection(model, new Generator(7)), alphas),
                ["direction 2"] = LossLandscape.Slice(Loss, model, LossLandscape.FilterNormalizedDirection(model, new Generator(8)), alphas),
            },
        };
    }

    /// <summary>Synthetic records: <paramref name="layers"/> layers with histograms, a NaN step, activations and flow.</summary>
    public static ReportRun Synthetic(int steps, int layers, string name = "synthetic")
    {
        var records = new StepRecord[steps];
        for (int s = 0; s < steps; s++)
        {
            var layerStats = new LayerGradientStats[layers];
            var flow = new FlowStats[layers];
            for (int l = 0; l < layers; l++)
            {
                double norm = Math.Pow(0.7, l) * (1 + 0.1 * Math.Sin(s * 0.01));
                var h = new Log2Histogram();
                h.Positive[Log2Histogram.BucketOf(-8 - l / 4)] = 100;
                h.Negative[Log2Histogram.BucketOf(-9 - l / 4)] = 80;
                var stats = new TensorStats(180, s == steps / 2 && l == 0 ? double.NaN : norm, norm / 10, norm, norm / 13, 0, s == steps / 2 && l == 0 ? 1 : 0, 0, h);
                layerStats[l] = new LayerGradientStats($"layers.{l}", l, stats, 3.0, norm * 1e-3);
                flow[l] = new FlowStats($"layers.{l}", l, norm * 2, 0);
            }
            records[s] = new StepRecord
            {
                Step = s + 1, Loss = 2.3 * Math.Exp(-s / 2000.0), LearningRate = 0.1, GlobalGradNorm = s == steps / 2 ? double.NaN : 1.0,
                Parameters = [], Layers = layerStats, Flow = flow,
                Activations = [new ActivationStats("layers.0", "Relu", 0, 16, 0.25, 0.1, null, 0.5, 1.0)],
            };
        }
        return new ReportRun(name, records);
    }
}
