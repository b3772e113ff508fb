using GradFlow.Kernels;
using GradFlow.NN;

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
}
