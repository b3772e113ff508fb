using GradFlow.Optim;
using GradFlow.Tests.Fixtures;

namespace GradFlow.Tests.Optim;

public class OptimizerTests
{
    private static readonly string[] Names = ["optim.sgd_momentum.f32", "optim.adam_amsgrad_wd.f32", "optim.rmsprop_centered_momentum_wd.f64",
        "optim.adagrad_decay_wd_init.f32", "optim.nadam_wd.f64", "optim.radam.f32", "optim.adam_groups.f64"];

    public static IEnumerable<object[]> RoundTripCases() => Names.Select(n => new object[] { n });

    [Theory]
    [MemberData(nameof(RoundTripCases))]
    public void StateDictMidRunGivesIdenticalContinuation(string name)
    {
        var c = Fixture.Get("optim.json", name);
        var (x, y) = (c["x"], c["y"]);
        var (full, w1, b1) = OptimizerFixtureTests.Build(c);
        for (int i = 0; i < 20; i++) OptimizerFixtureTests.TrainStep(full, x, y, w1, b1);

        var (first, w2, b2) = OptimizerFixtureTests.Build(c);
        for (int i = 0; i < 8; i++) OptimizerFixtureTests.TrainStep(first, x, y, w2, b2);
        var saved = first.StateDict();
        // Through the serialised form too: tensors by name plus JSON text.
        var json = System.Text.Json.Nodes.JsonNode.Parse(saved.ToJson().ToJsonString())!.AsObject();
        var restored = OptimizerStateDict.FromParts(json, saved.ToTensors("opt."), "opt.");
        for (int i = 0; i < 3; i++) OptimizerFixtureTests.TrainStep(first, x, y, w2, b2); // must not disturb the saved copy

        // Fresh objects at our own weights after 8 steps (so the comparison can be bitwise), then the saved state.
        var (second, w3, b3) = OptimizerFixtureTests.Build(c);
        var (replay, w4, b4) = OptimizerFixtureTests.Build(c);
        for (int i = 0; i < 8; i++) OptimizerFixtureTests.TrainStep(replay, x, y, w4, b4);
        using (GradFlow.Autograd.NoGrad()) { w3.CopyFrom(w4); b3.CopyFrom(b4); }
        second.LoadStateDict(restored);
        for (int i = 8; i < 20; i++) OptimizerFixtureTests.TrainStep(second, x, y, w3, b3);

        Assert.Equal(w1.ToDoubleArray(), w3.ToDoubleArray());
        Assert.Equal(b1.ToDoubleArray(), b3.ToDoubleArray());
    }

    [Fact]
    public void LoadStateDictRejectsMismatchedShapesAndGroups()
    {
        var a = Tensor.Zeros([3], DType.Float32, requiresGrad: true);
        var opt = new Adam([a]);
        a.Grad = Tensor.Ones(3);
        opt.Step();
        var sd = opt.StateDict();

        var other = new Adam([Tensor.Zeros([4], DType.Float32, requiresGrad: true)]);
        var ex = Assert.Throws<ArgumentException>(() => other.LoadStateDict(sd));
        Assert.Contains("exp_avg", ex.Message);
        Assert.Contains("[4]", ex.Message);

        var two = new Adam([new ParamGroup([Tensor.Zeros([3], DType.Float32, requiresGrad: true)]), new ParamGroup([Tensor.Zeros([3], DType.Float32, requiresGrad: true)])]);
        Assert.Contains("parameter groups", Assert.Throws<ArgumentException>(() => two.LoadStateDict(sd)).Message);
    }

    [Fact]
    public void ObserverSeesUpdateMeasuredInThePass()
    {
        var p = Tensor.FromArray(Enumerable.Range(0, 37).Select(i => (float)(i * 0.1 - 1)).ToArray()).RequireGrad();
        var before = p.ToDoubleArray();
        var opt = new SGD([p], lr: 0.1, weightDecay: 0.01);
        var seen = new List<ParameterUpdate>();
        int completed = 0;
        using var handle = opt.AddObserver(new Recorder(seen, () => completed++));
        p.Grad = Tensor.Full([37], 0.5);
        opt.Step();
        var after = p.ToDoubleArray();
        double upd = 0, par = 0;
        for (int i = 0; i < 37; i++) { double d = (float)after[i] - (float)before[i]; upd += d * d; par += after[i] * after[i]; }
        var u = Assert.Single(seen);
        Assert.Same(p, u.Param);
        Assert.Equal(0, u.ParamIndex);
        Assert.Equal(1, u.Step);
        Assert.Equal(0.1, u.Lr);
        Assert.Equal(upd, u.Stats.UpdateSumSq, 1e-6);
        Assert.Equal(par, u.Stats.ParamSumSq, 1e-5);
        Assert.Equal(Math.Sqrt(upd / par), u.Stats.UpdateToWeightRatio, 1e-6);
        Assert.Equal(1, completed);

        handle.Dispose();
        opt.Step();
        Assert.Single(seen);
    }

