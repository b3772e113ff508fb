using GradFlow.NN;
using static GradFlow.Tests.TestUtil;

namespace GradFlow.Tests.NN;

public class LossTests
{
    private static Reduction Red(string? r) => r switch
    {
        "sum" => Reduction.Sum,
        "none" => Reduction.None,
        "batchmean" => Reduction.BatchMean,
        _ => Reduction.Mean,
    };

    private static readonly Tensor ClassWeights = Tensor.FromArray(new[] { 0.5f, 1.0f, 2.0f, 1.5f });

    public static TheoryData<string> Cases() =>
    [
        "mse_mean", "mse_sum", "mse_none", "l1", "smooth_l1", "huber", "ce", "ce_weight_ignore_smooth", "ce_none_smooth",
        "ce_probs", "ce_spatial", "nll", "bce", "bce_logits", "kldiv", "kldiv_log",
    ];

    private static Loss Make(string name, GradFlow.Tests.Fixtures.FixtureCase c, DType dtype = DType.Float32)
    {
        var p = c.Params;
        string? red = p.TryGetProperty("reduction", out var r) ? r.GetString() : null;
        double Get(string k, double d) => p.TryGetProperty(k, out var v) ? v.GetDouble() : d;
        var cw = ClassWeights.To(dtype);
        return name switch
        {
            var n when n.StartsWith("mse") => new MSELoss(Red(red)),
            "l1" => new L1Loss(),
            "smooth_l1" => new SmoothL1Loss(beta: Get("beta", 1)),
            "huber" => new HuberLoss(Red(red), Get("delta", 1)),
            "ce" => new CrossEntropyLoss(),
            "ce_weight_ignore_smooth" => new CrossEntropyLoss(cw, ignoreIndex: 2, labelSmoothing: 0.1),
            "ce_none_smooth" => new CrossEntropyLoss(reduction: Reduction.None, labelSmoothing: 0.2),
            "ce_probs" => new CrossEntropyLoss(cw, labelSmoothing: 0.1),
            "ce_spatial" => new CrossEntropyLoss(ignoreIndex: 0),
            "nll" => new NLLLoss(cw, ignoreIndex: 1),
            "bce" => new BCELoss(c["param.weight"].To(dtype)),
            "bce_logits" => new BCEWithLogitsLoss(posWeight: c["param.pos_weight"].To(dtype)),
            "kldiv" => new KLDivLoss(Reduction.BatchMean),
            "kldiv_log" => new KLDivLoss(Reduction.Sum, logTarget: true),
            _ => throw new ArgumentException(name),
        };
    }

    [Theory, MemberData(nameof(Cases))]
    public void LossMatchesPyTorch(string name)
    {
        var c = NNFixtures.Case("loss_" + name);
        var loss = Make(name, c);
        NNFixtures.Check("loss_" + name, loss, xs => new() { ["y"] = loss.Call(xs["x"], xs["nograd_target"]) });
    }

    [Theory, MemberData(nameof(Cases))]
    public void LossGradChecksFirstAndSecondOrder(string name)
    {
        var c = NNFixtures.Case("loss_" + name);
        var loss = Make(name, c, DType.Float64);
        var x = c["in.x"].To(DType.Float64).Detach().RequireGrad();
        var t = c["in.nograd_target"];
        if (t.DType.IsFloatingPoint()) t = t.To(DType.Float64);
        Assert.True(GradCheck.Check(xs => loss.Call(xs[0], t), [x]));
        // The piecewise losses (L1, SmoothL1, Huber) have a second derivative only almost everywhere, which is what is checked.
        Assert.True(GradCheck.CheckSecondOrder(xs => loss.Call(xs[0], t), [x]));
    }

    [Fact]
    public void CrossEntropyIsStableForHugeLogits()
    {
        var logits = Tensor.FromArray(new[] { 1000f, 0f, -1000f, 0f, 1e4f, 0f }, 2, 3).RequireGrad();
        var loss = Functional.CrossEntropy(logits, Tensor.FromArray(new long[] { 1, 1 }));
        Assert.Equal(500.0, loss.Item(), 3);
        loss.Backward();
        Assert.All(logits.Grad!.ToDoubleArray(), g => Assert.True(double.IsFinite(g)));
    }

    [Fact]
    public void CrossEntropyUnbatchedAndProbabilityTargetsGradcheck()
    {
        var target = Tensor.FromArray(new[] { 0.2, 0.5, 0.3 }).RequireGrad();
        Assert.True(GradCheck.Check(x => Functional.CrossEntropy(x[0], x[1]), [R64(1, 3), target]));
        Assert.True(GradCheck.Check(x => Functional.CrossEntropy(x[0], Tensor.Scalar(2, DType.Int64)), [R64(2, 3)]));
    }

    [Fact]
    public void BadTargetsNameTheLossAndShapes()
    {
        var ex = Assert.Throws<ArgumentException>(() => Functional.CrossEntropy(Tensor.Zeros(4, 3), Tensor.FromArray(new long[] { 0, 1, 2 })));
        Assert.Contains("CrossEntropy", ex.Message);
        Assert.Contains("[3]", ex.Message);
        Assert.Contains("[4, 3]", ex.Message);
        var bad = Assert.Throws<ArgumentException>(() => Functional.CrossEntropy(Tensor.Zeros(2, 3), Tensor.FromArray(new long[] { 0, 3 })));
        Assert.Contains("class index 3", bad.Message);
        var mse = Assert.Throws<ArgumentException>(() => new MSELoss().Call(Tensor.Zeros(2, 3), Tensor.Zeros(3, 2)));
        Assert.Contains("MseLoss", mse.Message);
    }
}
