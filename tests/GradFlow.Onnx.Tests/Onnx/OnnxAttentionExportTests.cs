using GradFlow.NN;
using GradFlow.Tests.Fixtures;

namespace GradFlow.Onnx.Tests.Onnx;

/// <summary>Self-attention and the transformer encoder, composed from MatMul, Reshape, Transpose and Softmax.</summary>
public class OnnxAttentionExportTests
{
    private static readonly int[] Batches = [1, 3];

    // Non-zero in-projection and output biases (the layer initialises them to zero), so a dropped bias shows.
    private static void Perturb(Module model, ulong seed)
    {
        var g = new Generator(seed);
        using (Autograd.NoGrad())
            foreach (var (name, p) in model.NamedParameters())
                if (name.EndsWith("bias", StringComparison.Ordinal)) p.CopyFrom(Tensor.Randn(p.Shape.ToArray(), p.DType, g) * 0.5);
    }

    private static Func<int, Tensor> Sequences(ulong seed, bool batchFirst, int length, int width) =>
        b => Tensor.Randn(batchFirst ? [b, length, width] : [length, b, width], DType.Float32, new Generator(seed + (ulong)b));

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void MultiheadSelfAttention(bool batchFirst)
    {
        var model = new MultiheadAttention(8, 2, batchFirst: batchFirst, generator: new Generator(50));
        Perturb(model, 51);
        OnnxRuntimeCheck.Check(model, Sequences(52, batchFirst, 5, 8), Batches, name: $"MultiheadAttention_{(batchFirst ? "batch_first" : "seq_first")}",
            dynamicAxis: batchFirst ? 0 : 1);
    }

    [Fact]
    public void MultiheadSelfAttentionWithoutBiasAndOneHead()
    {
        var model = new MultiheadAttention(6, 1, bias: false, batchFirst: true, generator: new Generator(53));
        OnnxRuntimeCheck.Check(model, Sequences(54, true, 4, 6), Batches);
    }

    [Fact]
    public void MultiheadSelfAttentionOverAFreeSequenceLength()
    {
        // The sequence axis is the dynamic one: the same file runs at lengths 1, 3 and 6 (with a batch of 2).
        var model = new MultiheadAttention(8, 4, batchFirst: true, generator: new Generator(55));
        Perturb(model, 56);
        OnnxRuntimeCheck.Check(model, len => Tensor.Randn([2, len, 8], DType.Float32, new Generator(57 + (ulong)len)), [1, 3, 6], dynamicAxis: 1);
    }

    [Fact]
    public void MultiheadSelfAttentionKeepsThePackedNames()
    {
        var model = new Sequential(new MultiheadAttention(8, 2, batchFirst: true, generator: new Generator(58)));
        var bytes = OnnxExporter.Export(model, [1, 3, 8]);
        var text = System.Text.Encoding.UTF8.GetString(bytes);
        foreach (var name in new[] { "0.in_proj_weight", "0.in_proj_bias", "0.out_proj.weight", "0.out_proj.bias" })
            Assert.Contains(name, text, StringComparison.Ordinal);
    }

    public static TheoryData<bool, bool, TransformerActivation> EncoderLayers() => new()
    {
        { false, true, TransformerActivation.Relu },
        { true, true, TransformerActivation.Relu },
        { false, false, TransformerActivation.Gelu },
        { true, false, TransformerActivation.Gelu },
    };

    [Theory]
    [MemberData(nameof(EncoderLayers))]
    public void TransformerEncoderLayerBothNorms(bool normFirst, bool batchFirst, TransformerActivation activation)
    {
        var model = new TransformerEncoderLayer(8, 2, dimFeedforward: 16, dropout: 0.2, activation: activation, batchFirst: batchFirst, normFirst: normFirst,
            generator: new Generator(60));
        Perturb(model, 61);
        OnnxRuntimeCheck.Check(model, Sequences(62, batchFirst, 5, 8), Batches,
            name: $"TransformerEncoderLayer_{(normFirst ? "pre" : "post")}_{activation}_{(batchFirst ? "batch_first" : "seq_first")}", dynamicAxis: batchFirst ? 0 : 1);
    }

    [Fact]
    public void TransformerEncoderStackWithFinalNorm()
    {
        var g = new Generator(63);
        var model = new Sequential(new Linear(4, 8, generator: g),
            new TransformerEncoder(() => new TransformerEncoderLayer(8, 2, dimFeedforward: 12, batchFirst: true, generator: g), 2, new LayerNorm(8)),
            new Linear(8, 3, generator: g));
        Perturb(model, 64);
        OnnxRuntimeCheck.Check(model, Sequences(65, true, 6, 4), Batches);
    }

