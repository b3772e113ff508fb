using GradFlow.Kernels;
using GradFlow.NN;
using GradFlow.Optim;

namespace GradFlow.Tests.Kernels;

/// <summary>
/// Kernels that split rows, columns or attention entries over the worker pool give bit-identical forward
/// results and gradients at one and at two threads, at sizes above and below their parallel thresholds.
/// </summary>
[Collection(ParallelismCollection.Name)]
public class ThreadCountInvarianceTests
{
    /// <summary>Runs <paramref name="step"/> at 1 and then 2 threads and asserts every returned array is bitwise equal.</summary>
    private static void SameAtOneAndTwoThreads(Func<Tensor[]> step)
    {
        int saved = Parallelism.NumThreads;
        try
        {
            Parallelism.NumThreads = 1;
            var one = step().Select(t => t.ToDoubleArray()).ToArray();
            Parallelism.NumThreads = 2;
            var two = step().Select(t => t.ToDoubleArray()).ToArray();
            Assert.Equal(one.Length, two.Length);
            for (int i = 0; i < one.Length; i++) Assert.Equal(one[i], two[i]);
        }
        finally
        {
            Parallelism.NumThreads = saved;
        }
    }

    private static Tensor Leaf(int[] shape, int seed) => Tensor.Randn(shape, DType.Float32, new Generator((ulong)seed)).RequireGrad();

    [Theory]
    [InlineData(1, 3, 5, 4)]
    [InlineData(4, 64, 64, 32)]
    [InlineData(3, 33, 17, 24)]
    public void ScaledDotProductAttention(int batch, int l, int s, int d) => SameAtOneAndTwoThreads(() =>
    {
        var q = Leaf([batch, 2, l, d], 1);
        var k = Leaf([batch, 2, s, d], 2);
        var v = Leaf([batch, 2, s, d + 1], 3);
        var mask = Tensor.Randn([l, s], DType.Float32, new Generator(4));
        var (o, w) = Functional.ScaledDotProductAttention(q, k, v, mask);
        (o.Sum() + (w * w).Sum()).Backward();
        return [o, w, q.Grad!, k.Grad!, v.Grad!];
    });

    [Theory]
    [InlineData(2, 5, 12, 0.0)]
    [InlineData(16, 64, 48, 0.0)]
    [InlineData(8, 40, 24, 0.25)]
    public void PackedSelfAttention(int batch, int l, int e, double dropout) => SameAtOneAndTwoThreads(() =>
    {
        var qkv = Leaf([batch, l, 3 * e], 5);
        var (o, w) = Tensor.PackedAttention(qkv, 4, true, null, 0.5, dropout, new Generator(6))!.Value;
        (o * o).Sum().Backward();
        return [o, w, qkv.Grad!];
    });

    [Theory]
    [InlineData("sgd", 1000)]
    [InlineData("sgd", 100_003)]
    [InlineData("adam", 100_003)]
    [InlineData("adamw", 70_001)]
    public void OptimizerSteps(string kind, int n) => SameAtOneAndTwoThreads(() =>
    {
        var p = Tensor.Randn([n], DType.Float32, new Generator(7));
        var small = Tensor.Randn([3, 5], DType.Float32, new Generator(8));
        Optimizer opt = kind switch
        {
            "sgd" => new SGD([p, small], lr: 0.1, momentum: 0.9, weightDecay: 1e-3),
            "adam" => new Adam([p, small], lr: 0.01, weightDecay: 1e-2),
            _ => new AdamW([p, small], lr: 0.01),
        };
        for (int step = 0; step < 3; step++)
        {
            p.Grad = Tensor.Randn([n], DType.Float32, new Generator((ulong)(10 + step)));
            small.Grad = Tensor.Randn([3, 5], DType.Float32, new Generator((ulong)(20 + step)));
            opt.Step();
        }
        return [p, small];
    });

