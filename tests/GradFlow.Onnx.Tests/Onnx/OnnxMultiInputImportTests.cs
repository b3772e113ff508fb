using GradFlow.Diagnostics;
using GradFlow.NN;
using GradFlow.Optim;
using GradFlow.Tests.Fixtures;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace GradFlow.Onnx.Tests.Onnx;

/// <summary>
/// Graphs with several inputs: an attention model exported with a key padding mask reads back into GradFlow, runs with
/// its inputs by position and by name, gives the original model's and ONNX Runtime's outputs and trains; bad inputs
/// are refused naming the input.
/// </summary>
public class OnnxMultiInputImportTests
{
    private const int Length = 5, Width = 8;

    public static TheoryData<string, bool> MaskedModels() => new()
    {
        { "attention", true },
        { "attention", false },
        { "layer", false },
        { "encoder", true },
    };

    private static Module Build(string kind, bool batchFirst)
    {
        var g = new Generator(90);
        Module model = kind switch
        {
            "attention" => new MultiheadAttention(Width, 2, batchFirst: batchFirst, generator: g),
            "layer" => new TransformerEncoderLayer(Width, 2, dimFeedforward: 16, batchFirst: batchFirst, generator: g),
            _ => new TransformerEncoder(() => new TransformerEncoderLayer(Width, 4, dimFeedforward: 12, batchFirst: batchFirst, normFirst: true, generator: g), 2),
        };
        // Non-zero biases (the layers start them at zero), so a dropped bias shows.
        var p = new Generator(91);
        using (Autograd.NoGrad())
            foreach (var (name, t) in model.NamedParameters())
                if (name.EndsWith("bias", StringComparison.Ordinal)) t.CopyFrom(Tensor.Randn(t.Shape.ToArray(), t.DType, p) * 0.5);
        model.Eval();
        return model;
    }

    private static int[] Shape(bool batchFirst, int n) => batchFirst ? [n, Length, Width] : [Length, n, Width];

    private static OnnxModule Import(Module model, bool batchFirst) =>
        OnnxImporter.Load(OnnxExporter.ExportWithKeyPaddingMask(model, Shape(batchFirst, 1), dynamicAxis: batchFirst ? 0 : 1));

    // Row b hides its last b % (S - 1) keys: never a whole row (softmax over no keys is NaN), and row 0 hides none.
    private static bool[] Hidden(int n) => [.. Enumerable.Range(0, n * Length).Select(i => i % Length >= Length - (i / Length % (Length - 1)))];

    private static Tensor Mask(bool[] hidden, int n) => Tensor.FromArray([.. hidden.Select(h => h ? 1.0 : 0.0)], n, Length).Gt(0.5);

    private static Tensor Original(Module model, Tensor x, Tensor mask) => model switch
    {
        MultiheadAttention m => m.Call(x, x, x, mask, needWeights: false).Output,
        TransformerEncoderLayer l => l.Call(x, null, mask),
        _ => ((TransformerEncoder)model).Call(x, null, mask),
    };

