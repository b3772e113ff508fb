using GradFlow.Diagnostics;
using GradFlow.Kernels;
using GradFlow.NN;
using GradFlow.Tests.Kernels;

namespace GradFlow.Tests.Diagnostics;

/// <summary>
/// What the activation kernels measure for the monitor in their own passes is what a pass of its own would find:
/// the backward flow is the norm of the gradient reaching each layer's input, whether the kernels measured it (the
/// usual case) or the monitor had to (a gradient summed from two consumers, a double-backward graph), at one thread
/// or two; sigmoid and tanh health is that of their outputs.
/// </summary>
[Collection(ParallelismCollection.Name)]
public class FusedMeasurementTests
{
    private static Sequential Chain(int inputs, int width, Generator g) => new(
        new Linear(inputs, width, generator: g), new Sigmoid(), new Linear(width, width, generator: g), new Tanh(),
        new Linear(width, width, generator: g), new ReLU(), new Linear(width, 4, generator: g));

    // Each module's input gradient, by retaining the gradient of every module's input on an unmonitored forward.
    private static double[] InputGradientNorms(Sequential model, Tensor x, bool createGraph)
    {
        var inputs = new List<Tensor>();
        var h = x;
        for (int i = 0; i < model.Count; i++)
        {
            if (i > 0) h.RetainGrad();
            inputs.Add(h);
            h = model[i].Forward(h);
        }
        h.Pow(2).Mean().Backward(createGraph: createGraph);
        return inputs.Select(t => t.Grad is { } grad ? grad.Detach().Norm().Item() : double.NaN).ToArray();
    }

    [Theory]
    [InlineData(8, 32, 1, false)]
    [InlineData(8, 32, 1, true)]   // createGraph: the activations' backward runs as tensor ops, unmeasured
    [InlineData(128, 256, 1, false)]
    [InlineData(128, 256, 2, false)] // the measured kernel split over two threads
    public void FlowIsTheNormOfEachLayersInputGradient(int batch, int width, int threads, bool createGraph)
    {
        ParallelismCollection.WithThreads(threads, () =>
        {
            var g = new Generator(7);
            var model = Chain(16, width, g);
            var x = Tensor.Randn([batch, 16], DType.Float32, g);
            var expected = InputGradientNorms(model, x, createGraph);
            model.ZeroGrad();
            using var monitor = GradientMonitor.Attach(model);
            model.Call(x).Pow(2).Mean().Backward(createGraph: createGraph);
            var flow = monitor.EndStep()!.Flow.ToDictionary(f => f.Layer);
            for (int i = 1; i < model.Count; i++)
            {
                var f = flow[i.ToString()];
                Assert.Equal(0, f.NonFinite);
                Assert.True(Math.Abs(f.InputGradNorm - expected[i]) <= 1e-5 * expected[i], $"layer {i}: flow {f.InputGradNorm:R}, input gradient {expected[i]:R}");
            }
        });
    }

    [Fact]
    public void ABackwardRunInsideAHookKeepsTheFlowItsOuterBackwardDeferred()
    {
        var g = new Generator(19);
        var model = Chain(16, 32, g);
        var x = Tensor.Randn([8, 16], DType.Float32, g);
        var expected = InputGradientNorms(model, x, createGraph: false);
        model.ZeroGrad();
        // Every parameter's hook runs a small backward of its own while the model's backward is under way.
        var side = Tensor.Ones([3], DType.Float32, requiresGrad: true);
        var hooks = model.Parameters().Select(p => p.RegisterHook(grad => { using (Autograd.EnableGrad()) (side * 2.0).Sum().Backward(); return null; })).ToList();
        using var monitor = GradientMonitor.Attach(model);
        model.Call(x).Pow(2).Mean().Backward();
        var flow = monitor.EndStep()!.Flow.ToDictionary(f => f.Layer);
        foreach (var h in hooks) h.Dispose();
        for (int i = 1; i < model.Count; i++)
        {
            Assert.True(flow.ContainsKey(i.ToString()), $"layer {i}: no flow recorded");
            Assert.True(Math.Abs(flow[i.ToString()].InputGradNorm - expected[i]) <= 1e-5 * expected[i], $"layer {i}: flow {flow[i.ToString()].InputGradNorm:R}, input gradient {expected[i]:R}");
        }
    }