    private sealed class Recorder(List<ParameterUpdate> seen, Action done) : IOptimizerObserver
    {
        public void OnParameterUpdated(in ParameterUpdate update) => seen.Add(update);
        public void OnStepCompleted(Optimizer optimizer) => done();
    }

    public static IEnumerable<object[]> AllOptimizers() =>
        new[] { "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "NAdam", "RAdam" }.Select(k => new object[] { k });

    [Theory]
    [MemberData(nameof(AllOptimizers))]
    public void StepAllocatesNothingOnceStateExists(string kind)
    {
        var p = Tensor.Randn([1000], DType.Float32, new Generator(1), requiresGrad: true);
        var q = Tensor.Randn([17], DType.Float64, new Generator(2), requiresGrad: true);
        var group = new ParamGroup([p, q], kind == "SGD" ? new Dictionary<string, double> { ["lr"] = 0.1, ["momentum"] = 0.9 } : null);
        var opt = OptimizerFixtureTests.Create(kind, [group]);
        p.Grad = Tensor.Randn([1000], DType.Float32, new Generator(3));
        q.Grad = Tensor.Randn([17], DType.Float64, new Generator(4));
        opt.Step();
        opt.Step();
        // Rounds of 10 steps: the JIT's tiering may allocate on this thread in some rounds (more on a loaded
        // machine), but an optimiser allocating per step does in all.
        var (least, rounds) = TestUtil.SteadyAllocation(() => { for (int i = 0; i < 10; i++) opt.Step(); }, limit: 0);
        Assert.True(least == 0, $"{kind}: bytes allocated by rounds of 10 steps: {string.Join(", ", rounds)}");
    }

    [Fact]
    public void StepBumpsVersionAndSkipsParamsWithoutGrad()
    {
        var a = Tensor.Ones([2], DType.Float32, requiresGrad: true);
        var b = Tensor.Ones([2], DType.Float32, requiresGrad: true);
        var opt = new SGD([a, b], lr: 0.5);
        a.Grad = Tensor.Ones(2);
        int va = a.Version, vb = b.Version;
        opt.Step();
        Assert.Equal([0.5, 0.5], a.ToDoubleArray());
        Assert.Equal([1.0, 1.0], b.ToDoubleArray());
        Assert.True(a.Version > va);
        Assert.Equal(vb, b.Version);
        Assert.Null(opt.GetState(b));
        Assert.Equal(1, opt.StepCount);
    }

    [Fact]
    public void ZeroGradClearsOrZeroes()
    {
        var a = Tensor.Ones([2], DType.Float32, requiresGrad: true);
        var opt = new SGD([a], lr: 0.1);
        a.Grad = Tensor.Ones(2);
        opt.ZeroGrad(setToNone: false);
        Assert.Equal([0.0, 0.0], a.Grad!.ToDoubleArray());
        opt.ZeroGrad();
        Assert.Null(a.Grad);
    }

    [Fact]
    public void GroupsTakeMissingOptionsFromDefaults()
    {
        var a = Tensor.Ones([2], DType.Float32, requiresGrad: true);
        var b = Tensor.Ones([2], DType.Float32, requiresGrad: true);
        var opt = new SGD([new ParamGroup([a]) { Lr = 0.01 }, new ParamGroup([b])], lr: 0.1, momentum: 0.9);
        Assert.Equal(0.01, opt.ParamGroups[0].Lr);
        Assert.Equal(0.1, opt.ParamGroups[1].Lr);
        Assert.Equal(0.9, opt.ParamGroups[0]["momentum"]);
        Assert.Contains("momentum", Assert.Throws<KeyNotFoundException>(() => opt.ParamGroups[0]["betas"]).Message);
    }

    [Fact]
    public void InvalidArgumentsAreNamed()
    {
        var a = Tensor.Ones([2], DType.Float32, requiresGrad: true);
        Assert.Contains("lr", Assert.Throws<ArgumentException>(() => new Adam([a], lr: -1)).Message);
        Assert.Contains("beta1", Assert.Throws<ArgumentException>(() => new Adam([a], beta1: 1)).Message);
        Assert.Contains("Nesterov", Assert.Throws<ArgumentException>(() => new SGD([a], lr: 0.1, nesterov: true)).Message);
        Assert.Contains("more than one", Assert.Throws<ArgumentException>(() => new SGD([a, a], lr: 0.1)).Message);
        Assert.Contains("int64", Assert.Throws<ArgumentException>(() => new SGD([Tensor.FromArray(new long[] { 1 })], lr: 0.1)).Message);
        Assert.Contains("leaf", Assert.Throws<ArgumentException>(() => new SGD([a * 2], lr: 0.1)).Message);
    }
}
