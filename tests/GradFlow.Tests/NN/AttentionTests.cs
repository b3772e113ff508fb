using GradFlow.NN;
using static GradFlow.Tests.TestUtil;

namespace GradFlow.Tests.NN;

public class AttentionTests
{
    // Projections, a softmax and a second product in float32: agreement to a few ulps of the largest terms.
    private const double Rtol = 1e-5, Atol = 1e-5;

    private static Dictionary<string, Tensor> RunMha(MultiheadAttention m, Dictionary<string, Tensor> xs)
    {
        var (y, w) = m.Call(xs["q"], xs["k"], xs["v"], xs.GetValueOrDefault("kpm"), attnMask: xs.GetValueOrDefault("nograd_mask"));
        return new() { ["y"] = y, ["w"] = w! };
    }

    [Fact]
    public void MultiheadAttentionMatchesPyTorch()
    {
        var m = new MultiheadAttention(8, 2);
        NNFixtures.Check("mha", m, xs => RunMha(m, xs), Rtol, Atol);
    }

    [Fact]
    public void MultiheadAttentionWithMasksBatchFirstMatchesPyTorch()
    {
        var m = new MultiheadAttention(8, 4, batchFirst: true);
        NNFixtures.Check("mha_masks_batchfirst", m, xs => RunMha(m, xs), Rtol, Atol);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void EncoderLayerMatchesPyTorch(bool normFirst)
    {
        var m = new TransformerEncoderLayer(8, 2, dimFeedforward: 16, dropout: 0, normFirst: normFirst);
        NNFixtures.Check("encoder_layer_" + (normFirst ? "prenorm" : "postnorm"), m,
            xs => new() { ["y"] = m.Call(xs["x"], srcKeyPaddingMask: xs["kpm"]) }, Rtol, Atol);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DecoderLayerMatchesPyTorch(bool normFirst)
    {
        var m = new TransformerDecoderLayer(8, 2, dimFeedforward: 16, dropout: 0, activation: TransformerActivation.Gelu, batchFirst: true, normFirst: normFirst);
        NNFixtures.Check("decoder_layer_" + (normFirst ? "prenorm" : "postnorm"), m,
            xs => new() { ["y"] = m.Call(xs["x"], xs["memory"], tgtMask: Functional.CausalMask(3, 3)) }, Rtol, Atol);
    }

    [Fact]
    public void DecoderStackMatchesPyTorch()
    {
        var m = new TransformerDecoder(() => new TransformerDecoderLayer(8, 2, dimFeedforward: 16, dropout: 0, batchFirst: true), 2, new LayerNorm(8));
        NNFixtures.Check("decoder_stack", m,
            xs => new() { ["y"] = m.Call(xs["x"], xs["memory"], tgtMask: Functional.CausalMask(3, 3)) }, Rtol, Atol);
    }

    [Fact]
    public void MultiheadAttentionGradChecksWithMasks()
    {
        var m = new MultiheadAttention(4, 2, dtype: DType.Float64);
        var q = R64(1, 3, 2, 4);
        var kv = R64(2, 4, 2, 4);
        var kpm = Tensor.FromArray(new long[] { 0, 0, 0, 1, 0, 1, 0, 0 }, 2, 4);
        var mask = Tensor.Randn([3, 4], DType.Float64, new Generator(3));
        Assert.True(GradCheck.Check(_ => m.Call(q, kv, kv, kpm, attnMask: mask).Output, [q, kv, .. m.Parameters()]));
        Assert.True(GradCheck.Check(_ => m.Call(q, kv, kv, kpm).Weights!, [q, kv]));
    }

    [Fact]
    public void EncoderLayerGradChecks()
    {
        var m = new TransformerEncoderLayer(4, 2, dimFeedforward: 6, dropout: 0, normFirst: true, dtype: DType.Float64);
        var x = R64(4, 3, 2, 4);
        Assert.True(GradCheck.Check(_ => m.Call(x, Functional.CausalMask(3, 3)), [x, .. m.Parameters()]));
    }

    [Fact]
    public void DecoderLayerGradChecks()
    {
        var m = new TransformerDecoderLayer(4, 2, dimFeedforward: 6, dropout: 0, activation: TransformerActivation.Gelu, dtype: DType.Float64);
        var x = R64(5, 3, 1, 4);
        var mem = R64(6, 2, 1, 4);
        Assert.True(GradCheck.Check(_ => m.Call(x, mem, Functional.CausalMask(3, 3)), [x, mem, .. m.Parameters()]));
    }

    [Fact]
    public void NamesFollowPyTorch()
    {
        var enc = new TransformerEncoder(() => new TransformerEncoderLayer(8, 2, 16), 2, new LayerNorm(8));
        var keys = enc.StateDict().Keys.ToList();
        Assert.Equal("layers.0.self_attn.in_proj_weight", keys[0]);
        Assert.Contains("layers.1.linear2.bias", keys);
        Assert.Contains("layers.0.self_attn.out_proj.weight", keys);
        Assert.Equal("norm.bias", keys[^1]);
        Assert.Equal(2 * 12 + 2, keys.Count);
        var dec = new TransformerDecoderLayer(8, 2, 16);
        Assert.Contains("multihead_attn.in_proj_bias", dec.StateDict().Keys);
        Assert.Contains("norm3.weight", dec.StateDict().Keys);
    }

    [Fact]
    public void BadShapesAndMasksNameTheLayer()
    {
        var m = new MultiheadAttention(8, 2);
        var ex = Assert.Throws<ArgumentException>(() => m.Call(Tensor.Zeros(3, 2, 6), Tensor.Zeros(3, 2, 6), Tensor.Zeros(3, 2, 6)));
        Assert.Contains("MultiheadAttention", ex.Message);
        Assert.Contains("[3, 2, 6]", ex.Message);
        var x = Tensor.Zeros(3, 2, 8);
        var mask = Assert.Throws<ArgumentException>(() => m.Call(x, x, x, Tensor.Zeros([2, 4], DType.Int64)));
        Assert.Contains("key_padding_mask must be [2, 3], got [2, 4]", mask.Message);
    }
}