    [Fact]
    public void ReadsBackThroughTheImporterWithTheSameOutputsAndGradients()
    {
        var g = new Generator(66);
        var model = new TransformerEncoder(() => new TransformerEncoderLayer(8, 2, dimFeedforward: 12, activation: TransformerActivation.Gelu, normFirst: true, generator: g), 2,
            new LayerNorm(8));
        Perturb(model, 67);
        model.Eval();
        var imported = OnnxImporter.Load(OnnxExporter.Export(model, [5, 2, 8], dynamicAxis: 1));
        Assert.Equal(model.StateDict().Keys.Order(), imported.StateDict().Keys.Order());
        var x = Tensor.Randn([5, 3, 8], DType.Float32, new Generator(68));
        var (expected, actual) = (model.Call(x), imported.Call(x));
        Fixture.AssertClose(expected, actual, "encoder read back", rtol: 1e-5, atol: 1e-6);
        var weights = Tensor.Randn(expected.Shape.ToArray(), DType.Float32, new Generator(69));
        (expected * weights).Sum().Backward();
        (actual * weights).Sum().Backward();
        var grads = imported.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.Grad);
        foreach (var (key, p) in model.NamedParameters())
            Fixture.AssertClose(p.Grad!, grads[key] ?? throw new InvalidOperationException($"{key} has no gradient"), "d" + key, rtol: 1e-4, atol: 1e-6);
    }

    public static TheoryData<string, bool> MaskedModels() => new()
    {
        { "attention", true },
        { "attention", false },
        { "layer", false },
        { "encoder", true },
    };

    // Row b hides its last b % (S - 1) keys: never a whole row (softmax over no keys is NaN in both), and batch 1 hides none.
    private static bool[] PaddingMask(int n, int s) => [.. Enumerable.Range(0, n * s).Select(i => i % s >= s - (i / s % (s - 1)))];

    [Theory]
    [MemberData(nameof(MaskedModels))]
    public void KeyPaddingMaskIsASecondInput(string kind, bool batchFirst)
    {
        var g = new Generator(80);
        Module model = kind switch
        {
            "attention" => new MultiheadAttention(8, 2, batchFirst: batchFirst, generator: g),
            "layer" => new TransformerEncoderLayer(8, 2, dimFeedforward: 16, batchFirst: batchFirst, generator: g),
            _ => new TransformerEncoder(() => new TransformerEncoderLayer(8, 4, dimFeedforward: 12, batchFirst: batchFirst, normFirst: true, generator: g), 2),
        };
        Perturb(model, 81);
        model.Eval();
        const int length = 5;
        int[] Shape(int n) => batchFirst ? [n, length, 8] : [length, n, 8];
        var bytes = OnnxExporter.ExportWithKeyPaddingMask(model, Shape(1), dynamicAxis: batchFirst ? 0 : 1);
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(bytes);
        foreach (int n in new[] { 1, 3 })
        {
            var x = Tensor.Randn(Shape(n), DType.Float32, new Generator(82 + (ulong)n));
            var hidden = PaddingMask(n, length);
            var mask = Tensor.FromArray([.. hidden.Select(h => h ? 1.0 : 0.0)], n, length).Gt(0.5);
            Tensor expected, unmasked;
            using (Autograd.NoGrad())
            {
                expected = model switch
                {
                    MultiheadAttention m => m.Call(x, x, x, mask, needWeights: false).Output,
                    TransformerEncoderLayer l => l.Call(x, null, mask),
                    _ => ((TransformerEncoder)model).Call(x, null, mask),
                };
                unmasked = model.Call(x);
            }
            using var results = session.Run(
            [
                Microsoft.ML.OnnxRuntime.NamedOnnxValue.CreateFromTensor("input", new Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>(x.ToArray<float>(), Shape(n))),
                Microsoft.ML.OnnxRuntime.NamedOnnxValue.CreateFromTensor("key_padding_mask", new Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<bool>(hidden, [n, length])),
            ]);
            OnnxRuntimeCheck.AssertRelative(expected, [.. results.Single().AsTensor<float>()], 1e-5, $"{kind} batch {n}");
            // The mask matters where it hides keys: the test would see it ignored.
            double change = (expected - unmasked).Abs().Max().Item();
            Assert.True(n == 1 ? change == 0 : change > 1e-3, $"{kind} batch {n}: masked and unmasked outputs differ by {change}");
        }
    }

    [Fact]
    public void AKeyPaddingMaskNeedsAnAttention()
    {
        var ex = Assert.Throws<NotSupportedException>(() => OnnxExporter.ExportWithKeyPaddingMask(new Linear(8, 8), [2, 5, 8]));
        Assert.Contains("MultiheadAttention", ex.Message);
    }
}
