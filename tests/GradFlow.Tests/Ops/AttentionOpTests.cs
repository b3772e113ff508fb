using GradFlow.NN;
using static GradFlow.Tests.TestUtil;

namespace GradFlow.Tests.Ops;

/// <summary>The fused scaled-dot-product attention op against the composed formula, and its gradients.</summary>
public class AttentionOpTests
{
    private static void Both(Func<Tensor[], Tensor> f, params Tensor[] inputs)
    {
        Assert.True(GradCheck.Check(f, inputs));
        Assert.True(GradCheck.CheckSecondOrder(f, inputs));
    }

    private static Tensor Out(Tensor[] x, Tensor? mask = null, bool causal = false) =>
        Functional.ScaledDotProductAttention(x[0], x[1], x[2], mask, isCausal: causal).Output;

    [Fact] public void GradChecks() => Both(x => Out(x), R64(1, 2, 3, 4), R64(2, 2, 5, 4), R64(3, 2, 5, 3));
    [Fact] public void FloatMaskGradChecks() => Both(x => Out(x, Tensor.Randn([3, 5], DType.Float64, new Generator(9))), R64(1, 2, 3, 4), R64(2, 2, 5, 4), R64(3, 2, 5, 2));
    [Fact] public void CausalGradChecks() => Both(x => Out(x, causal: true), R64(1, 1, 2, 4, 3), R64(2, 1, 2, 4, 3), R64(3, 1, 2, 4, 3));

    [Fact]
    public void BooleanKeyPaddingMaskGradChecks()
    {
        var pad = Tensor.FromArray(new long[] { 0, 0, 1, 0, 1, 0, 0, 0 }, 2, 1, 1, 4);
        Both(x => Out(x, pad), R64(1, 2, 2, 3, 2), R64(2, 2, 2, 4, 2), R64(3, 2, 2, 4, 3));
    }

    [Fact]
    public void WeightsAndOutputTogetherGradCheck() => Both(x =>
    {
        var (o, w) = Functional.ScaledDotProductAttention(x[0], x[1], x[2]);
        return o.Sum(-1) * w.Sum(-1) + (w * w).Sum(-1);
    }, R64(1, 3, 4, 2), R64(2, 3, 3, 2), R64(3, 3, 3, 2));

    [Fact]
    public void StridedOperandsGradCheck() => Both(
        x => Functional.ScaledDotProductAttention(x[0].Transpose(0, 1), x[1].Transpose(1, 2), x[2].Transpose(-1, -2)).Output,
        R64(1, 3, 2, 4), R64(2, 2, 4, 5), R64(3, 2, 3, 5));

    [Theory]
    [InlineData(1, 1, 1, 1)]
    [InlineData(7, 33, 5, 3)]
    [InlineData(33, 7, 16, 33)]
    public void MatchesTheComposedOpsOnOddSizes(int l, int s, int d, int dv)
    {
        var g = new Generator(1);
        var q = Tensor.Randn([2, 3, l, d], DType.Float32, g).RequireGrad();
        var k = Tensor.Randn([2, 3, s, d], DType.Float32, g).RequireGrad();
        // v as a strided view: (2, 3, s, dv) read from (2, s, 3, dv) memory.
        var vBase = Tensor.Randn([2, s, 3, dv], DType.Float32, g).RequireGrad();
        var v = vBase.Permute(0, 2, 1, 3);
        var mask = Tensor.Randn([3, l, s], DType.Float32, g);
        var gOut = Tensor.Randn([2, 3, l, dv], DType.Float32, g);
        var (o, w) = Functional.ScaledDotProductAttention(q, k, v, mask);
        Assert.Equal("ScaledDotProductAttentionBackward", o.GradFn!.Name);
        var p = (q.MatMul(k.Transpose(-1, -2)) * (1 / Math.Sqrt(d)) + mask).Softmax(-1);
        var expected = p.MatMul(v);
        Close(expected.ToDoubleArray(), o.ToDoubleArray(), 1e-5, 1e-5);
        Close(p.ToDoubleArray(), w.ToDoubleArray(), 1e-5, 1e-6);
        var fused = Autograd.Grad([o], [q, k, vBase], [gOut]);
        var composed = Autograd.Grad([expected], [q, k, vBase], [gOut]);
        for (int i = 0; i < 3; i++) Close(composed[i]!.ToDoubleArray(), fused[i]!.ToDoubleArray(), 1e-4, 1e-5);
    }

    [Fact]
    public void DropoutGradChecksWithTheSameDraws() => Both(
        x => Functional.ScaledDotProductAttention(x[0], x[1], x[2], dropoutP: 0.4, generator: new Generator(5)).Output,
        R64(1, 2, 4, 3), R64(2, 2, 5, 3), R64(3, 2, 5, 2));

    [Fact]
    public void PackedDropoutGradChecks() => Both(
        x => Tensor.PackedAttention(x[0], 2, true, null, 0.7, 0.3, new Generator(6))!.Value.Output, R64(1, 2, 3, 12));

