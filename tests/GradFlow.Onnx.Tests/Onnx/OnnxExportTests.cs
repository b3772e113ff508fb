using GradFlow.NN;

namespace GradFlow.Onnx.Tests.Onnx;

/// <summary>Each exported model runs in ONNX Runtime and gives GradFlow's eval-mode outputs at several batch sizes.</summary>
public class OnnxExportTests
{
    private static readonly int[] Batches = [1, 3, 7];

    private static Func<int, Tensor> Randn(ulong seed, params int[] rest) =>
        batch => Tensor.Randn([batch, .. rest], DType.Float32, new Generator(seed + (ulong)batch));

    /// <summary>Runs a few training-mode batches through the model so BatchNorm's running statistics are not the defaults.</summary>
    private static void Warm(Module model, Func<int, Tensor> input)
    {
        model.Train();
        using (Autograd.NoGrad())
            for (int i = 0; i < 3; i++) model.Call(input(8 + i));
    }

    [Fact]
    public void Mlp()
    {
        var g = new Generator(1);
        var model = new Sequential(new Linear(8, 16, generator: g), new ReLU(), new Linear(16, 16, generator: g), new Tanh(), new Dropout(0.3),
            new Linear(16, 4, generator: g), new LogSoftmax(1));
        OnnxRuntimeCheck.Check(model, Randn(10, 8), Batches);
    }

    public static TheoryData<string> Activations() =>
        ["ReLU", "Sigmoid", "Tanh", "LeakyReLU", "ELU", "SELU", "GELU", "GELU(tanh)", "SiLU", "Softplus", "Softplus(2,1)", "Hardtanh", "Softmax", "LogSoftmax", "PReLU"];

    private static Module Activation(string name) => name switch
    {
        "ReLU" => new ReLU(),
        "Sigmoid" => new Sigmoid(),
        "Tanh" => new Tanh(),
        "LeakyReLU" => new LeakyReLU(0.2),
        "ELU" => new ELU(0.7),
        "SELU" => new SELU(),
        "GELU" => new GELU(),
        "GELU(tanh)" => new GELU(tanhApproximation: true),
        "SiLU" => new SiLU(),
        "Softplus" => new Softplus(),
        "Softplus(2,1)" => new Softplus(2, 1),
        "Hardtanh" => new Hardtanh(-0.5, 0.75),
        "Softmax" => new Softmax(-1),
        "LogSoftmax" => new LogSoftmax(1),
        "PReLU" => new PReLU(6, 0.1),
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [MemberData(nameof(Activations))]
    public void EveryActivation(string name)
    {
        // Scaled input so the saturating and thresholded branches are both reached.
        var model = new Sequential(new Linear(5, 6, generator: new Generator(2)), Activation(name));
        OnnxRuntimeCheck.Check(model, b => Tensor.Randn([b, 5], DType.Float32, new Generator(20 + (ulong)b)) * 3, Batches, name: "Activation_" + name);
    }

    [Fact]
    public void PReLUPerChannelOnImages()
    {
        var model = new Sequential(new Conv2d(2, 4, 3, generator: new Generator(3)), new PReLU(4, 0.2));
        OnnxRuntimeCheck.Check(model, Randn(30, 2, 6, 6), Batches);
    }

    [Fact]
    public void Cnn()
    {
        var g = new Generator(4);
        var model = new Sequential(
            new Conv2d(3, 8, 3, padding: 1, generator: g), new BatchNorm2d(8), new ReLU(), new MaxPool2d(2),
            new Conv2d(8, 8, 3, stride: 2, padding: 1, dilation: 1, groups: 2, generator: g), new BatchNorm2d(8, affine: false), new ReLU(),
            new Conv2d(8, 6, (3, 2), padding: (2, 1), dilation: (2, 1), generator: g), new AvgPool2d(2, padding: 1, countIncludePad: false),
            new MaxPool2d((2, 2), stride: (1, 1), dilation: (1, 1)), new AdaptiveAvgPool2d(1), new Flatten(), new Linear(6, 3, generator: g));
        Warm(model, Randn(40, 3, 16, 16));
        OnnxRuntimeCheck.Check(model, Randn(40, 3, 16, 16), Batches);
    }

    [Fact]
    public void AdaptivePoolingToAnEvenGrid()
    {
        var model = new Sequential(new Conv2d(2, 3, 3, padding: 1, generator: new Generator(5)), new AdaptiveAvgPool2d((2, 3)), new AvgPool2d(2, stride: 1, padding: 1));
        OnnxRuntimeCheck.Check(model, Randn(50, 2, 8, 9), Batches);
    }

    [Fact]
    public void ResidualWithLayerNorm()
    {
        var g = new Generator(6);
        var model = new Sequential(new Linear(6, 12, generator: g),
            new Residual(new Sequential(new LayerNorm(12), new Linear(12, 12, generator: g), new GELU())),
            new Residual(new Sequential(new LayerNorm(12, elementwiseAffine: false), new Linear(12, 12, bias: false, generator: g))),
            new Linear(12, 2, generator: g));
        OnnxRuntimeCheck.Check(model, Randn(60, 6), Batches);
    }

    [Fact]
    public void LinearOnSequences()
    {
        // Rank-3 input: MatMul with the transposed weight rather than Gemm; LayerNorm over the last two axes.
        var g = new Generator(7);
        var model = new Sequential(new Linear(4, 6, generator: g), new LayerNorm([5, 6]), new Linear(6, 3, bias: false, generator: g), new Flatten(0, 1));
        OnnxRuntimeCheck.Check(model, Randn(70, 5, 4), Batches);
    }

    [Fact]
    public void Conv1dGroupNormFlatten()
    {
        var g = new Generator(8);
        var model = new Sequential(new Conv1d(4, 6, 3, stride: 2, padding: 1, generator: g), new GroupNorm(3, 6), new SiLU(),
            new Conv1d(6, 6, 2, dilation: 2, groups: 3, bias: false, generator: g), new GroupNorm(2, 6, affine: false), new Flatten(1, 2), new Linear(36, 2, generator: g));
        OnnxRuntimeCheck.Check(model, Randn(80, 4, 16), Batches);
    }

    [Fact]
    public void ConvTranspose()
    {
        var g = new Generator(9);
        var model = new Sequential(new ConvTranspose2d(4, 3, 3, stride: 2, padding: 1, outputPadding: 1, generator: g), new BatchNorm2d(3), new Tanh(),
            new ConvTranspose2d(3, 2, (2, 3), stride: (1, 2), generator: g));
        Warm(model, Randn(90, 4, 5, 6));
        OnnxRuntimeCheck.Check(model, Randn(90, 4, 5, 6), Batches);
    }

    [Fact]
    public void EmbeddingWithBatchNorm1d()
    {
        var g = new Generator(10);
        var model = new Sequential(new Embedding(11, 6, paddingIdx: 0, generator: g), new Flatten(), new BatchNorm1d(24), new Linear(24, 3, generator: g));
        Func<int, Tensor> tokens = b => Tensor.RandInt(0, 11, [b, 4], generator: new Generator(100 + (ulong)b));
        Warm(model, tokens);
        OnnxRuntimeCheck.Check(model, tokens, Batches);
    }

    private sealed class Unregistered : Module
    {
        public override Tensor Forward(Tensor input) => input * 2;
    }

    [Fact]
    public void AModuleWithoutConverterIsNamed()
    {
        var model = new Sequential(new Linear(2, 2), new Unregistered());
        var ex = Assert.Throws<NotSupportedException>(() => OnnxExporter.Export(model, [1, 2]));
        Assert.Contains("Unregistered", ex.Message);
        Assert.Contains("'1'", ex.Message);
    }

    private sealed class TwoBranch : Module
    {
        public TwoBranch()
        {
            A = RegisterModule("a", new Linear(3, 4, generator: new Generator(11)));
            B = RegisterModule("b", new Linear(3, 4, generator: new Generator(12)));
        }

        public Linear A { get; }

        public Linear B { get; }

        public override Tensor Forward(Tensor input) => A.Call(input).Relu() * B.Call(input).Sigmoid();
    }

    [Fact]
    public void AUserModuleExportsThroughARegisteredConverter()
    {
        OnnxExporter.Register<TwoBranch>((ctx, m, x) =>
        {
            var a = ctx.Same("Relu", ctx.Emit(m.A, x));
            var b = ctx.Same("Sigmoid", ctx.Emit(m.B, x));
            return ctx.Same("Mul", a, [b.Name]);
        });
        OnnxRuntimeCheck.Check(new Sequential(new TwoBranch(), new Linear(4, 2, generator: new Generator(13))), Randn(110, 3), Batches);
    }
}

/// <summary>RNN, LSTM and GRU through ONNX's recurrent ops, with the gates re-ordered in the graph.</summary>
public class OnnxRecurrentExportTests
{
    private static readonly int[] Batches = [1, 3, 4];

