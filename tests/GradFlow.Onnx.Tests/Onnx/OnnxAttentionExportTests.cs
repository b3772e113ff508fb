using GradFlow.NN;

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
}
