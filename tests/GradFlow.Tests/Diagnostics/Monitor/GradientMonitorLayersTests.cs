using GradFlow.Diagnostics;
using GradFlow.NN;
using GradFlow.Optim;

namespace GradFlow.Tests.Diagnostics;

/// <summary>The monitor across the layer zoo: convolution, normalisation, pooling, recurrent, frozen parts.</summary>
public class GradientMonitorLayersTests
{
    private static StepRecord TrainOneStep(Module model, Func<Tensor> forwardLoss, Optimizer opt)
    {
        using var monitor = GradientMonitor.Attach(model, opt);
        opt.ZeroGrad();
        forwardLoss().Backward();
        opt.Step();
        return monitor.Latest!;
    }

    [Fact]
    public void ConvolutionalNetworkWithBatchNormIsFullyMeasured()
    {
        using var seeded = Generator.UseAsDefault(new Generator(21)); // not the shared default: tests run side by side
        var model = new Sequential(new Conv2d(1, 4, 3), new BatchNorm2d(4), new ReLU(), new MaxPool2d(2), new Flatten(), new Linear(4 * 3 * 3, 5));
        var opt = new Adam(model.Parameters(), lr: 1e-3);
        var g = new Generator(1);
        var x = Tensor.Randn([8, 1, 8, 8], DType.Float32, g);
        var y = Tensor.RandInt(0, 5, [8], generator: g);
        var r = TrainOneStep(model, () => Functional.CrossEntropy(model.Call(x), y), opt);
        Assert.Equal(["0", "1", "5"], r.Layers.Select(l => l.Layer));
        Assert.All(r.Parameters, p => Assert.True(p.Gradient!.L2Norm > 0 && p.UpdateNorm > 0, p.Name));
        var relu = r.Activations.Single(a => a.Op == "Relu");
        Assert.Equal("2", relu.Layer);
        Assert.Equal(4, relu.Units); // channels of the NCHW output
        Assert.Contains(r.Flow, f => f.Layer == "1"); // the gradient BatchNorm passes down to the convolution
        Assert.Contains(r.Flow, f => f.Layer == "5");
    }

    private sealed class SequenceClassifier : Module
    {
        public readonly LSTM Lstm;
        public readonly LayerNorm Norm;
        public readonly Linear Head;

        public SequenceClassifier()
        {
            Lstm = RegisterModule("lstm", new LSTM(3, 6, batchFirst: true));
            Norm = RegisterModule("norm", new LayerNorm(6));
            Head = RegisterModule("head", new Linear(6, 2));
        }

        public override Tensor Forward(Tensor x) => Head.Call(Norm.Call(Lstm.Call(x).Select(1, -1)));
    }

    [Fact]
    public void RecurrentNetworkShowsGateSaturationAndFlow()
    {
        using var seeded = Generator.UseAsDefault(new Generator(22)); // not the shared default: tests run side by side
        var model = new SequenceClassifier();
        var opt = new SGD(model.Parameters(), lr: 0.1);
        var g = new Generator(2);
        var x = Tensor.Randn([4, 5, 3], DType.Float32, g);
        var y = Tensor.RandInt(0, 2, [4], generator: g);
        var r = TrainOneStep(model, () => Functional.CrossEntropy(model.Call(x), y), opt);
        Assert.Contains(r.Parameters, p => p.Name == "lstm.weight_hh_l0" && p.Gradient!.L2Norm > 0);
        var gates = r.Activations.Where(a => a.Layer == "lstm").Select(a => a.Op).OrderBy(o => o).ToArray();
        Assert.Equal(["Sigmoid", "Tanh"], gates);
        Assert.All(r.Activations, a => Assert.InRange(a.SaturatedFraction!.Value, 0, 1));
        Assert.Contains(r.Flow, f => f.Layer == "norm");
        Assert.Contains(r.Flow, f => f.Layer == "head");
    }

    [Fact]
    public void FrozenLayersAreReportedWithoutGradients()
    {
        using var seeded = Generator.UseAsDefault(new Generator(23)); // not the shared default: tests run side by side
        var model = new Sequential(new Linear(4, 8), new Tanh(), new Linear(8, 1));
        foreach (var p in model[0].Parameters()) p.RequiresGrad = false;
        var opt = new SGD(model.Parameters().Where(p => p.RequiresGrad), lr: 0.1);
        var x = Tensor.Randn([16, 4], DType.Float32, new Generator(3));
        var r = TrainOneStep(model, () => model.Call(x).Pow(2).Mean(), opt);
        Assert.Null(r.Parameters.Single(p => p.Name == "0.weight").Gradient);
        Assert.Null(r.Parameters.Single(p => p.Name == "0.weight").UpdateNorm);
        Assert.NotNull(r.Parameters.Single(p => p.Name == "2.weight").Gradient);
        Assert.Equal("Tanh", r.Activations.Single().Op);
    }
}
