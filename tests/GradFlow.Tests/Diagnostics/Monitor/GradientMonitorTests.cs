using GradFlow.Diagnostics;

namespace GradFlow.Tests.Diagnostics;

public class GradientMonitorTests
{
    private sealed record Dense(string Name, Tensor W, Tensor B);

    private static Dense MakeDense(string name, int fanIn, int fanOut, Generator g, double bias = double.NaN)
    {
        double bound = 1 / Math.Sqrt(fanIn);
        var w = (Tensor.Rand([fanIn, fanOut], DType.Float32, g) * (2 * bound) - bound).Detach().RequireGrad();
        var b = double.IsNaN(bias) ? (Tensor.Rand([fanOut], DType.Float32, g) * (2 * bound) - bound).Detach().RequireGrad()
                                   : Tensor.Full([fanOut], bias, requiresGrad: true);
        return new Dense(name, w, b);
    }

    private static IEnumerable<KeyValuePair<string, Tensor>> Named(IEnumerable<Dense> layers) =>
        layers.SelectMany(l => new[] { KeyValuePair.Create(l.Name + ".weight", l.W), KeyValuePair.Create(l.Name + ".bias", l.B) });

    private static Tensor Run(IReadOnlyList<Dense> layers, Tensor x, Func<Tensor, Tensor> activation)
    {
        for (int i = 0; i < layers.Count; i++)
        {
            using var _ = Autograd.Scope(layers[i].Name);
            x = x.MatMul(layers[i].W) + layers[i].B;
            if (i < layers.Count - 1) x = activation(x);
        }
        return x;
    }