    [Theory]
    [MemberData(nameof(MaskedModels))]
    public void KeyPaddingMaskModelReadsBackWithTheOriginalsAndOnnxRuntimesOutputs(string kind, bool batchFirst)
    {
        var model = Build(kind, batchFirst);
        var bytes = OnnxExporter.ExportWithKeyPaddingMask(model, Shape(batchFirst, 1), dynamicAxis: batchFirst ? 0 : 1);
        var imported = OnnxImporter.Load(bytes);
        Assert.Equal(model.StateDict().Keys.Order(), imported.StateDict().Keys.Order());
        Assert.Equal(["input", "key_padding_mask"], imported.InputNames);
        using var session = new InferenceSession(bytes);
        foreach (int n in new[] { 1, 3 })
        {
            var x = Tensor.Randn(Shape(batchFirst, n), DType.Float32, new Generator(92 + (ulong)n));
            var hidden = Hidden(n);
            var mask = Mask(hidden, n);
            Tensor expected, byPosition, byName, unmasked;
            using (Autograd.NoGrad())
            {
                expected = Original(model, x, mask);
                byPosition = imported.Call(x, mask);
                byName = imported.Call(new Dictionary<string, Tensor> { ["key_padding_mask"] = mask, ["input"] = x });
                unmasked = imported.Call(x, Mask(new bool[n * Length], n));
            }
            Fixture.AssertClose(expected, byPosition, $"{kind} batch {n} by position", rtol: 1e-5, atol: 1e-6);
            Assert.Equal(byPosition.ToArray<float>(), byName.ToArray<float>());
            using var results = session.Run(
            [
                NamedOnnxValue.CreateFromTensor("input", new DenseTensor<float>(x.ToArray<float>(), Shape(batchFirst, n))),
                NamedOnnxValue.CreateFromTensor("key_padding_mask", new DenseTensor<bool>(hidden, [n, Length])),
            ]);
            OnnxRuntimeCheck.AssertRelative(byPosition, [.. results.Single().AsTensor<float>()], 1e-5, $"{kind} batch {n} against ONNX Runtime");
            // The imported graph reads the mask: with padding (batch 3) it changes the output, without (batch 1) it does not.
            double change = (byPosition - unmasked).Abs().Max().Item();
            Assert.True(n == 1 ? change == 0 : change > 1e-3, $"{kind} batch {n}: masked and unmasked outputs differ by {change}");
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ExposesTheInputsNamesDTypesAndShapes(bool batchFirst)
    {
        var imported = Import(Build("attention", batchFirst), batchFirst);
        Assert.Equal(2, imported.Inputs.Count);
        var (input, mask) = (imported.Inputs[0], imported.Inputs[1]);
        Assert.Equal(("input", DType.Float32, 1), (input.Name, input.DType, input.ElementType));
        Assert.Equal(("key_padding_mask", DType.Bool, 9), (mask.Name, mask.DType, mask.ElementType));
        Assert.Equal(batchFirst ? [-1, Length, Width] : [Length, -1, Width], input.Dimensions);
        Assert.Equal(batchFirst ? ["batch", "", ""] : ["", "batch", ""], input.SymbolicDimensions);
        Assert.Equal([-1, Length], mask.Dimensions);
        Assert.Equal(["batch", ""], mask.SymbolicDimensions);
        Assert.Equal("input", imported.InputName);
        Assert.Equal("output", Assert.Single(imported.Outputs).Name);
    }

    [Fact]
    public void GradientsReachTheImportedParametersAsTheyReachTheOriginals()
    {
        var model = Build("encoder", batchFirst: true);
        var imported = Import(model, batchFirst: true);
        const int n = 3;
        var x = Tensor.Randn(Shape(true, n), DType.Float32, new Generator(95));
        var mask = Mask(Hidden(n), n);
        var weights = Tensor.Randn(Shape(true, n), DType.Float32, new Generator(96));
        (Original(model, x, mask) * weights).Sum().Backward();
        (imported.Call(x, mask) * weights).Sum().Backward();
        var grads = imported.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.Grad);
        Assert.Equal(model.NamedParameters().Count(), grads.Count);
        foreach (var (key, p) in model.NamedParameters())
        {
            var g = grads[key] ?? throw new InvalidOperationException($"{key} has no gradient");
            Assert.True(g.Abs().Max().Item() > 0, $"{key}: zero gradient");
            Fixture.AssertClose(p.Grad!, g, "d" + key, rtol: 1e-4, atol: 1e-6);
        }
    }

    [Fact]
    public void FineTunesWithTheMonitorAttachedAlongTheOriginalsLossCurve()
    {
        // The original (eval mode: no dropout, as the file) and the import take the same SGD steps on a padded batch.
        var model = Build("layer", batchFirst: false);
        var imported = Import(model, batchFirst: false);
        const int n = 3;
        var x = Tensor.Randn(Shape(false, n), DType.Float32, new Generator(102));
        var mask = Mask(Hidden(n), n);
        var target = Tensor.Randn(Shape(false, n), DType.Float32, new Generator(103));
        var (sgd, sgdImported) = (new SGD(model.Parameters(), lr: 0.05), new SGD(imported.Parameters(), lr: 0.05));
        using var monitor = GradientMonitor.Attach(imported, sgdImported);
        for (int step = 0; step < 3; step++)
        {
            sgd.ZeroGrad();
            sgdImported.ZeroGrad();
            var loss = Functional.MseLoss(Original(model, x, mask), target);
            var lossImported = Functional.MseLoss(imported.Call(x, mask), target);
            loss.Backward();
            lossImported.Backward();
            sgd.Step();
            sgdImported.Step();
            Assert.True(Math.Abs(loss.Item() - lossImported.Item()) <= 1e-5 * Math.Abs(loss.Item()), $"step {step}: loss {lossImported.Item():R}, original {loss.Item():R}");
            var record = monitor.Latest!;
            Assert.Equal(imported.Parameters().Count(), record.Parameters.Count);
            Assert.True(record.GlobalGradNorm > 0 && double.IsFinite(record.GlobalGradNorm), $"step {step}: gradient norm {record.GlobalGradNorm}");
        }
    }

    [Fact]
    public void BadInputsAreRefusedNamingTheInput()
    {
        var imported = Import(Build("attention", batchFirst: true), batchFirst: true);
        var x = Tensor.Randn([2, Length, Width], DType.Float32, new Generator(97));
        var mask = Mask(Hidden(2), 2);

        void Refused(Action call, params string[] mentions)
        {
            var ex = Assert.Throws<ArgumentException>(call);
            foreach (var m in mentions) Assert.Contains(m, ex.Message, StringComparison.Ordinal);
        }

        Refused(() => imported.Call(new Dictionary<string, Tensor> { ["input"] = x, ["mask"] = mask }), "'mask'", "key_padding_mask");
        Refused(() => imported.Call(new Dictionary<string, Tensor> { ["input"] = x }), "'key_padding_mask'", "missing");
        Refused(() => imported.Call(x), "2 inputs", "key_padding_mask");
        Refused(() => imported.Call(x, mask, mask), "takes 2 inputs", "got 3");
        Refused(() => imported.Call(x, mask.To(DType.Float32)), "'key_padding_mask'", "Bool", "Float32");
        Refused(() => imported.Call(x.To(DType.Float64), mask), "'input'", "Float32", "Float64");
        Refused(() => imported.Call(x, Mask(Hidden(2), 2).Reshape(2, 1, Length)), "'key_padding_mask'", "rank 2", "[2, 1, 5]");
        Refused(() => imported.Call(Tensor.Randn([2, Length + 1, Width], DType.Float32, new Generator(98)), Mask(Hidden(2), 2)), "'input'", "size 5 on axis 1");
        Refused(() => imported.Call(x, Mask(Hidden(3), 3)), "'batch'", "'input'", "'key_padding_mask'");
        Assert.Throws<ArgumentNullException>(() => imported.Call(x, null!));
    }

    [Fact]
    public void ASingleInputGraphTakesItsInputEveryWay()
    {
        var model = new Sequential(new Linear(4, 3, generator: new Generator(99)), new ReLU());
        model.Eval();
        var imported = OnnxImporter.Load(OnnxExporter.Export(model, [1, 4]));
        var x = Tensor.Randn([5, 4], DType.Float32, new Generator(100));
        var expected = model.Call(x).ToArray<float>();
        Assert.Equal(expected, imported.Call(x).ToArray<float>());
        Assert.Equal(expected, imported.Call([x]).ToArray<float>());
        Assert.Equal(expected, imported.Call(new Dictionary<string, Tensor> { ["input"] = x }).ToArray<float>());
        Assert.Equal("input", Assert.Single(imported.Inputs).Name);
        Assert.Equal([-1, 4], imported.Inputs[0].Dimensions);
        Assert.Throws<ArgumentException>(() => imported.Call(x, x));
    }
}
