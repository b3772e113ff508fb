using System.Text.Json;
using System.Text.Json.Nodes;
using GradFlow.Optim;
using GradFlow.Tests.Fixtures;

namespace GradFlow.Tests.Optim;

/// <summary>Learning-rate (and momentum) sequences of every schedule against PyTorch 1.13, 40 steps, two groups.</summary>
public class SchedulerFixtureTests
{
    public static IEnumerable<object[]> Cases() =>
        Fixture.Load("optim.json").Where(c => c.Name.StartsWith("sched.")).Select(c => new object[] { c.Name });

    private static Optimizer NewOptimizer(string kind)
    {
        var a = Tensor.Zeros([3], DType.Float32, requiresGrad: true);
        var b = Tensor.Zeros([2], DType.Float32, requiresGrad: true);
        ParamGroup[] groups = [new ParamGroup([a]) { Lr = 0.1 }, new ParamGroup([b]) { Lr = 0.05 }];
        return kind == "SGD" ? new SGD(groups, lr: 0.1, momentum: 0.9) : new Adam(groups, lr: 0.01);
    }

    private static double D(JsonElement args, string name, double fallback) =>
        args.TryGetProperty(name, out var v) ? v.GetDouble() : fallback;

    private static int I(JsonElement args, string name, int fallback) =>
        args.TryGetProperty(name, out var v) ? v.GetInt32() : fallback;

    private static double[] PerGroup(JsonElement v, int groups) =>
        v.ValueKind == JsonValueKind.Array ? v.EnumerateArray().Select(x => x.GetDouble()).ToArray() : Enumerable.Repeat(v.GetDouble(), groups).ToArray();

    private static object Create(Optimizer opt, JsonElement spec)
    {
        var a = spec.GetProperty("args");
        return spec.GetProperty("type").GetString() switch
        {
            "StepLR" => new StepLR(opt, I(a, "step_size", 0), D(a, "gamma", 0.1)),
            "MultiStepLR" => new MultiStepLR(opt, a.GetProperty("milestones").EnumerateArray().Select(x => x.GetInt32()), D(a, "gamma", 0.1)),
            "ExponentialLR" => new ExponentialLR(opt, D(a, "gamma", 0)),
            "CosineAnnealingLR" => new CosineAnnealingLR(opt, I(a, "T_max", 0), D(a, "eta_min", 0)),
            "CosineAnnealingWarmRestarts" => new CosineAnnealingWarmRestarts(opt, I(a, "T_0", 0), I(a, "T_mult", 1), D(a, "eta_min", 0)),
            "LinearLR" => new LinearLR(opt, D(a, "start_factor", 1.0 / 3), D(a, "end_factor", 1.0), I(a, "total_iters", 5)),
            "OneCycleLR" => new OneCycleLR(opt, PerGroup(a.GetProperty("max_lr"), opt.ParamGroups.Count), I(a, "total_steps", 0),
                D(a, "pct_start", 0.3), a.TryGetProperty("anneal_strategy", out var s) && s.GetString() == "linear" ? AnnealStrategy.Linear : AnnealStrategy.Cos,
                baseMomentum: D(a, "base_momentum", 0.85), maxMomentum: D(a, "max_momentum", 0.95), divFactor: D(a, "div_factor", 25),
                finalDivFactor: D(a, "final_div_factor", 1e4), threePhase: a.TryGetProperty("three_phase", out var t) && t.GetBoolean()),
            "ReduceLROnPlateau" => new ReduceLROnPlateau(opt,
                a.TryGetProperty("min_lr", out var m) ? PerGroup(m, opt.ParamGroups.Count) : new double[opt.ParamGroups.Count],
                a.GetProperty("mode").GetString() == "max" ? PlateauMode.Max : PlateauMode.Min, D(a, "factor", 0.1), I(a, "patience", 10),
                D(a, "threshold", 1e-4), a.TryGetProperty("threshold_mode", out var tm) && tm.GetString() == "abs" ? ThresholdMode.Abs : ThresholdMode.Rel,
                I(a, "cooldown", 0)),
            var x => throw new ArgumentException($"unknown scheduler {x}"),
        };
    }

    private static (Optimizer, ILRScheduler) Build(FixtureCase c)
    {
        var opt = NewOptimizer(c.Params.GetProperty("optimizer").GetString()!);
        var specs = c.Params.GetProperty("schedulers").EnumerateArray().ToArray();
        if (specs.Length == 1) return (opt, (ILRScheduler)Create(opt, specs[0]));
        var inner = specs.Select(s => (LRScheduler)Create(opt, s)).ToArray();
        var milestones = c.Params.GetProperty("milestones").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        return (opt, new SequentialLR(opt, inner, milestones));
    }

    private static void StepOnce(ILRScheduler s, FixtureCase c, int i)
    {
        if (s is ReduceLROnPlateau p) p.Step(c.Params.GetProperty("metrics")[i].GetDouble());
        else if (s is SequentialLR q) q.Step();
        else ((LRScheduler)s).Step();
    }

    private static void Check(FixtureCase c, Optimizer opt, ILRScheduler s, int row)
    {
        string mkey = opt is SGD ? "momentum" : "beta1";
        for (int g = 0; g < 2; g++)
        {
            double lr = c["lr"].GetFlat(row * 2 + g);
            double mom = c["momentum"].GetFlat(row * 2 + g);
            Assert.True(Math.Abs(opt.ParamGroups[g].Lr - lr) <= 1e-15 * Math.Abs(lr) + 1e-18,
                $"{c.Name}: lr of group {g} after {row} steps is {opt.ParamGroups[g].Lr:R}, PyTorch gives {lr:R}.");
            Assert.True(Math.Abs(opt.ParamGroups[g][mkey] - mom) <= 1e-15,
                $"{c.Name}: {mkey} of group {g} after {row} steps is {opt.ParamGroups[g][mkey]:R}, PyTorch gives {mom:R}.");
            Assert.Equal(opt.ParamGroups[g].Lr, s.LastLr[g]);
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void SequenceMatchesPyTorch(string name)
    {
        var c = Fixture.Get("optim.json", name);
        var (opt, s) = Build(c);
        Check(c, opt, s, 0);
        for (int i = 0; i < c.IntParam("steps"); i++)
        {
            opt.Step();
            StepOnce(s, c, i);
            Check(c, opt, s, i + 1);
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void StateDictRoundTripContinuesTheSequence(string name)
    {
        var c = Fixture.Get("optim.json", name);
        var (opt, s) = Build(c);
        int k = 13;
        for (int i = 0; i < k; i++) StepOnce(s, c, i);
        string schedJson = s.StateDict().ToJsonString();
        var optState = opt.StateDict();

        var (opt2, s2) = Build(c);
        opt2.LoadStateDict(optState);
        s2.LoadStateDict(JsonNode.Parse(schedJson)!.AsObject());
        Check(c, opt2, s2, k);
        for (int i = k; i < c.IntParam("steps"); i++)
        {
            StepOnce(s2, c, i);
            Check(c, opt2, s2, i + 1);
        }
    }

    [Fact]
    public void LoadStateDictRejectsAnotherSchedulersState()
    {
        var opt = NewOptimizer("SGD");
        var state = new StepLR(opt, 3).StateDict();
        var ex = Assert.Throws<InvalidDataException>(() => new ExponentialLR(NewOptimizer("SGD"), 0.9).LoadStateDict(state));
        Assert.Contains("StepLR", ex.Message);
        state.Remove("last_epoch");
        Assert.Throws<InvalidDataException>(() => new StepLR(NewOptimizer("SGD"), 3).LoadStateDict(state));
    }
}
