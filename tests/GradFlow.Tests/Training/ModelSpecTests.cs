using GradFlow.NN;
using GradFlow.Training;

namespace GradFlow.Tests.Training;

public sealed class ModelSpecTests
{
    private static Module Child(Module m, string path) =>
        path.Split('.').Aggregate(m, (parent, name) => parent.NamedChildren().Single(c => c.Name == name).Module);

    [Theory]
    [InlineData("mlp:784-256-128-10,relu,he,bn")]
    [InlineData("mlp:64-32-32-10,tanh,xavier,ln,res,dropout=0.25")]
    [InlineData("cnn:1x28x28-c16-p-c32k5-p-128-10,gelu,orthogonal,bn")]
    [InlineData("cnn:3x8x8-c4-p4-10,sigmoid")]
    public void CompactFormRoundTrips(string spec)
    {
        var parsed = ModelSpec.Parse(spec);
        Assert.Equal(spec, parsed.ToString());
        Assert.Equal(parsed, ModelSpec.Parse(parsed.ToString()));
        Assert.Equal(parsed, ModelSpec.FromJson(parsed.ToJson()));
    }

    [Fact]
    public void AliasesAndOrderOfOptionsDoNotMatter()
    {
        var a = ModelSpec.Parse("MLP:64-10, kaiming ,batchnorm,residual,leaky_relu");
        Assert.Equal(("he", "batch", true, "leaky_relu"), (a.Init, a.Norm, a.Residual, a.Activation));
        Assert.Equal(ModelSpec.Parse("mlp:64-10,leaky_relu,he,bn,res"), a);
    }

