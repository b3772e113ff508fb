using System.Text.Json;
using GradFlow.Optim;
using GradFlow.Tests.Fixtures;

namespace GradFlow.Tests.Optim;

/// <summary>20-step trajectories of every optimiser against PyTorch 1.13 on the same least-squares problem.</summary>
public class OptimizerFixtureTests
{
    public static IEnumerable<object[]> Cases() =>
        Fixture.Load("optim.json").Where(c => c.Name.StartsWith("optim.")).Select(c => new object[] { c.Name });

    internal static Tensor Loss(Tensor x, Tensor y, Tensor w, Tensor b)
    {
        var r = x.MatMul(w) + b - y;
        return (r * r).Sum() * (0.5 / x.Size(0));
    }

    internal static Dictionary<string, double> Options(JsonElement e) =>
        e.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetDouble());

    internal static Optimizer Create(string kind, IEnumerable<ParamGroup> groups) => kind switch
    {
        // Every option comes from the groups, so the constructor defaults here are irrelevant.
        "SGD" => new SGD(groups, lr: 0),
        "Adam" => new Adam(groups),
        "AdamW" => new AdamW(groups),
        "RMSprop" => new RMSprop(groups),
        "Adagrad" => new Adagrad(groups),
        "NAdam" => new NAdam(groups),
        "RAdam" => new RAdam(groups),
        _ => throw new ArgumentException($"unknown optimizer {kind}"),
    };

    internal static (Optimizer Opt, Tensor W, Tensor B) Build(FixtureCase c)
    {
        var w = c["init.w"].Clone().RequireGrad();
        var b = c["init.b"].Clone().RequireGrad();
        var defaults = Options(c.Params.GetProperty("options"));
        ParamGroup[] groups;
        if (c.Params.TryGetProperty("groups", out var g))
        {
            var per = g.EnumerateArray().Select(Options).ToArray();
            groups = [new ParamGroup([w], Merge(defaults, per[0])), new ParamGroup([b], Merge(defaults, per[1]))];
        }
        else
        {
            groups = [new ParamGroup([w, b], defaults)];
        }
        return (Create(c.Params.GetProperty("optimizer").GetString()!, groups), w, b);
    }

    private static Dictionary<string, double> Merge(Dictionary<string, double> a, Dictionary<string, double> b)
    {
        var d = new Dictionary<string, double>(a);
        foreach (var (k, v) in b) d[k] = v;
        return d;
    }

    internal static void TrainStep(Optimizer opt, Tensor x, Tensor y, Tensor w, Tensor b)
    {
        opt.ZeroGrad();
        Loss(x, y, w, b).Backward();
        opt.Step();
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TrajectoryMatchesPyTorch(string name)
    {
        var c = Fixture.Get("optim.json", name);
        bool f64 = c.Params.GetProperty("dtype").GetString() == "f64";
        // float32: each op rounds to 24 bits and PyTorch fuses some multiply-adds (seen: a few ulp); float64 agrees to ~1e-15.
        double rtol = f64 ? 1e-11 : 1e-5, atol = f64 ? 1e-14 : 1e-7;
        var (opt, w, b) = Build(c);
        var x = c["x"];
        var y = c["y"];
        var trajW = c["traj.w"];
        var trajB = c["traj.b"];
        for (int step = 0; step < c.IntParam("steps"); step++)
        {
            TrainStep(opt, x, y, w, b);
            Fixture.AssertClose(trajW.Select(0, step), w, $"{name} w after step {step + 1}", rtol, atol);
            Fixture.AssertClose(trajB.Select(0, step), b, $"{name} b after step {step + 1}", rtol, atol);
        }
    }
}