    [Theory]
    [InlineData("sgd")]
    [InlineData("adam")]
    public void MeasuredOptimizerStepsSplitToo(string kind)
    {
        // With an observer the update is still split: the parameters bit-identical, the measured sums equal to rounding.
        const int n = 100_003;
        var seen = new List<UpdateStats>();
        SameAtOneAndTwoThreads(() =>
        {
            var p = Tensor.Randn([n], DType.Float32, new Generator(7));
            Optimizer opt = kind == "sgd" ? new SGD([p], lr: 0.1, momentum: 0.9) : new Adam([p], lr: 0.01);
            using var _ = opt.AddObserver(new StatsRecorder(seen));
            var g = Tensor.Randn([n], DType.Float32, new Generator(10));
            using (Autograd.NoGrad()) g.Narrow(0, 0, 1000).Fill(0);
            p.Grad = g;
            opt.Step();
            return [p];
        });
        Assert.Equal(2, seen.Count);
        var (one, two) = (seen[0], seen[1]);
        Assert.Equal(1000, one.GradZeros);
        Assert.Equal(one.GradZeros, two.GradZeros);
        Assert.Equal(one.GradMaxAbs, two.GradMaxAbs);
        foreach (var (a, b) in new[] { (one.GradSumSq, two.GradSumSq), (one.GradSumAbs, two.GradSumAbs), (one.UpdateSumSq, two.UpdateSumSq), (one.ParamSumSq, two.ParamSumSq) })
            Assert.Equal(a, b, Math.Abs(a) * 1e-4); // float lanes (4,096 terms each a block) summed over other block boundaries
    }

    private sealed class StatsRecorder(List<UpdateStats> seen) : IOptimizerObserver
    {
        public void OnParameterUpdated(in ParameterUpdate update) => seen.Add(update.Stats);
    }

    [Theory]
    [InlineData(128, 256)]
    [InlineData(1024, 130)]
    [InlineData(4, 64)]
    [InlineData(700, 1000)]
    public void BiasGradientColumnSums(int rows, int cols) => SameAtOneAndTwoThreads(() =>
    {
        var x = Tensor.Randn([rows, cols], DType.Float32, new Generator(9));
        var sum = x.Sum(0);
        var strided = x.Transpose(0, 1).Contiguous().Transpose(0, 1).Sum(0); // the general strided loop
        Assert.Equal(strided.ToDoubleArray(), sum.ToDoubleArray());
        return [sum, x.Reshape(rows, 2, cols / 2).Sum([0, 1]), x.Reshape(2, rows / 2 * cols).Sum(0)];
    });

    [Theory]
    [InlineData(32_768)]
    [InlineData(40_001)]
    public void UnaryOpsAtTheLowerThreshold(int n) => SameAtOneAndTwoThreads(() =>
    {
        var x = Leaf([n], 11);
        var g = Tensor.Randn([n], DType.Float32, new Generator(12));
        var (s, t) = (x.Sigmoid(), x.Tanh());
        (s * g + t * g + x.Relu() * g).Sum().Backward(); // the fused activation gradients
        return [s, t, x.Exp(), x.Grad!];
    });

    [Theory]
    [InlineData(32, 256)]
    [InlineData(33, 200)]
    [InlineData(2, 16)]
    public void LstmSequence(int batch, int hidden) => SameAtOneAndTwoThreads(() =>
    {
        var lstm = new LSTM(24, hidden, generator: new Generator(13));
        var x = Leaf([5, batch, 24], 14);
        var output = lstm.Call(x);
        (output * output).Sum().Backward();
        return [output, x.Grad!, .. lstm.Parameters().Select(p => p.Grad!)];
    });

    [Theory]
    [InlineData(1024, 128, true)]
    [InlineData(300, 200, true)]
    [InlineData(257, 100, false)]
    [InlineData(4, 8, true)]
    public void LayerNormRows(int rows, int n, bool affine) => SameAtOneAndTwoThreads(() =>
    {
        var x = Leaf([rows, n], 15);
        var w = affine ? Leaf([n], 16) : null;
        var b = affine ? Leaf([n], 17) : null;
        var y = Functional.LayerNorm(x, [n], w, b);
        (y * Tensor.Randn([rows, n], DType.Float32, new Generator(18))).Sum().Backward();
        return affine ? [y, x.Grad!, w!.Grad!, b!.Grad!] : [y, x.Grad!];
    });

    [Theory]
    [InlineData(300, 200)]
    [InlineData(4096, 10)]
    [InlineData(3, 7)]
    public void SoftmaxRows(int rows, int n) => SameAtOneAndTwoThreads(() =>
    {
        var x = Leaf([rows, n], 19);
        var g = Tensor.Randn([rows, n], DType.Float32, new Generator(20));
        var (s, l) = (x.Softmax(-1), x.LogSoftmax(-1));
        (s * g + l * g).Sum().Backward();
        return [s, l, x.Grad!];
    });
}
