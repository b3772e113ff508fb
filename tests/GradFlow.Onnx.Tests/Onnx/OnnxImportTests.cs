using GradFlow.Diagnostics;
using GradFlow.NN;
using GradFlow.Optim;
using GradFlow.Tests.Fixtures;

namespace GradFlow.Onnx.Tests.Onnx;

/// <summary>
/// Models exported by PyTorch 1.13 (tools/onnx/make_fixtures.py) load, give PyTorch's outputs at two batch sizes,
/// keep PyTorch's state-dict names, and fine-tune with the gradient monitor attached along PyTorch's loss curve.
/// </summary>
public class OnnxImportTests
{
    private const string File = "onnx_import.json";

    public static IEnumerable<object[]> Cases() => Fixture.Names(File);

    public static IEnumerable<object[]> TrainableCases() => Fixture.Load(File).Where(c => c.Params.TryGetProperty("losses", out _)).Select(c => new object[] { c.Name });

    private static OnnxModule Load(string name) => OnnxImporter.Load(Path.Combine(AppContext.BaseDirectory, "Fixtures", "onnx", name + ".onnx"));

    [Theory]
    [MemberData(nameof(Cases))]
    public void GivesPyTorchsOutputs(string name)
    {
        var c = Fixture.Get(File, name);
        var model = Load(name);
        using (Autograd.NoGrad())
        {
            Fixture.AssertClose(c["out.y"], model.Call(c["in.x"]), name, rtol: 1e-4, atol: 1e-5);
            Fixture.AssertClose(c["out.y2"], model.Call(c["in.x2"]), name + " (batch 5)", rtol: 1e-4, atol: 1e-5);
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void OnnxRuntimeAgreesWithTheImport(string name)
    {
        var c = Fixture.Get(File, name);
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(Path.Combine(AppContext.BaseDirectory, "Fixtures", "onnx", name + ".onnx"));
        using (Autograd.NoGrad())
            OnnxRuntimeCheck.AssertRelative(Load(name).Call(c["in.x"]), OnnxRuntimeCheck.Run(session, c["in.x"]), 1e-5, name);
    }

    [Theory]
    [MemberData(nameof(TrainableCases))]
    public void KeepsPyTorchsStateDictNames(string name)
    {
        var c = Fixture.Get(File, name);
        var state = Load(name).StateDict();
        var expected = c.Tensors.Keys.Where(k => k.StartsWith("param.", StringComparison.Ordinal)).Select(k => k["param.".Length..]).Order().ToList();
        Assert.Equal(expected, state.Keys.Order().ToList());
        foreach (var key in expected) Fixture.AssertClose(c["param." + key], state[key], key, rtol: 0, atol: 0);
    }

    [Theory]
    [MemberData(nameof(TrainableCases))]
    public void FineTunesAlongPyTorchsLossCurve(string name)
    {
        var c = Fixture.Get(File, name);
        var model = Load(name);
        var optimizer = new SGD(model.Parameters(), lr: 0.05);
        using var monitor = GradientMonitor.Attach(model, optimizer);
        var losses = new List<double>();
        for (int step = 0; step < 3; step++)
        {
            optimizer.ZeroGrad();
            var loss = Functional.MseLoss(model.Call(c["in.x"]), c["target"]);
            loss.Backward();
            optimizer.Step();
            losses.Add(loss.Item());
            var record = monitor.Latest!;
            Assert.Equal(model.Parameters().Count(), record.Parameters.Count);
            Assert.True(record.GlobalGradNorm > 0 && double.IsFinite(record.GlobalGradNorm), $"step {step}: gradient norm {record.GlobalGradNorm}");
        }
        var expected = c.Params.GetProperty("losses").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - losses[i]) <= 1e-4 * Math.Abs(expected[i]) + 1e-6, $"{name} step {i}: loss {losses[i]:R}, PyTorch {expected[i]:R}");
    }

    [Fact]
    public void GradFlowsOwnExportRoundTrips()
    {
        var g = new Generator(21);
        var model = new Sequential(new Conv2d(2, 4, 3, padding: 1, generator: g), new BatchNorm2d(4), new GELU(), new MaxPool2d(2), new Flatten(),
            new Linear(16, 8, generator: g), new LayerNorm(8), new Softplus(2, 1), new Linear(8, 3, generator: g));
        model.Train();
        using (Autograd.NoGrad()) model.Call(Tensor.Randn([6, 2, 4, 4], DType.Float32, g));
        model.Eval();
        var imported = OnnxImporter.Load(OnnxExporter.Export(model, [2, 2, 4, 4]));
        var expectedKeys = model.StateDict().Keys.Where(k => !k.EndsWith("num_batches_tracked", StringComparison.Ordinal)).ToList();
        Assert.Equal(expectedKeys, imported.StateDict().Keys.ToList());
        var x = Tensor.Randn([5, 2, 4, 4], DType.Float32, g);
        using (Autograd.NoGrad()) Fixture.AssertClose(model.Call(x), imported.Call(x), "round trip", rtol: 1e-5, atol: 1e-6);
        Assert.Contains("BatchNormalization", imported.Operators);
        Assert.Equal(["1.running_mean", "1.running_var"], imported.NamedBuffers().Select(b => b.Name).ToArray());
    }

    private sealed class Swish : Module
    {
        public override Tensor Forward(Tensor input) => input * input.Sigmoid();
    }

    [Fact]
    public void ASecondOutputGradFlowDoesNotComputeIsRefusedAtLoad()
    {
        // Dropout's mask, cast and added to the output (tools/onnx/make_fixtures.py writes the graph).
        string path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "onnx", "graphs", "dropout_mask.onnx");
        var ex = Assert.Throws<NotSupportedException>(() => OnnxImporter.Load(path));
        Assert.Contains("Dropout", ex.Message);
        Assert.Contains("'dropout'", ex.Message);
        Assert.Contains("'mask'", ex.Message);
        Assert.Contains(path, ex.Message);
    }

    [Fact]
    public void AnUnsupportedOperatorIsNamedWithItsNode()
    {
        OnnxExporter.Register<Swish>((ctx, _, x) => ctx.Same("HardSwish", x));
        var bytes = OnnxExporter.Export(new Sequential(new Linear(2, 2), new Swish()), [1, 2]);
        string path = Path.Combine(Path.GetTempPath(), $"gradflow-unsupported-{Guid.NewGuid():N}.onnx");
        System.IO.File.WriteAllBytes(path, bytes);
        try
        {
            var ex = Assert.Throws<NotSupportedException>(() => OnnxImporter.Load(path));
            Assert.Contains("HardSwish", ex.Message);
            Assert.Contains("'1/HardSwish'", ex.Message);
            Assert.Contains(path, ex.Message);
        }
        finally
        {
            System.IO.File.Delete(path);
        }
    }
}