    [Fact]
    public void LinearLayerGradientNormEqualsTheHandComputedValue()
    {
        // loss = sum(x W + b): dL/dW[i, j] = sum over the batch of x[n, i]; dL/db[j] = N.
        var x = Tensor.FromArray(new float[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
        var layer = new Dense("fc", Tensor.Zeros([3, 4], DType.Float32, requiresGrad: true), Tensor.Zeros([4], DType.Float32, requiresGrad: true));
        using var monitor = new GradientMonitor(Named([layer]));
        Run([layer], x, a => a).Sum().Backward();
        var record = monitor.EndStep()!;
        double expectedW = Math.Sqrt(4 * (5.0 * 5 + 7 * 7 + 9 * 9));
        Assert.Equal(expectedW, record.Parameters[0].Gradient!.L2Norm, 5);
        Assert.Equal(Math.Sqrt(4 * 2.0 * 2), record.Parameters[1].Gradient!.L2Norm, 5);
        Assert.Equal(Math.Sqrt(expectedW * expectedW + 16), record.GlobalGradNorm, 4);
        Assert.Equal(9, record.Parameters[0].Gradient!.MaxAbs);
        Assert.Equal("fc", record.Layers.Single().Layer);
        Assert.Equal(Run([layer], x, a => a).Sum().Item(), record.Loss!.Value, 5);
    }

    [Fact]
    public void ReluLayerWithFarNegativeBiasIsReportedFullyDead()
    {
        var g = new Generator(3);
        var layers = new[] { MakeDense("0", 8, 16, g, bias: -100), MakeDense("1", 16, 4, g) };
        using var monitor = new GradientMonitor(Named(layers), new MonitorOptions { DeadWindow = 3, DetailEvery = 1 });
        StepRecord? record = null;
        for (int step = 0; step < 3; step++)
        {
            Run(layers, Tensor.Rand([32, 8], DType.Float32, g), a => a.Relu()).Pow(2).Mean().Backward();
            record = monitor.EndStep();
        }
        var act = record!.Activations.Single();
        Assert.Equal("0", act.Layer);
        Assert.Equal("Relu", act.Op);
        Assert.Equal(16, act.Units);
        Assert.Equal(1.0, act.DeadFraction);
        Assert.Equal(1.0, act.DeadWindowFraction);
        Assert.Equal(0, record.Parameters.Single(p => p.Name == "0.weight").Gradient!.L2Norm); // nothing flows back through dead units
    }

    [Fact]
    public void HealthyReluLayerHasFewDeadUnitsAndTheWindowNeedsConsecutiveSteps()
    {
        var g = new Generator(4);
        var layers = new[] { MakeDense("0", 8, 64, g, bias: 0.1), MakeDense("1", 64, 1, g) };
        using var monitor = new GradientMonitor(Named(layers), new MonitorOptions { DeadWindow = 5 });
        Run(layers, Tensor.Randn([64, 8], DType.Float32, g), a => a.Relu()).Pow(2).Mean().Backward();
        var act = monitor.EndStep()!.Activations.Single();
        Assert.True(act.DeadFraction < 0.1, $"dead fraction {act.DeadFraction}");
        Assert.Equal(0, act.DeadWindowFraction);
    }

    [Fact]
    public void DeepSigmoidNetworkShowsGradientFlowDecayingWithDepth()
    {
        // sigmoid' <= 1/4: with PyTorch's default init each layer shrinks the backward signal by a factor
        // of about 1/4 times the typical gain of the weights (about 0.58 for U(-1/sqrt(n), 1/sqrt(n))).
        var g = new Generator(5);
        var layers = Enumerable.Range(0, 20).Select(i => MakeDense(i.ToString(), i == 0 ? 64 : 128, i == 19 ? 10 : 128, g)).ToArray();
        using var monitor = new GradientMonitor(Named(layers));
        Run(layers, Tensor.Randn([32, 64], DType.Float32, g), a => a.Sigmoid()).Pow(2).Mean().Backward();
        var record = monitor.EndStep()!;
        // Layer 0's input is the data, which needs no gradient: the flow starts at layer 1.
        var flow = record.Flow.Where(f => f.Layer != "").OrderBy(f => f.Depth).ToArray();
        Assert.Equal(Enumerable.Range(1, 19).Select(i => i.ToString()), flow.Select(f => f.Layer));
        for (int d = 0; d < flow.Length - 1; d++)
        {
            double ratio = flow[d].InputGradNorm / flow[d + 1].InputGradNorm;
            Assert.True(ratio < 0.25, $"layer {d}: input-gradient ratio {ratio:G3} to the next layer is above the 1/4 bound");
        }
        var weightNorms = record.Layers.Select(l => l.Gradient.L2Norm).ToArray();
        Assert.True(weightNorms[0] < 1e-6 * weightNorms[^1], $"first layer {weightNorms[0]:G3} vs last {weightNorms[^1]:G3}");
        var sat = record.Activations.Select(a => a.SaturatedFraction!.Value);
        Assert.All(sat, s => Assert.InRange(s, 0, 1));
    }

    [Fact]
    public void EveryNthStepIsRecordedAndNoGradPassesAreIgnored()
    {
        var g = new Generator(6);
        var layers = new[] { MakeDense("0", 4, 8, g), MakeDense("1", 8, 1, g) };
        using var monitor = new GradientMonitor(Named(layers), new MonitorOptions { Every = 2 });
        var records = new List<StepRecord?>();
        for (int step = 0; step < 4; step++)
        {
            using (Autograd.NoGrad()) Run(layers, Tensor.Randn([8, 4], DType.Float32, g), a => a.Relu()); // evaluation
            Run(layers, Tensor.Randn([8, 4], DType.Float32, g), a => a.Relu()).Pow(2).Mean().Backward();
            records.Add(monitor.EndStep());
        }
        Assert.NotNull(records[0]); Assert.Null(records[1]); Assert.NotNull(records[2]); Assert.Null(records[3]);
        Assert.Equal(3, records[2]!.Step);
        Assert.Equal(4, monitor.StepCount);
    }

    [Fact]
    public void AResumedMonitorContinuesTheStepNumbersAndTheRhythmOfEvery()
    {
        var g = new Generator(6);
        var layers = new[] { MakeDense("0", 4, 8, g), MakeDense("1", 8, 1, g) };
        using var monitor = new GradientMonitor(Named(layers), new MonitorOptions { Every = 2, StartStep = 7 });
        var records = new List<StepRecord?>();
        for (int step = 0; step < 3; step++)
        {
            Run(layers, Tensor.Randn([8, 4], DType.Float32, g), a => a.Relu()).Pow(2).Mean().Backward();
            records.Add(monitor.EndStep());
        }
        // Steps 8, 9, 10: an uninterrupted run records steps 1, 3, 5, 7, 9 with Every = 2.
        Assert.Null(records[0]); Assert.Equal(9, records[1]!.Step); Assert.Null(records[2]);
        Assert.Equal(10, monitor.StepCount);
        Assert.Throws<ArgumentException>(() => new GradientMonitor(Named(layers), new MonitorOptions { StartStep = -1 }));
    }

    [Fact]
    public void DisposedMonitorSeesNothing()
    {
        var layer = new Dense("fc", Tensor.Ones([2, 2], DType.Float32, requiresGrad: true), Tensor.Zeros([2], DType.Float32, requiresGrad: true));
        var monitor = new GradientMonitor(Named([layer]));
        monitor.Dispose();
        Run([layer], Tensor.Ones(3, 2), a => a.Relu()).Sum().Backward();
        Assert.Empty(monitor.EndStep()!.Flow);
    }

    [Fact]
    public void FrozenParametersHaveNoGradientStatistics()
    {
        var frozen = Tensor.Ones([2, 2]);
        var live = Tensor.Ones([2], DType.Float32, requiresGrad: true);
        using var monitor = new GradientMonitor([KeyValuePair.Create("a.weight", frozen), KeyValuePair.Create("a.bias", live)]);
        (Tensor.Ones(3, 2).MatMul(frozen) + live).Sum().Backward();
        var record = monitor.EndStep()!;
        Assert.Null(record.Parameters[0].Gradient);
        Assert.NotNull(record.Parameters[1].Gradient);
    }

    [Fact]
    public void BadOptionsAreRejectedWithTheirName()
    {
        var e = Assert.Throws<ArgumentException>(() => new GradientMonitor([], new MonitorOptions { Every = 0 }));
        Assert.Contains("Every", e.Message);
    }
}

public class GradientMonitorModuleTests
{
    [Fact]
    public void AttachedToAModelAndOptimiserItRecordsEveryStepByItself()
    {
        using var seeded = Generator.UseAsDefault(new Generator(11)); // not the shared default: tests run side by side
        var model = new GradFlow.NN.Sequential(new GradFlow.NN.Linear(6, 16), new GradFlow.NN.ReLU(), new GradFlow.NN.Linear(16, 3));
        var opt = new GradFlow.Optim.SGD(model.Parameters(), lr: 0.1, momentum: 0.9);
        using var monitor = GradientMonitor.Attach(model, opt, new MonitorOptions { DetailEvery = 1 }); // activations and flow on every step
        var records = new List<StepRecord>();
        monitor.StepRecorded += records.Add;
        var g = new Generator(2);
        var x = Tensor.Randn([32, 6], DType.Float32, g);
        var y = Tensor.RandInt(0, 3, [32], generator: g);
        for (int step = 0; step < 3; step++)
        {
            opt.ZeroGrad();
            var loss = GradFlow.NN.Functional.CrossEntropy(model.Call(x), y);
            loss.Backward();
            opt.Step();
        }
        Assert.Equal(3, records.Count);
        var last = records[^1];
        Assert.Equal(["0.weight", "0.bias", "2.weight", "2.bias"], last.Parameters.Select(p => p.Name));
        Assert.Equal(["0", "2"], last.Layers.Select(l => l.Layer));
        Assert.Equal(0.1, last.LearningRate);
        Assert.NotNull(last.Loss);
        Assert.All(last.Parameters, p => Assert.True(p.UpdateNorm > 0 && p.UpdateToWeight > 0));
        Assert.Contains(last.Activations, a => a.Layer == "1" && a.Op == "Relu");
        Assert.Contains(last.Flow, f => f.Layer == "2" && f.InputGradNorm > 0);
    }
}

public class GradientMonitorSuspendTests
{
    [Fact]
    public void SuspendedMonitorRecordsNothingAndResumesWithItsDeadStreaks()
    {
        using var seeded = Generator.UseAsDefault(new Generator(13)); // not the shared default: tests run side by side
        var first = new GradFlow.NN.Linear(4, 8);
        using (Autograd.NoGrad()) first.Bias!.Fill(-100); // every unit of the ReLU dead, step after step
        var model = new GradFlow.NN.Sequential(first, new GradFlow.NN.ReLU(), new GradFlow.NN.Linear(8, 1));
        var opt = new GradFlow.Optim.SGD(model.Parameters(), lr: 0.01);
        using var monitor = GradientMonitor.Attach(model, opt, new MonitorOptions { DeadWindow = 2, DetailEvery = 1 });
        var records = new List<StepRecord>();
        monitor.StepRecorded += records.Add;
        var x = Tensor.Randn([16, 4], DType.Float32, new Generator(4));
        void Step()
        {
            opt.ZeroGrad();
            model.Call(x).Pow(2).Mean().Backward();
            opt.Step();
        }

        Step();
        Assert.Single(records);
        Assert.Equal(0.0, records[0].Activations.Single().DeadWindowFraction);
        monitor.Suspend();
        Assert.True(monitor.IsSuspended);
        Step();
        Step();
        Assert.Single(records);
        Assert.Equal(1, monitor.StepCount);
        monitor.Resume();
        Assert.False(monitor.IsSuspended);
        Step();
        Assert.Equal(2, records.Count);
        Assert.Equal(2, records[1].Step);
        // The streak kept from before the pause: two recorded dead steps fill the window of 2.
        Assert.Equal(1.0, records[1].Activations.Single().DeadWindowFraction);
        Assert.All(records[1].Parameters, p => Assert.NotNull(p.UpdateNorm));
        monitor.Dispose();
        Assert.Throws<ObjectDisposedException>(monitor.Resume);
    }
}

public class GradientMonitorAccumulationTests
{
    [Fact]
    public void MicroBatchesAccumulateIntoOneStep()
    {
        using var seeded = Generator.UseAsDefault(new Generator(12)); // not the shared default: tests run side by side
        var model = new GradFlow.NN.Sequential(new GradFlow.NN.Linear(4, 8), new GradFlow.NN.ReLU(), new GradFlow.NN.Linear(8, 1));
        var opt = new GradFlow.Optim.SGD(model.Parameters(), lr: 0.01);
        using var monitor = GradientMonitor.Attach(model, opt);
        var g = new Generator(3);
        var xs = Enumerable.Range(0, 4).Select(_ => Tensor.Randn([8, 4], DType.Float32, g)).ToArray();
        opt.ZeroGrad();
        var losses = new List<double>();
        foreach (var x in xs)
        {
            var loss = model.Call(x).Pow(2).Mean();
            losses.Add(loss.Item());
            loss.Backward();
        }
        var summed = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.Grad!.Norm().Item());
        opt.Step();
        var record = monitor.Latest!;
        Assert.Equal(1, record.Step);
        Assert.Equal(losses.Average(), record.Loss!.Value, 6);
        foreach (var p in record.Parameters)
            Assert.Equal(summed[p.Name], p.Gradient!.L2Norm, 5); // statistics of the accumulated gradient
    }
}

public class GradientMonitorHistogramTimingTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1024)]
    public void HistogramsCountedInTheOptimisersWakeEqualTheEndOfStepOnes(int sampleSize)
    {
        using var seeded = Generator.UseAsDefault(new Generator(14)); // not the shared default: tests run side by side
        var model = new GradFlow.NN.Sequential(new GradFlow.NN.Linear(64, 96), new GradFlow.NN.Tanh(), new GradFlow.NN.Linear(96, 3));
        var opt = new GradFlow.Optim.SGD(model.Parameters(), lr: 0.1);
        var options = new MonitorOptions { HistogramSampleSize = sampleSize };
        using var withOptimizer = GradientMonitor.Attach(model, opt, options);
        using var alone = GradientMonitor.Attach(model, optimizer: null, options);
        opt.ZeroGrad();
        model.Call(Tensor.Randn([16, 64], DType.Float32, new Generator(15))).Pow(2).Mean().Backward();
        opt.Step();
        var early = withOptimizer.Latest!;
        var late = alone.EndStep()!;
        for (int i = 0; i < early.Parameters.Count; i++)
        {
            var (a, b) = (early.Parameters[i].Gradient!.Histogram!, late.Parameters[i].Gradient!.Histogram!);
            Assert.Equal(b.Positive, a.Positive);
            Assert.Equal(b.Negative, a.Negative);
            Assert.Equal(b.Zero, a.Zero);
        }
        Assert.Equal(model.Parameters().Sum(p => (long)p.NumEl), early.Parameters.Sum(p => p.Gradient!.Histogram!.Total), 64.0);
    }
}