    [Theory]
    [InlineData("64-128-10", "must start with mlp: or cnn:")]
    [InlineData("rnn:64-10", "unknown kind 'rnn'")]
    [InlineData("mlp:64", "at least the output layer")]
    [InlineData("mlp:64-x-10", "'x' is not a layer")]
    [InlineData("mlp:64-c8-10", "an mlp has linear layers only")]
    [InlineData("mlp:1x8x8-10", "must be a feature count")]
    [InlineData("cnn:64-c8-10", "must be CxHxW")]
    [InlineData("cnn:1x8x8-c8", "the last layer must be linear")]
    [InlineData("cnn:1x8x8-16-c8-10", "after the input was flattened")]
    [InlineData("cnn:1x8x8-c8k4-10", "odd kernel")]
    [InlineData("cnn:1x4x4-p8-10", "pools 8x8 windows over a 4x4 image")]
    [InlineData("mlp:64-0-10", "has size 0")]
    [InlineData("mlp:64-10,swish", "unknown option 'swish'")]
    [InlineData("mlp:64-10,dropout=1", "dropout 1 must be in [0, 1)")]
    public void MalformedSpecsSayWhatIsWrong(string spec, string expected)
    {
        var e = Assert.Throws<FormatException>(() => ModelSpec.Parse(spec));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.StartsWith($"model spec '{spec}': ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void JsonLayersMayOverrideTheModelsSettings()
    {
        var spec = ModelSpec.FromJson("""
            // comments are allowed
            {"input": [1, 8, 8], "layers": [{"conv": 4, "kernel": 5}, {"pool": 2}, {"linear": 16, "activation": "tanh", "norm": "ln", "dropout": 0.5},
                                             {"linear": 16, "residual": true}, {"linear": 10}],
             "activation": "relu", "init": "he", "norm": "bn"}
            """);
        Assert.Equal([1, 8, 8], spec.InputShape);
        Assert.Equal(new LayerSpec(LayerKind.Conv, 4, 5), spec.Layers[0]);
        Assert.Equal("tanh", spec.Layers[2].Activation);
        Assert.StartsWith("{", spec.ToString(), StringComparison.Ordinal); // overrides have no compact form
        Assert.Equal(spec, ModelSpec.FromJson(spec.ToString()));
        var model = spec.Build(new Generator(1));
        var names = model.NamedParameters().Select(p => p.Name).ToList();
        Assert.Contains("fc1.norm.weight", names); // the layer's LayerNorm
        Assert.Contains("fc2.inner.linear.weight", names); // 16 -> 16 with its residual
        Assert.Contains("conv1.conv.weight", names);
        Assert.IsType<Tanh>(Child(model, "fc1.act"));
        Assert.Equal([3, 10], model.Call(Tensor.Randn([3, 64], DType.Float32, new Generator(2))).Shape.ToArray());
    }

    [Theory]
    [InlineData("""{"input": [64], "layers": [{"linear": 10}], "actvation": "tanh"}""", "unknown field \"actvation\"")]
    [InlineData("""{"input": [64], "layers": [{"linear": 10, "conv": 3}]}""", "exactly one of")]
    [InlineData("""{"input": [64], "layers": [{"linear": 10.5}]}""", "must be an integer")]
    [InlineData("""{"input": [64], "layers": [{"pool": 2, "kernel": 3}, {"linear": 10}]}""", "only a conv layer")]
    [InlineData("""{"layers": [{"linear": 10}]}""", "\"input\" is missing")]
    [InlineData("""{"input": [64], "layers": [{"linear": 10}], "residual": "yes"}""", "must be true or false")]
    [InlineData("""{"input": [64], "layers": [{"linear": 10}],""", "not valid JSON")]
    [InlineData("""[1, 2]""", "must be an object")]
    public void MalformedJsonSaysWhatIsWrong(string json, string expected)
    {
        var e = Assert.Throws<FormatException>(() => ModelSpec.FromJson(json, "file 'm.json'"));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.StartsWith("model file 'm.json': ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LoadNamesTheDamagedFile()
    {
        string path = Path.Combine(Path.GetTempPath(), $"gf-spec-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, "{\"input\": [64]}");
        try
        {
            var e = Assert.Throws<InvalidDataException>(() => ModelSpec.Load(path));
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void BuildsBlocksWithNormActivationDropoutAndResidualsWhereShapesMatch()
    {
        var model = ModelSpec.Parse("mlp:64-32-32-10,relu,he,bn,res,dropout=0.1").Build(new Generator(0), new Generator(1));
        Assert.Equal(["input", "fc1", "fc2", "out"], model.NamedChildren().Select(c => c.Name));
        Assert.IsType<Sequential>(Child(model, "fc1")); // 64 -> 32 cannot be residual
        var fc2 = Assert.IsType<Residual>(Child(model, "fc2"));
        var inner = (Sequential)fc2.Inner;
        Assert.Equal(["linear", "norm", "act", "dropout"], inner.NamedChildren().Select(c => c.Name));
        Assert.IsType<BatchNorm1d>(Child(inner, "norm"));
        Assert.IsType<Linear>(Child(model, "out"));
    }

    [Fact]
    public void CnnReshapesFlatRowsAndFlattensBeforeTheFirstLinearLayer()
    {
        var model = ModelSpec.Parse("cnn:1x8x8-c4-p-c4-16-10,relu,he,bn,res").Build(new Generator(0));
        Assert.Equal(["input", "conv1", "pool1", "conv2", "flatten", "fc1", "out"], model.NamedChildren().Select(c => c.Name));
        Assert.IsType<Residual>(Child(model, "conv2")); // 4 channels in, 4 out, same size
        Assert.Equal([16, 64], ((Linear)Child(model, "fc1.linear")).Weight.Shape.ToArray());
        var x = Tensor.Randn([5, 64], DType.Float32, new Generator(3));
        Assert.Equal([5, 10], model.Call(x).Shape.ToArray());
        Assert.Equal([5, 10], model.Call(x.Reshape(5, 1, 8, 8)).Shape.ToArray());
        var e = Assert.Throws<ArgumentException>(() => model.Call(Tensor.Randn([5, 63], DType.Float32, new Generator(3))));
        Assert.Contains("[1, 8, 8]", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HeInitialisationHasTheGainOverFanInAndZeroBiases()
    {
        var model = ModelSpec.Parse("mlp:256-256-10,relu,he").Build(new Generator(5));
        var linear = (Linear)Child(model, "fc1.linear");
        var w = linear.Weight.ToArray<float>();
        double std = Math.Sqrt(w.Select(v => (double)v * v).Average());
        Assert.InRange(std / Math.Sqrt(2.0 / 256), 0.97, 1.03); // 65,536 draws: the relative error of the std is about 0.3%
        Assert.All(linear.Bias!.ToArray<float>(), b => Assert.Equal(0f, b));
    }

    [Fact]
    public void TheSameSeedGivesTheSameWeights()
    {
        var spec = ModelSpec.Parse("cnn:1x8x8-c4-p-10,tanh,xavier");
        var a = spec.Build(new Generator(9)).StateDict();
        var b = spec.Build(new Generator(9)).StateDict();
        foreach (var (name, t) in a) Assert.Equal(t.ToArray<float>(), b[name].ToArray<float>());
    }
}
