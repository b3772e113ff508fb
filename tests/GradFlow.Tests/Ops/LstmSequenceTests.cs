using static GradFlow.Tests.TestUtil;

namespace GradFlow.Tests.Ops;

/// <summary>The fused LSTM sequence op: gradients first and second order, and agreement with its composed twin.</summary>
public class LstmSequenceTests
{
    private const int Steps = 3, Batch = 2, Hidden = 3;

    private static Tensor Flat(Tensor[] r) => Tensor.Cat([r[0].Reshape(-1), r[1].Reshape(-1), r[2].Reshape(-1)]);

    private static Tensor[] Inputs(bool bias) =>
        bias ? [R64(1, Steps, Batch, 4 * Hidden), R64(2, Batch, Hidden), R64(3, Batch, Hidden), R64(4, 4 * Hidden, Hidden), R64(5, 4 * Hidden)]
             : [R64(1, Steps, Batch, 4 * Hidden), R64(2, Batch, Hidden), R64(3, Batch, Hidden), R64(4, 4 * Hidden, Hidden)];

    private static Tensor[] Fused(Tensor[] x, bool reverse) =>
        Tensor.LstmSequence(x[0], x[1], x[2], x[3], x.Length > 4 ? x[4] : null, reverse)!;

    [Theory]
    [InlineData(false, true)]
    [InlineData(true, true)]
    [InlineData(false, false)]
    public void GradChecks(bool reverse, bool bias)
    {
        var inputs = Inputs(bias);
        Assert.True(GradCheck.Check(x => Flat(Fused(x, reverse)), inputs));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SecondOrderGradChecks(bool reverse)
    {
        var inputs = Inputs(bias: true);
        Assert.True(GradCheck.CheckSecondOrder(x => Flat(Fused(x, reverse)), inputs));
    }

    [Fact]
    public void OnlySomeOutputsAndInputsNeedGradients()
    {
        var x = Inputs(bias: true);
        x[1].RequiresGrad = false;
        x[4].RequiresGrad = false;
        Assert.True(GradCheck.Check(xs => Fused(xs, false)[1], x)); // h_n only: no gradient for the outputs or c_n
    }

    [Fact]
    public void Float32MatchesTheComposedOps()
    {
        var g = new Generator(9);
        Tensor R(params int[] s) => Tensor.Randn(s, DType.Float32, g, requiresGrad: true);
        Tensor[] x = [R(5, 4, 4 * 17), R(4, 17), R(4, 17), R(4 * 17, 17), R(4 * 17)];
        var fused = Tensor.LstmSequence(x[0], x[1], x[2], x[3], x[4], reverse: true)!;
        var composed = Tensor.LstmSequenceComposed(x[0], x[1], x[2], x[3], x[4], reverse: true);
        for (int k = 0; k < 3; k++) AssertClose(composed[k], fused[k]);
        var weights = Tensor.Randn([5, 4, 17], DType.Float32, g);
        var gf = Autograd.Grad([(fused[0] * weights).Sum() + fused[2].Sum()], x);
        var gc = Autograd.Grad([(composed[0] * weights).Sum() + composed[2].Sum()], x);
        for (int k = 0; k < x.Length; k++) AssertClose(gc[k]!, gf[k]!);
    }

    private sealed class Recorder : IAutogradObserver
    {
        public readonly List<(string Op, int[] Shape, double[] Values)> Seen = [];
        public void OnForward(string op, ReadOnlySpan<Tensor> inputs, Tensor output, Node? node) => Seen.Add((op, output.Shape.ToArray(), output.ToDoubleArray()));
        public void OnBackward(Node node, ReadOnlySpan<Tensor?> gradOutputs, ReadOnlySpan<Tensor?> gradInputs) { }
    }

    [Fact]
    public void ObserversSeeTheGateActivationsUnderTheirOpNames()
    {
        var x = Inputs(bias: true);
        var fused = new Recorder();
        using (Autograd.AddObserver(fused)) Fused(x, reverse: true);
        var composed = new Recorder();
        using (Autograd.AddObserver(composed)) Tensor.LstmSequenceComposed(x[0], x[1], x[2], x[3], x[4], reverse: true);
        foreach (var op in new[] { "Sigmoid", "Tanh" })
        {
            var seen = fused.Seen.Where(s => s.Op == op).ToArray();
            var reference = composed.Seen.Where(s => s.Op == op).ToArray();
            Assert.Single(seen); // every step and gate in one view, units in the last dim as the per-step outputs
            Assert.Equal([reference.Length, Batch, Hidden], seen[0].Shape);
            var expected = reference.Select(r => r.Values).ToArray();
            var actual = seen[0].Values;
            // Same multiset of values: the fused view groups by gate and time, the composed ops run step by step.
            AssertClose(Tensor.FromArray(expected.SelectMany(v => v).Order().ToArray(), actual.Length), Tensor.FromArray(actual.Order().ToArray(), actual.Length));
        }
    }

    private static void AssertClose(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.Shape.ToArray(), actual.Shape.ToArray());
        var e = expected.ToDoubleArray();
        var a = actual.ToDoubleArray();
        for (int i = 0; i < e.Length; i++) Assert.True(Math.Abs(e[i] - a[i]) <= 1e-5 + 1e-5 * Math.Abs(e[i]), $"element {i}: {e[i]} vs {a[i]}");
    }
}
