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
        Assert.Null(s.Dropouts); // no model: its dropouts are unknown, not absent
        Assert.Throws<ArgumentNullException>(() => ParameterShape.Of("x", null!));
    }

    [Fact]
    public void EachParameterRecordsItsOwnGroupsWeightDecay()
    {
        // Two groups (no decay on the norm, 1e-2 on the rest) and a parameter in no group: each shape carries its group's
        // decay, and null outside every group.
        Generator.Default.ManualSeed(3);
        var model = new Sequential(new Linear(4, 6), new LayerNorm(6), new Linear(6, 2));
        var norm = model.Modules().OfType<LayerNorm>().Single().Parameters().ToList();
        var head = ((Linear)model.Modules().OfType<Linear>().Last()).Parameters().ToList();
        var rest = model.Parameters().Where(p => !norm.Concat(head).Any(q => ReferenceEquals(p, q))).ToList();
        var optimizer = new SGD([new ParamGroup(rest, new Dictionary<string, double> { ["weight_decay"] = 1e-2 }), new ParamGroup(norm)], 0.1);
        using var monitor = GradientMonitor.Attach(model, optimizer);
        RunSetup? setup = null;
        monitor.StepRecorded += r => setup ??= r.Setup;
        optimizer.ZeroGrad();
        Functional.CrossEntropy(model.Call(Tensor.Randn([3, 4], generator: new Generator(1))), Tensor.FromArray(new long[] { 0, 1, 1 })).Backward();
        optimizer.Step();
        var decay = setup!.Parameters.ToDictionary(p => p.Name, p => p.WeightDecay);
        Assert.Equal(1e-2, decay["0.weight"]);
        Assert.Equal(1e-2, decay["0.bias"]);
        Assert.Equal(0.0, decay["1.weight"]);
        Assert.Null(decay["2.weight"]); // in no group (the run log's round trip of the field: RunLogTests)
    }

    // One step of a model under an attached monitor and optimiser; the first record's setup.
    private static RunSetup FirstSetup(Module model, Tensor x, Func<Tensor, Tensor> loss)
    {
        var optimizer = new SGD(model.Parameters(), 0.01);
        using var monitor = GradientMonitor.Attach(model, optimizer);
        RunSetup? setup = null;
        monitor.StepRecorded += r => setup ??= r.Setup;
        optimizer.ZeroGrad();
        loss(model.Call(x)).Backward();
        optimizer.Step();
        return setup!;
    }

    [Fact]
    public void NestedDropoutsAreRecordedByNameWithTheirRateModeAndTheLayerTheyFollow()
    {
        Generator.Default.ManualSeed(3);
        var head = new Sequential(new Linear(16, 8), new ReLU(), new Dropout(0.95), new Linear(8, 3));
        var model = new Sequential(new Dropout(0.2), new Linear(6, 16), new Sequential(new ReLU(), new Dropout(0.5)), head);
        var x = Tensor.Randn([4, 6], generator: new Generator(1));
        var setup = FirstSetup(model, x, o => o.Sum());
        Assert.Equal(
            [
                new DropoutLayer("0", "Dropout", 0.2, true),              // the first module: it follows nothing
                new DropoutLayer("2.1", "Dropout", 0.5, true, "2.0"),     // nested: by dotted name, after the ReLU beside it
                new DropoutLayer("3.2", "Dropout", 0.95, true, "3.1"),
            ],
            setup.Dropouts!);

        head.Eval(); // a module not dropping is recorded as such
        var again = FirstSetup(model, x, o => o.Sum());
        Assert.Equal([true, true, false], again.Dropouts!.Select(d => d.Training));
    }

    [Fact]
    public void AttentionAndStackedRecurrentDropoutAreRecordedAndAModelWithoutDropoutHasNone()
    {
        Generator.Default.ManualSeed(4);
        var encoder = new TransformerEncoderLayer(8, 2, dimFeedforward: 16, dropout: 0.3);
        var setup = FirstSetup(encoder, Tensor.Randn([5, 2, 8], generator: new Generator(1)), o => o.Sum());
        Assert.Equal(["dropout", "dropout1", "dropout2", "self_attn"], setup.Dropouts!.Select(d => d.Name).Order(StringComparer.Ordinal));
        Assert.Equal("MultiheadAttention", setup.Dropouts!.Single(d => d.Name == "self_attn").LayerType);
        Assert.All(setup.Dropouts!, d => Assert.Equal(0.3, d.P));
        Assert.Null(setup.Dropouts!.Single(d => d.Name == "self_attn").After); // its dropout is inside it

        // A recurrent layer drops between its stacked layers only: with one layer its rate is not recorded.
        var lstm = FirstSetup(new LSTM(2, 4, numLayers: 2, dropout: 0.6), Tensor.Randn([3, 2, 2], generator: new Generator(2)), o => o.Sum());
        Assert.Equal([new DropoutLayer("", "LSTM", 0.6, true)], lstm.Dropouts!);
        var plain = FirstSetup(new Sequential(new Linear(2, 2), new ReLU(), new Linear(2, 1)), Tensor.Randn([3, 2], generator: new Generator(3)), o => o.Sum());
        Assert.Empty(plain.Dropouts!);
        Assert.Throws<ArgumentNullException>(() => DropoutLayer.Of(null!));
    }
}
