using GradFlow.NN;
using GradFlow.Tests.NN;

namespace GradFlow.Tests.Tensors;

using static TestUtil;

public class BoolTests
{
    private static readonly Tensor s_x = Tensor.FromArray(new float[] { -1, 0, 2, 3 });

    [Fact]
    public void LogicalOpsGiveBool()
    {
        var pos = s_x.Gt(0.0);
        var small = s_x.Lt(2.5);
        Assert.Equal([0.0, 0, 1, 0], pos.LogicalAnd(small).ToDoubleArray());
        Assert.Equal([1.0, 1, 1, 1], pos.LogicalOr(small).ToDoubleArray());
        Assert.Equal([1.0, 1, 0, 1], pos.LogicalXor(small).ToDoubleArray());
        Assert.Equal([1.0, 1, 0, 0], pos.LogicalNot().ToDoubleArray());
        Assert.All(new[] { pos.LogicalAnd(small), pos.LogicalNot(), pos * small, pos + small }, t => Assert.Equal(DType.Bool, t.DType));
        Assert.Equal([0.0, 0, 1, 0], (pos * small).ToDoubleArray()); // bool * bool is and, bool + bool is or (PyTorch)
        Assert.Equal([1.0, 1, 1, 1], (pos + small).ToDoubleArray());
        Assert.Throws<ArgumentException>(() => pos - small);
    }

    [Fact]
    public void SumCountsAsInt64AndBoolMeetsNumbersAsTheirDType()
    {
        var pos = s_x.Gt(0.0);
        var n = pos.Sum();
        Assert.Equal(DType.Int64, n.DType);
        Assert.Equal(2L, n.Item<long>());
        var scaled = s_x * pos;                    // bool promoted to float32
        Assert.Equal(DType.Float32, scaled.DType);
        Assert.Equal([0.0, 0, 2, 3], scaled.ToDoubleArray());
        Assert.Equal(DType.Float32, (pos * 0.5).DType);
        Assert.Equal("tensor([False, False,  True,  True])", pos.ToString().Replace("\n", ""));
        Assert.Equal(DType.Bool, Tensor.FromArray([true, false]).DType);
        Assert.Equal([1.0, 0, 1], Tensor.FromArray(new double[] { 2, 0, -0.5 }).To(DType.Bool).ToDoubleArray());
        Assert.False(DType.Bool.IsFloatingPoint());
    }

    [Fact]
    public void WhereAndMaskedFillTakeABoolMask()
    {
        var mask = s_x.Lt(0.0);
        Assert.Equal([9.0, 0, 2, 3], s_x.MaskedFill(mask, 9).ToDoubleArray());
        Assert.Equal([-1.0, 5, 5, 5], Tensor.Where(mask, s_x, Tensor.Full([], 5, DType.Float32)).ToDoubleArray());
        var ex = Assert.Throws<ArgumentException>(() => s_x.MaskedFill(Tensor.FromArray(new float[] { 1, 0, 0, 0 }), 9));
        Assert.Contains("must be Bool", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => s_x.MaskedFill(Tensor.FromArray([true, false]), 9));
        Assert.Contains("MaskedFill", ex.Message);
    }

    [Fact] public void MaskedFillGradCheck() => Assert.True(GradCheck.Check(x => x[0].MaskedFill(x[0].Detach().Gt(0.0), -2).Pow(2), [R64(3, 3, 4)]));

    private static Dictionary<string, Tensor> RunMha(MultiheadAttention m, Dictionary<string, Tensor> xs)
    {
        var (y, w) = m.Call(xs["q"], xs["k"], xs["v"], xs["nograd_kpm"], attnMask: xs["nograd_mask"]);
        return new() { ["y"] = y, ["w"] = w! };
    }

    [Theory]
    [InlineData("mha_bool_masks")]
    [InlineData("mha_float_additive_mask")]
    public void AttentionMasksMatchPyTorch(string name)
    {
        var m = new MultiheadAttention(8, 2, batchFirst: true);
        NNFixtures.Check(name, m, xs => RunMha(m, xs), 1e-5, 1e-5, file: "masks.json");
    }

    [Fact]
    public void ABoolKeyPaddingMaskGivesPaddedKeysNoWeight()
    {
        var m = new MultiheadAttention(4, 1, batchFirst: true);
        var x = Tensor.Randn([1, 3, 4], generator: new Generator(1));
        var pad = Tensor.FromArray([false, false, true], 1, 3);
        var (_, w) = m.Call(x, x, x, pad);
        Assert.All(w!.Select(2, 2).ToDoubleArray(), v => Assert.Equal(0, v));
    }
}
