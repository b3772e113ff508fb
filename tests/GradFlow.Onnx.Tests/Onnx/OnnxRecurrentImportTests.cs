using GradFlow.NN;
using GradFlow.Tests.Fixtures;
using Microsoft.ML.OnnxRuntime;

namespace GradFlow.Onnx.Tests.Onnx;

/// <summary>
/// ONNX's LSTM, GRU and RNN imported (PyTorch's exports are in <see cref="OnnxImportTests"/>): graphs with the settings
/// PyTorch never writes (tools/onnx/make_fixtures.py builds them) against ONNX Runtime, their float64 twins
/// gradchecked, and GradFlow's own export read back with the same outputs and gradients.
/// </summary>
public class OnnxRecurrentImportTests
{
    public static TheoryData<string> Graphs() => ["lstm_layout1_states", "lstm_reverse", "gru_reset_after", "gru_layout1_reverse", "rnn_mixed"];

    private static string GraphPath(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "onnx", "graphs", name + ".onnx");

    // The graphs have batch 3, 5 steps, 4 features; layout 1 puts the batch first.
    private static Tensor Input(string name, DType dtype, ulong seed) =>
        Tensor.Randn(name.Contains("layout1", StringComparison.Ordinal) ? [3, 5, 4] : [5, 3, 4], dtype, new Generator(seed));

    [Theory]
    [MemberData(nameof(Graphs))]
    public void MatchesOnnxRuntime(string name)
    {
        var model = OnnxImporter.Load(GraphPath(name));
        // ONNX Runtime runs only layout 0: a layout-1 graph is checked against its layout-0 twin between Transposes.
        using var session = new InferenceSession(System.IO.File.Exists(GraphPath(name + "_layout0")) ? GraphPath(name + "_layout0") : GraphPath(name));
        var x = Input(name, DType.Float32, 70);
        using (Autograd.NoGrad()) OnnxRuntimeCheck.AssertRelative(model.Call(x), OnnxRuntimeCheck.Run(session, x), 1e-5, name);
    }

    [Theory]
    [MemberData(nameof(Graphs))]
    public void GradChecksInFloat64(string name)
    {
        // W, R, B and the initial states are initializers, so they are parameters and the check covers them.
        var model = OnnxImporter.Load(GraphPath(name + "_f64"));
        var x = Input(name, DType.Float64, 71);
        x.RequiresGrad = true;
        Tensor[] inputs = [x, .. model.Parameters()];
        Assert.Equal(DType.Float64, inputs[1].DType);
        Assert.True(GradCheck.Check(_ => model.Call(x), inputs));
    }

    public static TheoryData<string> Layers() =>
        ["RNN", "RNN(relu, 2 layers)", "LSTM", "LSTM(bidirectional, batch first)", "LSTM(2 layers, no bias)", "GRU", "GRU(bidirectional, 2 layers)", "GRU(batch first)"];

    [Theory]
    [MemberData(nameof(Layers))]
    public void GradFlowsOwnExportReadsBackWithTheSameOutputsAndGradients(string name)
    {
        var (layer, batchFirst) = OnnxRecurrentExportTests.Layer(name);
        layer.Eval();
        Tensor Input(int b) => Tensor.Randn(batchFirst ? [b, 6, 4] : [6, b, 4], DType.Float32, new Generator(72 + (ulong)b));
        var imported = OnnxImporter.Load(OnnxExporter.Export(layer, Input(2).Shape.ToArray(), dynamicAxis: batchFirst ? 0 : 1));
        Assert.Equal(layer.StateDict().Keys.Order(), imported.StateDict().Keys.Order());
        foreach (int batch in new[] { 1, 3 })
        {
            var x = Input(batch);
            var expected = layer.Call(x);
            var actual = imported.Call(x);
            Fixture.AssertClose(expected, actual, $"{name} batch {batch}", rtol: 1e-5, atol: 1e-6);
            // The same loss through both: every parameter's gradient matches by name.
            var weights = Tensor.Randn(expected.Shape.ToArray(), DType.Float32, new Generator(73));
            layer.ZeroGrad();
            imported.ZeroGrad();
            (expected * weights).Sum().Backward();
            (actual * weights).Sum().Backward();
            var grads = imported.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.Grad);
            foreach (var (key, p) in layer.NamedParameters())
                Fixture.AssertClose(p.Grad!, grads[key] ?? throw new InvalidOperationException($"{key} has no gradient"), $"{name} d{key}", rtol: 1e-4, atol: 1e-6);
        }
    }

    /// <summary>An LSTM node with the given extra attributes, from weights in ONNX's layout.</summary>
    private sealed class RawLstm : Module
    {
        public RawLstm() => (W, R) = (RegisterParameter("W", Tensor.Randn([1, 8, 3], DType.Float32, new Generator(74))), RegisterParameter("R", Tensor.Randn([1, 8, 2], DType.Float32, new Generator(75))));

        public Tensor W { get; }

        public Tensor R { get; }

        public OnnxAttribute[] Extra { get; init; } = [];

        public override Tensor Forward(Tensor input) => throw new NotSupportedException("export only");

        public static byte[] Export(RawLstm model)
        {
            OnnxExporter.Register<RawLstm>((ctx, m, x) => ctx.Node("LSTM", [x.Name, ctx.Parameter(m.W), ctx.Parameter(m.R)], [x.Shape[0], 1, x.Shape[1], 2], x.DType,
                [OnnxAttribute.Int("hidden_size", 2), .. m.Extra]));
            return OnnxExporter.Export(model, [4, 1, 3], dynamicAxis: 1);
        }
    }

    public static TheoryData<string> RefusedSettings() => ["clip", "activations", "input_forget"];

    [Theory]
    [MemberData(nameof(RefusedSettings))]
    public void SettingsPyTorchNeverWritesAreRefusedAtLoadNamingTheNode(string setting)
    {
        OnnxAttribute extra = setting switch
        {
            "clip" => OnnxAttribute.Float("clip", 1),
            "activations" => OnnxAttribute.Strings("activations", "Sigmoid", "Relu", "Tanh"),
            _ => OnnxAttribute.Int("input_forget", 1),
        };
        var bytes = RawLstm.Export(new RawLstm { Extra = [extra] });
        var ex = Assert.Throws<NotSupportedException>(() => OnnxImporter.Load(bytes));
        Assert.Contains("LSTM", ex.Message);
        Assert.Contains("'LSTM'", ex.Message);
        Assert.Contains(setting == "activations" ? "Relu" : setting, ex.Message);
    }

    [Fact]
    public void AWrongInputNamesTheNodeAndTheWeight()
    {
        var imported = OnnxImporter.Load(RawLstm.Export(new RawLstm()));
        var ex = Assert.Throws<ArgumentException>(() => imported.Call(Tensor.Randn([4, 2, 5], DType.Float32, new Generator(76))));
        Assert.Contains("'LSTM'", ex.Message);
        Assert.Contains("W", ex.Message);
        Assert.Contains("[4, 2, 5]", ex.Message);
    }
}
