using GradFlow.Diagnostics;
using GradFlow.Optim;

namespace GradFlow.Tests.Optim;

/// <summary>The gradient statistics an optimiser measures during its update pass match a separate pass.</summary>
public class UpdateGradientStatsTests
{
    private sealed class Capture : IOptimizerObserver
    {
        public readonly List<UpdateStats> Stats = [];
        public void OnParameterUpdated(in ParameterUpdate update) => Stats.Add(update.Stats);
    }

    public static IEnumerable<object[]> Optimisers() =>
    [
        ["sgd"], ["adam"], ["adamw"], ["rmsprop"], ["adagrad"], ["nadam"], ["radam"],
    ];

    private static Optimizer Make(string name, Tensor p) => name switch
    {
        "sgd" => new SGD([p], lr: 0.1, momentum: 0.9),
        "adam" => new Adam([p], lr: 1e-3),
        "adamw" => new AdamW([p], lr: 1e-3),
        "rmsprop" => new RMSprop([p], lr: 1e-3),
        "adagrad" => new Adagrad([p], lr: 1e-2),
        "nadam" => new NAdam([p], lr: 1e-3),
        _ => new RAdam([p], lr: 1e-3),
    };

    [Theory]
    [MemberData(nameof(Optimisers))]
    public void MatchesASeparatePassOnOddSizesWithSpecialValues(string name)
    {
        foreach (int n in new[] { 1, 7, 33, 1023, 70_001 })
        {
            var p = Tensor.Randn([n], DType.Float32, new Generator((ulong)n)).Detach().RequireGrad();
            var g = Tensor.Randn([n], DType.Float32, new Generator((ulong)n + 1)) * 0.01;
            var values = g.ToArray<float>();
            for (int i = 0; i < n; i += 5) values[i] = 0;
            if (n > 33) { values[3] = float.NaN; values[n - 2] = float.PositiveInfinity; values[n / 2] = float.NegativeInfinity; }
            p.Grad = Tensor.FromArray(values);
            var expected = TensorStats.Of(p.Grad, histogram: false);
            var opt = Make(name, p);
            var capture = new Capture();
            using var _ = opt.AddObserver(capture);
            opt.Step();
            var s = capture.Stats.Single();
            Assert.Equal(expected.L2Norm, Math.Sqrt(s.GradSumSq), 1e-5 * Math.Max(expected.L2Norm, 1e-30));
            Assert.Equal(expected.MeanAbs * (n - expected.NaNCount - expected.InfCount), s.GradSumAbs, 1e-4 * Math.Max(s.GradSumAbs, 1e-30));
            Assert.Equal(expected.MaxAbs, s.GradMaxAbs, 1e-9);
            Assert.Equal((long)Math.Round(expected.ZeroFraction * n), s.GradZeros);
            Assert.Equal(expected.NaNCount, s.GradNaNs);
            Assert.Equal(expected.InfCount, s.GradInfs);
        }
    }

    [Theory]
    [MemberData(nameof(Optimisers))]
    public void NormsOfLargeFiniteWeightsAndUpdatesStayFinite(string name)
    {
        // Weights of 1e25 (squares 1e50, past float's 3.4e38) and, for SGD, updates of 1e24: finite, so their norms are.
        int n = 70_001;
        var values = Enumerable.Range(0, n).Select(i => (i % 2 == 0 ? 1 : -1) * 1e25f * (1 + (i % 5) / 4f)).ToArray();
        var p = Tensor.FromArray(values).RequireGrad();
        p.Grad = Tensor.FromArray(values.Select(v => v / 3).ToArray());
        var opt = Make(name, p);
        var capture = new Capture();
        using var _ = opt.AddObserver(capture);
        opt.Step();
        var s = capture.Stats.Single();
        var after = p.Detach().ToArray<float>();
        double paramSq = after.Sum(v => (double)v * v), updateSq = after.Select((v, i) => (double)v - values[i]).Sum(d => d * d);
        Assert.True(double.IsFinite(s.ParamSumSq) && double.IsFinite(s.UpdateSumSq) && double.IsFinite(s.GradSumSq), $"{name}: {s}");
        Assert.Equal(paramSq, s.ParamSumSq, 1e-5 * paramSq);
        Assert.Equal(updateSq, s.UpdateSumSq, 1e-4 * updateSq + 1e-30);
        Assert.True(name != "sgd" || updateSq > 1e40, "SGD's update itself overflows float squares");
    }
}
