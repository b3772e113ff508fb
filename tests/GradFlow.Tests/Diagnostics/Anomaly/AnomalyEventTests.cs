using GradFlow.Diagnostics;
using GradFlow.NN;
using GradFlow.Optim;

namespace GradFlow.Tests.Diagnostics;

/// <summary>One report per event: its origin, not the ops, backward nodes and later steps downstream of it.</summary>
public class AnomalyEventTests
{
    private static (Sequential Model, SGD Optimizer) Mlp()
    {
        var g = new Generator(7);
        var model = new Sequential(new Linear(4, 8, generator: g), new ReLU(), new Linear(8, 3, generator: g));
        return (model, new SGD(model.Parameters(), lr: 0.1));
    }

    private static Tensor Batch(ulong seed) => Tensor.Randn([5, 4], DType.Float32, new Generator(seed));

    private static readonly Tensor Labels = Tensor.FromArray(new long[] { 0, 1, 2, 1, 0 }, 5);

    [Fact]
    public void AForwardOriginIsReportedOnceAcrossTheStepsItPoisons()
    {
        var (model, opt) = Mlp();
        var lossFn = new CrossEntropyLoss();
        using var anomaly = AnomalyMode.Enable(throwOnAnomaly: false);
        for (int step = 0; step < 4; step++)
        {
            opt.ZeroGrad();
            var h = model.Call(Batch((ulong)step));
            // Step 0 takes the log of a negative number: NaN, which the step then writes into every weight.
            var logits = step == 0 ? h + (h - 1000.0).Log() : h;
            lossFn.Call(logits, Labels).Backward();
            opt.Step();
        }
        Assert.True(model.Parameters().All(p => p.ToDoubleArray().Any(double.IsNaN)), "the event must reach the weights, or the later steps test nothing");
        var r = Assert.Single(anomaly.Reports);
        Assert.Equal((AnomalyPhase.Forward, "Log"), (r.Phase, r.Op));
    }

    [Fact]
    public void ABackwardOriginIsReportedOnceAcrossTheStepsItPoisons()
    {
        var (model, opt) = Mlp();
        var lossFn = new CrossEntropyLoss();
        using var anomaly = AnomalyMode.Enable(throwOnAnomaly: false);
        for (int step = 0; step < 3; step++)
        {
            opt.ZeroGrad();
            var h = model.Call(Batch((ulong)step));
            // sqrt(0) is finite; its gradient 1/(2 sqrt 0) is not.
            var logits = step == 0 ? h + (h * 0.0).Sqrt() : h;
            lossFn.Call(logits, Labels).Backward();
            opt.Step();
        }
        var r = Assert.Single(anomaly.Reports);
        Assert.Equal((AnomalyPhase.Backward, "Sqrt"), (r.Phase, r.Op));
    }

    [Fact]
    public void NaNInTheDataIsCaughtAtTheFirstLayerThatReadsItNotAtTheLossBackward()
    {
        var (model, _) = Mlp();
        var x = Batch(1);
        x[2, 1] = float.NaN; // before anomaly mode: the write itself reads the NaN scalar
        var lossFn = new CrossEntropyLoss();
        using (var collecting = AnomalyMode.Enable(throwOnAnomaly: false))
        {
            lossFn.Call(model.Call(x), Labels).Backward();
            var r = Assert.Single(collecting.Reports);
            Assert.Equal((AnomalyPhase.Input, OpNames.Linear, "0", 1L), (r.Phase, r.Op, r.Module, r.NaNCount));
        }
        using var throwing = AnomalyMode.Enable();
        var e = Assert.Throws<AnomalyException>(() => model.Call(x));
        Assert.Equal((AnomalyPhase.Input, "0"), (e.Report.Phase, e.Report.Module));
        Assert.Contains("module '0'", e.Message);
    }

    [Fact]
    public void NewBatchesWithNaNAreNewEvents()
    {
        var (model, _) = Mlp();
        using var anomaly = AnomalyMode.Enable(throwOnAnomaly: false);
        for (int step = 0; step < 3; step++)
        {
            var data = Batch((ulong)step).ToArray<float>();
            data[step] = float.NaN;
            var x = Tensor.FromArray(data, 5, 4);
            using (Autograd.NoGrad()) model.Call(x);
        }
        Assert.Equal(3, anomaly.Reports.Count);
        Assert.All(anomaly.Reports, r => Assert.Equal(AnomalyPhase.Input, r.Phase));
    }

    [Fact]
    public void TheLossHasAScopeOfItsOwn()
    {
        var (model, _) = Mlp();
        var loss = new CrossEntropyLoss().Call(model.Call(Batch(1)), Labels);
        Assert.Equal("loss", loss.GradFn!.Scope);
        // A loss that overflows is reported in it, not in the model's root ("").
        var big = Tensor.FromArray(new float[] { 1e30f, -1e30f });
        using var anomaly = AnomalyMode.Enable(throwOnAnomaly: false);
        new MSELoss().Call(big.RequireGrad(), Tensor.FromArray(new float[] { 0, 0 }));
        Assert.Equal("loss", Assert.Single(anomaly.Reports).Module);
    }

    [Fact]
    public void ALossRegisteredInAModelKeepsItsPath()
    {
        var parent = new Sequential();
        parent.RegisterModule("criterion", new MSELoss());
        var mse = (MSELoss)parent.Children().Single();
        var y = mse.Call(Tensor.Randn([3], DType.Float32, new Generator(1), requiresGrad: true), Tensor.Zeros([3]));
        Assert.Equal("criterion", y.GradFn!.Scope);
    }
}
