using GradFlow.NN;
using static GradFlow.Tests.TestUtil;

namespace GradFlow.Tests.NN;

public class LinearAndActivationTests
{
    [Fact] public void LinearMatchesPyTorch() => NNFixtures.Check("linear", new Linear(5, 3));
    [Fact] public void Linear3dNoBiasMatchesPyTorch() => NNFixtures.Check("linear_3d_nobias", new Linear(4, 2, bias: false));

    [Fact]
    public void MlpMatchesPyTorch() =>
        NNFixtures.Check("mlp", new Sequential(new Linear(6, 8), new ReLU(), new Linear(8, 8), new Tanh(), new Linear(8, 3)));

    [Fact] public void EmbeddingMatchesPyTorch() => NNFixtures.Check("embedding", new Embedding(10, 4, paddingIdx: 1));

    public static TheoryData<string> Activations() =>
    [
        "sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "selu", "gelu", "gelu_tanh", "silu", "softplus",
        "hardtanh", "softmax", "log_softmax",
    ];

    private static Module MakeActivation(string name, DType dtype = DType.Float32) => name switch
    {
        "sigmoid" => new Sigmoid(),
        "tanh" => new Tanh(),
        "relu" => new ReLU(),
        "leaky_relu" => new LeakyReLU(0.2),
        "prelu" => new PReLU(3, dtype: dtype),
        "elu" => new ELU(0.7),
        "selu" => new SELU(),
        "gelu" => new GELU(),
        "gelu_tanh" => new GELU(tanhApproximation: true),
        "silu" => new SiLU(),
        "softplus" => new Softplus(beta: 2, threshold: 3),
        "hardtanh" => new Hardtanh(-0.5, 0.8),
        "softmax" => new Softmax(1),
        "log_softmax" => new LogSoftmax(1),
        _ => throw new ArgumentException(name),
    };

    [Theory, MemberData(nameof(Activations))]
    public void ActivationMatchesPyTorch(string name) => NNFixtures.Check("act_" + name, MakeActivation(name));

    [Theory, MemberData(nameof(Activations))]
    public void ActivationGradChecks(string name)
    {
        var m = MakeActivation(name, DType.Float64);
        // Inputs kept away from the kinks at 0 (and Hardtanh's bounds, Softplus's threshold) where finite differences straddle them.
        var x = (R64(3, 3, 3, 2) * 2.0).Detach();
        using (global::GradFlow.Autograd.NoGrad())
        {
            var away = Tensor.Where(x.Abs().Lt(0.1), x + 0.3, x);
            x = Tensor.Where((away - 0.8).Abs().Lt(0.05), away + 0.1, away).Detach().RequireGrad();
        }
        Tensor[] inputs = [x, .. m.Parameters()];
        Assert.True(GradCheck.Check(_ => m.Call(x), inputs));
        Assert.True(GradCheck.CheckSecondOrder(_ => m.Call(x), inputs));
    }

    [Fact]
    public void LinearGradChecksFirstAndSecondOrder()
    {
        var m = new Linear(4, 3, dtype: DType.Float64);
        var x = R64(1, 2, 4);
        Tensor[] inputs = [x, m.Weight, m.Bias!];
        Assert.True(GradCheck.Check(_ => m.Call(x).Tanh(), inputs));
        Assert.True(GradCheck.CheckSecondOrder(_ => m.Call(x).Tanh(), inputs));
    }

    [Fact]
    public void EmbeddingGradChecksAndSkipsPaddingRow()
    {
        var idx = Tensor.FromArray(new long[] { 0, 2, 4, 2, 0, 1 }, 2, 3);
        var plain = new Embedding(5, 3, dtype: DType.Float64);
        Assert.True(GradCheck.Check(_ => plain.Call(idx).Sin(), [plain.Weight]));
        // The padding row's gradient is cut on purpose, so it is checked directly, not by finite differences.
        var m = new Embedding(5, 3, paddingIdx: 2, dtype: DType.Float64);
        m.Call(idx).Sum().Backward();
        Assert.All(m.Weight.Grad!.Select(0, 2).ToDoubleArray(), g => Assert.Equal(0.0, g));
        Assert.Equal(2.0, m.Weight.Grad!.GetFlat(0));
    }

    [Fact]
    public void ErfMatchesKnownValues()
    {
        var x = Tensor.FromArray(new[] { 0.0, 0.5, 1.0, -2.0, 3.5, 6.5 });
        Close([0.0, 0.5204998778130465, 0.8427007929497149, -0.9953222650189527, 0.9999992569016276, 1.0], x.Erf().ToDoubleArray(), 1e-14, 1e-15);
        Assert.True(GradCheck.CheckSecondOrder(t => t[0].Erf(), [R64(2, 6)]));
    }

    [Fact]
    public void WrongInputShapeNamesLayerAndShapes()
    {
        var net = new Sequential(new Linear(4, 3), new ReLU());
        var ex = Assert.Throws<ArgumentException>(() => net.Call(Tensor.Zeros(2, 5)));
        Assert.Contains("Linear '0'", ex.Message);
        Assert.Contains("[*, 4]", ex.Message);
        Assert.Contains("[2, 5]", ex.Message);
    }

    [Fact]
    public void DropoutKeepsExpectationAndIsSeedable()
    {
        var d = new Dropout(0.3, new Generator(5));
        var x = Tensor.Ones(200, 100);
        var y = d.Call(x).ToDoubleArray();
        double zeros = y.Count(v => v == 0) / (double)y.Length;
        Assert.InRange(zeros, 0.3 - 0.01, 0.3 + 0.01); // 20000 Bernoulli(0.3): std 0.0032
        Assert.All(y, v => Assert.True(v == 0 || Math.Abs(v - 1 / 0.7) < 1e-6));
        Assert.InRange(y.Average(), 0.97, 1.03);
        var again = new Dropout(0.3, new Generator(5)).Call(x).ToDoubleArray();
        Assert.Equal(y, again);
        d.Eval();
        Assert.Same(x, d.Call(x));
    }

    [Fact]
    public void DropoutGradientUsesTheSameMask()
    {
        var x = Tensor.Randn([50], DType.Float64, new Generator(1), requiresGrad: true);
        var y = Functional.Dropout(x, 0.5, generator: new Generator(2));
        y.Sum().Backward();
        var yv = y.ToDoubleArray();
        var g = x.Grad!.ToDoubleArray();
        for (int i = 0; i < yv.Length; i++) Assert.Equal(yv[i] == 0 ? 0.0 : 2.0, g[i]);
    }
}