    [Fact]
    public void DropoutMatchesTheComposedOpsDrawForDraw()
    {
        var g = new Generator(1);
        var q = Tensor.Randn([2, 7, 4], DType.Float32, g).RequireGrad();
        var k = Tensor.Randn([2, 9, 4], DType.Float32, g).RequireGrad();
        var v = Tensor.Randn([2, 9, 3], DType.Float32, g).RequireGrad();
        var gOut = Tensor.Randn([2, 7, 3], DType.Float32, g);
        var (o, w) = Functional.ScaledDotProductAttention(q, k, v, dropoutP: 0.25, generator: new Generator(11));
        var p = (q.MatMul(k.Transpose(-1, -2)) * 0.5).Softmax(-1);
        var keep = Tensor.Rand([2, 7, 9], DType.Float32, new Generator(11)).Lt(0.75);
        var expected = (p * (keep * (1 / 0.75))).MatMul(v);
        Close(expected.ToDoubleArray(), o.ToDoubleArray(), 1e-5, 1e-5);
        Close(p.ToDoubleArray(), w.ToDoubleArray(), 1e-5, 1e-6);
        var fused = Autograd.Grad([o, w], [q, k, v], [gOut, w.Detach()]);
        var composed = Autograd.Grad([expected, p], [q, k, v], [gOut, w.Detach()]);
        for (int i = 0; i < 3; i++) Close(composed[i]!.ToDoubleArray(), fused[i]!.ToDoubleArray(), 1e-4, 1e-5);
    }

    [Fact]
    public void FullyMaskedRowsGiveNaNAsPyTorch()
    {
        var x = Tensor.Randn([1, 2, 3], DType.Float32, new Generator(2));
        var mask = Tensor.FromArray(new long[] { 1, 1, 0, 0 }, 2, 2);
        var (o, _) = Functional.ScaledDotProductAttention(x, x, x, mask);
        var values = o.ToDoubleArray();
        Assert.All(values[..3], v => Assert.True(double.IsNaN(v)));
        Assert.All(values[3..], v => Assert.False(double.IsNaN(v)));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void PackedSelfAttentionMatchesTheComposedOps(bool batchFirst)
    {
        const int n = 2, l = 7, heads = 3, hd = 5, e = heads * hd;
        var g = new Generator(4);
        var qkv = Tensor.Randn(batchFirst ? [n, l, 3 * e] : [l, n, 3 * e], DType.Float32, g).RequireGrad();
        var mask = Tensor.Randn([n, 1, 1, l], DType.Float32, g);
        var gOut = Tensor.Randn(batchFirst ? [n, l, e] : [l, n, e], DType.Float32, g);
        var (y, w) = Tensor.PackedAttention(qkv, heads, batchFirst, mask, 1 / Math.Sqrt(hd))!.Value;
        Tensor Heads(Tensor x) => batchFirst ? x.Reshape(n, l, heads, hd).Permute(0, 2, 1, 3) : x.Reshape(l, n, heads, hd).Permute(1, 2, 0, 3);
        var parts = qkv.Chunk(3, -1);
        var p = (Heads(parts[0]).MatMul(Heads(parts[1]).Transpose(-1, -2)) * (1 / Math.Sqrt(hd)) + mask).Softmax(-1);
        var o = p.MatMul(Heads(parts[2]));
        var expected = batchFirst ? o.Permute(0, 2, 1, 3).Reshape(n, l, e) : o.Permute(2, 0, 1, 3).Reshape(l, n, e);
        Close(expected.ToDoubleArray(), y.ToDoubleArray(), 1e-5, 1e-5);
        Close(p.ToDoubleArray(), w.ToDoubleArray(), 1e-5, 1e-6);
        var fused = Autograd.Grad([y, w], [qkv], [gOut, w.Detach()])[0]!;
        var composed = Autograd.Grad([expected, p], [qkv], [gOut, w.Detach()])[0]!;
        Close(composed.ToDoubleArray(), fused.ToDoubleArray(), 1e-4, 1e-5);
    }

    [Fact]
    public void PackedSelfAttentionGradChecks()
    {
        var mask = Tensor.Randn([3, 3], DType.Float64, new Generator(7));
        Both(x => Tensor.PackedAttention(x[0], 2, true, mask, 0.7)!.Value.Output, R64(1, 2, 3, 12));
        Both(x =>
        {
            var (y, w) = Tensor.PackedAttention(x[0], 2, false, null, 0.7)!.Value;
            return y.Sum() + (w * w).Sum();
        }, R64(2, 3, 2, 12));
    }

    [Fact]
    public void SelfAttentionModuleGradChecksWithPaddingMask()
    {
        foreach (bool batchFirst in new[] { false, true })
        {
            var m = new MultiheadAttention(4, 2, batchFirst: batchFirst, dtype: DType.Float64);
            var x = R64(1, 3, 3, 4);
            var kpm = Tensor.FromArray(new long[] { 0, 0, 1, 0, 0, 0, 1, 0, 0 }, 3, 3);
            Assert.True(GradCheck.Check(_ => m.Call(x, x, x, kpm).Output, [x, .. m.Parameters()]));
            Assert.True(GradCheck.CheckSecondOrder(_ => m.Call(x, x, x, kpm).Output, [x, .. m.Parameters()]));
        }
    }
}