public class GradientMonitorClippingTests
{
    [Fact]
    public void ClippingThroughTheMonitorRecordsTheNormBeforeAndAfter()
    {
        var w = Tensor.Ones([3, 4], DType.Float32, requiresGrad: true);
        using var monitor = new GradientMonitor([KeyValuePair.Create("fc.weight", w)]);
        (w * 10.0).Sum().Backward(); // every gradient element is 10: global norm sqrt(12) * 10
        double before = monitor.ClipGradNorm(1.0);
        var record = monitor.EndStep()!;
        Assert.Equal(Math.Sqrt(12) * 10, before, 4);
        Assert.Equal(before, record.GlobalGradNorm, 6);
        Assert.Equal(1.0, record.ClippedGradNorm!.Value, 5);
        Assert.Equal(1.0, record.Parameters[0].Gradient!.L2Norm, 5); // statistics are of the clipped gradient
    }
}

public class GradientMonitorFusedStatisticsTests
{
    [Fact]
    public void StatisticsFromTheOptimiserPassEqualASeparatePass()
    {
        using var seeded = Generator.UseAsDefault(new Generator(31)); // not the shared default: tests run side by side
        var model = new GradFlow.NN.Sequential(new GradFlow.NN.Linear(300, 400), new GradFlow.NN.ReLU(), new GradFlow.NN.Linear(400, 5));
        var opt = new GradFlow.Optim.Adam(model.Parameters(), lr: 1e-2);
        using var monitor = GradientMonitor.Attach(model, opt, new MonitorOptions { HistogramSampleSize = 0 });
        var x = Tensor.Randn([16, 300], DType.Float32, new Generator(4));
        opt.ZeroGrad();
        model.Call(x).Pow(2).Mean().Backward();
        var expected = model.NamedParameters().ToDictionary(p => p.Name, p => TensorStats.Of(p.Parameter.Grad!));
        opt.Step();
        foreach (var p in monitor.Latest!.Parameters)
        {
            var e = expected[p.Name];
            var a = p.Gradient!;
            Assert.Equal(e.L2Norm, a.L2Norm, 1e-5 * e.L2Norm);
            Assert.Equal(e.MaxAbs, a.MaxAbs, 1e-12);
            Assert.Equal(e.ZeroFraction, a.ZeroFraction, 12);
            Assert.Equal(e.Histogram!.Positive, a.Histogram!.Positive);
            Assert.Equal(e.Histogram!.Zero, a.Histogram!.Zero);
            var param = model.NamedParameters().Single(q => q.Name == p.Name).Parameter;
            Assert.Equal(param.Norm().Item(), p.ParamNorm, 1e-5 * p.ParamNorm); // after the step
        }
    }