    public static TheoryData<string> Layers() =>
        ["RNN", "RNN(relu, 2 layers)", "LSTM", "LSTM(bidirectional, batch first)", "LSTM(2 layers, no bias)", "GRU", "GRU(bidirectional, 2 layers)", "GRU(batch first)"];

    internal static (Module, bool BatchFirst) Layer(string name)
    {
        var g = new Generator(31);
        return name switch
        {
            "RNN" => (new RNN(4, 5, generator: g), false),
            "RNN(relu, 2 layers)" => (new RNN(4, 5, numLayers: 2, relu: true, generator: g), false),
            "LSTM" => (new LSTM(4, 5, generator: g), false),
            "LSTM(bidirectional, batch first)" => (new LSTM(4, 5, batchFirst: true, bidirectional: true, generator: g), true),
            "LSTM(2 layers, no bias)" => (new LSTM(4, 5, numLayers: 2, bias: false, generator: g), false),
            "GRU" => (new GRU(4, 5, generator: g), false),
            "GRU(bidirectional, 2 layers)" => (new GRU(4, 5, numLayers: 2, bidirectional: true, generator: g), false),
            "GRU(batch first)" => (new GRU(4, 5, batchFirst: true, generator: g), true),
            _ => throw new ArgumentException(name),
        };
    }

    [Theory]
    [MemberData(nameof(Layers))]
    public void MatchesGradFlow(string name)
    {
        var (layer, batchFirst) = Layer(name);
        Func<int, Tensor> input = b => Tensor.Randn(batchFirst ? [b, 6, 4] : [6, b, 4], DType.Float32, new Generator(40 + (ulong)b));
        OnnxRuntimeCheck.Check(layer, input, Batches, name: "Recurrent_" + name, dynamicAxis: batchFirst ? 0 : 1);
    }
}
