using GradFlow.Diagnostics;
using GradFlow.NN;
using GradFlow.Optim;

namespace GradFlow.Tests.Diagnostics;

public class RunSetupTests
{
    [Fact]
    public void TheFirstStepRecordsShapesFansAndTheOptimiser()
    {
        Generator.Default.ManualSeed(2);
        var model = new Sequential(new Conv2d(1, 4, 3, padding: 1), new ReLU(), new Flatten(), new Linear(4 * 5 * 5, 3));
        var optimizer = new SGD(model.Parameters(), 0.1, momentum: 0.9, weightDecay: 5e-4);
        using var monitor = GradientMonitor.Attach(model, optimizer);
        var records = new List<StepRecord>();
        monitor.StepRecorded += records.Add;
        var x = Tensor.Randn([2, 1, 5, 5], generator: new Generator(1));
        var y = Tensor.FromArray(new long[] { 0, 2 });
        for (int i = 0; i < 4; i++)
        {
            optimizer.ZeroGrad();
            Functional.CrossEntropy(model.Call(x), y).Backward();
            optimizer.Step();
            if (i == 1) optimizer.ParamGroups[0].Lr = 0.05;       // a schedule: not a new setup
            if (i == 2) optimizer.ParamGroups[0]["momentum"] = 0.5; // a changed hyper-parameter: a new setup
        }
        var setup = records[0].Setup!;
        var conv = setup.Parameters.Single(p => p.Name == "0.weight");
        Assert.Equal([4, 1, 3, 3], conv.Shape);
        Assert.Equal(9, conv.FanIn);  // in channels x kernel taps, as torch.nn.init
        Assert.Equal(36, conv.FanOut);
        Assert.Equal("Conv2d", conv.LayerType);
        Assert.Equal(100, setup.Parameters.Single(p => p.Name == "3.weight").FanIn);
        Assert.Equal(0, setup.Parameters.Single(p => p.Name == "3.bias").FanIn);
        Assert.Equal(new OptimizerSettings("SGD", 0.1, 5e-4, 0.9, null, null, false), setup.Optimizer);
        Assert.Null(records[1].Setup);
        Assert.Null(records[2].Setup);
        Assert.Equal(0.5, records[3].Setup!.Optimizer!.Momentum);
        Assert.Same(setup.Parameters, records[3].Setup!.Parameters);
    }

    [Fact]
    public void AdamWIsDecoupledAndWithoutAModelTheLayerTypeIsUnknown()
    {
        var w = Tensor.Randn([3, 2], generator: new Generator(1)).RequireGrad();
        var optimizer = new AdamW([w], 1e-3);
        using var monitor = new GradientMonitor([KeyValuePair.Create("w", w)]);
        monitor.AttachOptimizer(optimizer);
        StepRecord? first = null;
        monitor.StepRecorded += r => first ??= r;
        w.Sum().Backward();
        optimizer.Step();
        var s = first!.Setup!;
        Assert.True(s.Optimizer!.DecoupledWeightDecay);
        Assert.Equal(0.9, s.Optimizer.Beta1);
        Assert.Null(s.Optimizer.Momentum);
        Assert.Null(s.Parameters[0].LayerType);
        Assert.Throws<ArgumentNullException>(() => ParameterShape.Of("x", null!));
    }
}
