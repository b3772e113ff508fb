using GradFlow.Kernels;

namespace GradFlow.Tests.Kernels;

/// <summary>Elementwise ops split over the worker pool give bit-identical results to one thread, at any size and offset.</summary>
[Collection(ParallelismCollection.Name)]
public class ElementwiseParallelTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(33)]
    [InlineData(1023)]
    [InlineData(65537)]
    [InlineData(200_003)]
    public void TwoThreadsMatchOneBitForBit(int n)
    {
        var r = new Random(n);
        var x = new float[n + 3];
        var b = new float[n + 5];
        for (int i = 0; i < x.Length; i++) x[i] = (float)((r.NextDouble() - 0.5) * 20);
        for (int i = 0; i < b.Length; i++) b[i] = (float)((r.NextDouble() - 0.5) * 4);
        int saved = Parallelism.NumThreads;
        try
        {
            var one = Run(1, x, b, n);
            var two = Run(2, x, b, n);
            Assert.Equal(one.Sig, two.Sig);
            Assert.Equal(one.Grad, two.Grad);
        }
        finally
        {
            Parallelism.NumThreads = saved;
        }
    }

    private static (float[] Sig, float[] Grad) Run(int threads, float[] x, float[] b, int n)
    {
        Parallelism.NumThreads = threads;
        var sig = new float[n + 1];
        var grad = new float[n + 2];
        ElementwiseParallel.Unary<SigmoidOp, float>(x, 3, sig, 1, n);
        ElementwiseParallel.Binary<TanhGradOp, float>(b, 5, x, 2, grad, 2, n);
        for (int i = 0; i < n; i++) Assert.Equal((float)(1 / (1 + Math.Exp(-x[i + 3]))), sig[i + 1], 1e-6f);
        return (sig, grad);
    }

    [Fact]
    public void ChunksCoverTheRangeOnceWithAlignedStarts()
    {
        foreach (int n in new[] { 65536, 65537, 100_000, 1 << 20 })
            foreach (int chunks in new[] { 2, 3 })
            {
                int next = 0;
                for (int i = 0; i < chunks; i++)
                {
                    var (s, e) = ElementwiseParallel.Range(i, n, chunks);
                    Assert.Equal(next, s);
                    Assert.Equal(0, s % 64);
                    next = e;
                }
                Assert.Equal(n, next);
            }
    }
}