    /// <summary>An activation whose output feeds two layers: each layer's flow is its own gradient, not their sum.</summary>
    private sealed class Fork : Module
    {
        public readonly Linear In, Left, Right;
        public readonly Sigmoid Act = new();

        public Fork(Generator g)
        {
            In = RegisterModule("in", new Linear(6, 10, generator: g));
            RegisterModule("act", Act);
            Left = RegisterModule("left", new Linear(10, 3, generator: g));
            Right = RegisterModule("right", new Linear(10, 3, generator: g));
        }

        public override Tensor Forward(Tensor x)
        {
            var a = Act.Call(In.Call(x));
            return Left.Call(a) * Right.Call(a);
        }
    }

    [Fact]
    public void ALayerFeedingAnActivationWithOtherConsumersIsMeasuredOnItsOwn()
    {
        var g = new Generator(8);
        var model = new Fork(g);
        var x = Tensor.Randn([5, 6], DType.Float32, g);
        // Reference: the two consumers read separate copies of the activation, so each copy's gradient is its own.
        var z = model.In.Forward(x);
        z.RetainGrad();
        var a = model.Act.Forward(z);
        var aLeft = a.Detach();
        aLeft.RequiresGrad = true;
        var aRight = a.Detach();
        aRight.RequiresGrad = true;
        (model.Left.Forward(aLeft) * model.Right.Forward(aRight)).Sum().Backward();
        a.Backward(aLeft.Grad! + aRight.Grad!);
        model.ZeroGrad();

        using var monitor = GradientMonitor.Attach(model);
        model.Call(x).Sum().Backward();
        var flow = monitor.EndStep()!.Flow.ToDictionary(f => f.Layer, f => f.InputGradNorm);
        Assert.Equal(aLeft.Grad!.Norm().Item(), flow["left"], 1e-6);
        Assert.Equal(aRight.Grad!.Norm().Item(), flow["right"], 1e-6);
        Assert.Equal(z.Grad!.Norm().Item(), flow["act"], 1e-6);
    }

    [Fact]
    public void ANonFiniteGradientIsCountedWhereTheKernelMeasuredIt()
    {
        var g = new Generator(9);
        var model = new Sequential(new Linear(4, 8, generator: g), new Sigmoid(), new Linear(8, 2, generator: g));
        var x = Tensor.Randn([3, 4], DType.Float32, g);
        using var monitor = GradientMonitor.Attach(model);
        var y = model.Call(x);
        (y * Tensor.FromArray([float.PositiveInfinity, 1f], 1, 2)).Sum().Backward();
        var flow = monitor.EndStep()!.Flow.ToDictionary(f => f.Layer);
        Assert.True(flow["2"].NonFinite > 0, "the gradient reaching the last layer's input is infinite");
        Assert.True(flow["1"].NonFinite > 0);
    }

    [Theory]
    [InlineData(6, 1)]
    [InlineData(300, 1)]
    [InlineData(300, 2)] // 300 x 64 outputs: the measured kernel split over two threads
    public void SigmoidAndTanhHealthIsThatOfTheirOutputs(int batch, int threads)
    {
        ParallelismCollection.WithThreads(threads, () =>
        {
            var g = new Generator(10);
            var model = new Sequential(new Linear(8, 64, generator: g), new Sigmoid(), new Linear(64, 64, generator: g), new Tanh());
            var x = Tensor.Randn([batch, 8], DType.Float32, g) * 6.0; // large inputs: many saturated units
            using (Autograd.NoGrad()) ((Linear)model[2]).Weight.MulInPlace(20.0); // and large weights for the tanh's
            var options = new MonitorOptions { SaturationEpsilon = 0.02 };
            using var monitor = GradientMonitor.Attach(model, options: options);
            model.Call(x).Sum().Backward();
            var act = monitor.EndStep()!.Activations.ToDictionary(a => a.Op);
            var s = model[1].Forward(model[0].Forward(x)).Detach();
            var t = model[3].Forward(model[2].Forward(s)).Detach();
            Check(act["Sigmoid"], s.Span<float>().ToArray(), 0.02f, 0.98f);
            Check(act["Tanh"], t.Span<float>().ToArray(), -0.98f, 0.98f);
        });
    }