    [Fact]
    public void LargeGradientsGetAScaledHistogramFromASpreadSample()
    {
        var w = Tensor.Zeros([1000, 1000], DType.Float32, requiresGrad: true);
        using var monitor = new GradientMonitor([KeyValuePair.Create("big.weight", w)], new MonitorOptions { HistogramSampleSize = 65_536 }); // 1M values: sampled
        // Gradient 3 everywhere on the first half of the rows, 0.25 on the rest: the sample must see both.
        var scale = Tensor.Cat([Tensor.Full([500, 1000], 3.0), Tensor.Full([500, 1000], 0.25)]);
        (w * scale).Sum().Backward();
        var g = monitor.EndStep()!.Parameters[0].Gradient!;
        Assert.Equal(Math.Sqrt(500_000 * 9 + 500_000 * 0.0625), g.L2Norm, 1e-3); // exact: not sampled
        var h = g.Histogram!;
        Assert.InRange(h.Total, 999_000, 1_001_000);
        Assert.InRange(h.Positive[Log2Histogram.BucketOf(1)], 480_000, 520_000);  // 3 in [2, 4)
        Assert.InRange(h.Positive[Log2Histogram.BucketOf(-2)], 480_000, 520_000); // 0.25 in [0.25, 0.5)
    }
}