    private static void Check(ActivationStats a, float[] y, float lo, float hi)
    {
        double mean = y.Average(v => (double)v);
        double std = Math.Sqrt(y.Average(v => ((double)v - mean) * (v - mean)));
        double saturated = (double)y.Count(v => v < lo || v > hi) / y.Length;
        Assert.True(saturated > 0.05, $"{a.Op}: the test wants saturated units, found {saturated}");
        Assert.Equal(saturated, a.SaturatedFraction!.Value, 12);
        Assert.Equal(mean, a.Mean, 1e-5);
        Assert.Equal(std, a.Std, 1e-5);
    }

    [Fact]
    public void ArmedKernelsLeaveTheirMeasurementsAndUnarmedOnesDoNot()
    {
        var g = new Generator(11);
        var x = Tensor.Randn([4, 40], DType.Float32, g);
        x.RequiresGrad = true;
        var w = Tensor.Randn([4, 40], DType.Float32, g);
        var y = x.Sigmoid();
        (y * w).Sum().Backward();
        Assert.Null(Instrumentation.TakeActivation());
        Assert.Null(Instrumentation.TakeFlow());

        x.Grad = null;
        var policy = new ActivationPolicy(0.1);
        Instrumentation.ArmActivations(policy);
        Instrumentation.ArmFlow();
        try
        {
            y = x.Sigmoid();
            var a = Instrumentation.TakeActivation()!.Value;
            var values = y.Span<float>().ToArray();
            Assert.Same(y, a.Output);
            Assert.Equal(values.Sum(v => (double)v), a.Sum, 1e-4);
            Assert.Equal(values.Count(v => v < 0.1f || v > 0.9f), a.Outside);
            Assert.Null(Instrumentation.TakeActivation()); // taken once

            (y * w).Sum().Backward();
            var f = Instrumentation.TakeFlow()!.Value;
            double received = f.Received.Detach().Pow(2).Sum().Item(), produced = x.Grad!.Detach().Pow(2).Sum().Item();
            Assert.Equal(received, f.ReceivedSquares, received * 1e-5);
            Assert.Equal(produced, f.ProducedSquares, produced * 1e-5);
        }
        finally
        {
            Instrumentation.DisarmActivations(policy);
            Instrumentation.DisarmFlow();
        }
        Assert.False(Instrumentation.ActivationsArmed || Instrumentation.FlowArmed);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void ReluHealthIsThatOfItsOutputs(int threads)
    {
        ParallelismCollection.WithThreads(threads, () =>
        {
            var g = new Generator(12);
            var model = new Sequential(new Conv2d(1, 16, 3, generator: g), new ReLU(), new Flatten(), new Linear(16 * 26 * 26, 32, generator: g), new ReLU());
            using (Autograd.NoGrad()) ((Conv2d)model[0]).Bias!.Narrow(0, 0, 5).Fill(-100.0); // 5 dead channels
            var x = Tensor.Randn([40, 1, 28, 28], DType.Float32, g);
            using var monitor = GradientMonitor.Attach(model);
            model.Call(x).Sum().Backward();
            var act = monitor.EndStep()!.Activations.ToDictionary(a => a.Layer);
            var conv = model[1].Forward(model[0].Forward(x)).Detach();
            var dense = model[4].Forward(model[3].Forward(model[2].Forward(conv))).Detach();
            CheckRelu(act["1"], conv.Span<float>().ToArray(), 16, 26 * 26);
            CheckRelu(act["4"], dense.Span<float>().ToArray(), 32, 1);
            Assert.Equal(5.0 / 16, act["1"].DeadFraction!.Value, 12);
        });
    }

    private static void CheckRelu(ActivationStats a, float[] y, int units, int inner)
    {
        var alive = new bool[units];
        for (int i = 0; i < y.Length; i++) alive[i / inner % units] |= y[i] > 0;
        double mean = y.Average(v => (double)v);
        double std = Math.Sqrt(y.Average(v => ((double)v - mean) * (v - mean)));
        Assert.Equal(units, a.Units);
        Assert.Equal((double)alive.Count(l => !l) / units, a.DeadFraction!.Value, 12);
        Assert.Equal(mean, a.Mean, 1e-5);
        Assert.Equal(std, a.Std, 1e-5);
    }

    [Fact]
    public void DetailsAreMeasuredOnTheirScheduleAndTheStepSignalsOnEveryStep()
    {
        var g = new Generator(17);
        var model = new Sequential(new Linear(4, 8, generator: g), new Sigmoid(), new Linear(8, 1, generator: g));
        var opt = new GradFlow.Optim.SGD(model.Parameters(), lr: 0.01);
        var x = Tensor.Randn([3, 4], DType.Float32, g);
        using var monitor = GradientMonitor.Attach(model, opt, new MonitorOptions { DetailEvery = 3 });
        var records = new List<StepRecord>();
        monitor.StepRecorded += records.Add;
        var armed = new List<bool>();
        for (int step = 0; step < 7; step++)
        {
            armed.Add(Instrumentation.ActivationsArmed);
            opt.ZeroGrad();
            model.Call(x).Sum().Backward();
            armed[^1] &= Instrumentation.FlowArmed;
            opt.Step();
        }
        bool[] detailed = [true, false, false, true, false, false, true];
        Assert.Equal(detailed, armed);
        Assert.Equal(7, records.Count);
        Assert.Equal(detailed, records.Select(r => r.Activations.Count > 0));
        Assert.Equal(detailed, records.Select(r => r.Flow.Count > 0));
        Assert.Equal(detailed, records.Select(r => r.Parameters[0].Gradient!.Histogram is not null));
        // The step's own signals do not wait for the details.
        Assert.All(records, r => Assert.True(r.GlobalGradNorm > 0 && r.Loss is not null && r.Parameters.All(p => p.UpdateNorm > 0)));
    }

    [Fact]
    public void TheMonitorArmsTheKernelsOnlyWhileItRecords()
    {
        var g = new Generator(13);
        var model = new Sequential(new Linear(4, 8, generator: g), new Sigmoid(), new Linear(8, 1, generator: g));
        var x = Tensor.Randn([3, 4], DType.Float32, g);
        Assert.False(Instrumentation.ActivationsArmed || Instrumentation.FlowArmed);
        var monitor = GradientMonitor.Attach(model, options: new MonitorOptions { Every = 2, DetailEvery = 1 });
        Assert.True(Instrumentation.ActivationsArmed); // step 0 is recorded
        model.Call(x).Sum().Backward();
        Assert.True(Instrumentation.FlowArmed);
        monitor.EndStep();
        Assert.False(Instrumentation.ActivationsArmed || Instrumentation.FlowArmed); // step 1 is skipped
        model.Call(x).Sum().Backward();
        Assert.False(Instrumentation.FlowArmed);
        monitor.EndStep();
        Assert.True(Instrumentation.ActivationsArmed);
        monitor.Suspend();
        Assert.False(Instrumentation.ActivationsArmed);
        monitor.Resume();
        Assert.True(Instrumentation.ActivationsArmed);
        monitor.Dispose();
        Assert.False(Instrumentation.ActivationsArmed || Instrumentation.FlowArmed);
    }
}
