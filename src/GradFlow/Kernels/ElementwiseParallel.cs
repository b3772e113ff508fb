using System.Numerics;

namespace GradFlow.Kernels;

/// <summary>
/// Large contiguous elementwise ops split across the worker pool. Chunks start at multiples of 64 elements,
/// so every chunk but the last runs entirely in the widest vector loop and the last one ends with the same
/// scalar tail as a single-threaded pass: results do not depend on the thread count.
/// </summary>
internal static class ElementwiseParallel
{
    /// <summary>Elements per thread below which waking a worker costs more than it saves (~30 us of work at 1 element/ns).</summary>
    public const int MinPerThread = 1 << 15;

    /// <summary>
    /// The same for unary ops, mostly exp-based (sigmoid, tanh, exp, log: ~0.5 ns per float, several times a binary op's
    /// cost), so half the elements carry as much work: deep_sigmoid's 128 x 256 activations split in two.
    /// </summary>
    public const int MinPerThreadUnary = 1 << 14;

    /// <summary>
    /// The same for an activation's fused backward op(g, y) (two streams in, one out, ~4 flops per element): deep_sigmoid's
    /// 128 x 256 sigmoid gradients, ~5% of the caller's time at 2 threads when they ran on it alone.
    /// </summary>
    public const int MinPerThreadActivationGrad = 1 << 14;

    public static void Unary<TOp, T>(T[] x, int xOffset, T[] y, int yOffset, int n)
        where TOp : struct, IUnaryOp where T : unmanaged, IFloatingPointIeee754<T>
    {
        int chunks = Math.Min(Parallelism.NumThreads, n / MinPerThreadUnary);
        if (chunks < 2)
        {
            Elementwise.Unary<TOp, T>(new ReadOnlySpan<T>(x, xOffset, n), new Span<T>(y, yOffset, n));
            return;
        }
        var body = new UnaryBody<TOp, T>(x, xOffset, y, yOffset, n, chunks);
        Parallelism.For(chunks, ref body);
    }

    /// <summary>y = op(a, b) over n elements; <paramref name="minPerThread"/> lowers the split threshold for costlier ops.</summary>
    public static void Binary<TOp, T>(T[] a, int aOffset, T[] b, int bOffset, T[] y, int yOffset, int n, int minPerThread = MinPerThread)
        where TOp : struct, IBinaryOp where T : unmanaged, INumber<T>
    {
        int chunks = Math.Min(Parallelism.NumThreads, n / minPerThread);
        if (chunks < 2)
        {
            Elementwise.Binary<TOp, T>(new ReadOnlySpan<T>(a, aOffset, n), new ReadOnlySpan<T>(b, bOffset, n), new Span<T>(y, yOffset, n));
            return;
        }
        var body = new BinaryBody<TOp, T>(a, aOffset, b, bOffset, y, yOffset, n, chunks);
        Parallelism.For(chunks, ref body);
    }

    /// <summary>The [start, end) of chunk i of n elements in <paramref name="chunks"/> chunks, starts aligned to 64.</summary>
    internal static (int Start, int End) Range(int i, int n, int chunks)
    {
        int per = ((n / chunks) + 63) & ~63;
        int start = Math.Min(i * per, n);
        return (start, i == chunks - 1 ? n : Math.Min(start + per, n));
    }

    private readonly struct UnaryBody<TOp, T>(T[] x, int xo, T[] y, int yo, int n, int chunks) : IParallelBody
        where TOp : struct, IUnaryOp where T : unmanaged, IFloatingPointIeee754<T>
    {
        public void Invoke(int index)
        {
            var (s, e) = Range(index, n, chunks);
            Elementwise.Unary<TOp, T>(new ReadOnlySpan<T>(x, xo + s, e - s), new Span<T>(y, yo + s, e - s));
        }
    }

    private readonly struct BinaryBody<TOp, T>(T[] a, int ao, T[] b, int bo, T[] y, int yo, int n, int chunks) : IParallelBody
        where TOp : struct, IBinaryOp where T : unmanaged, INumber<T>
    {
        public void Invoke(int index)
        {
            var (s, e) = Range(index, n, chunks);
            Elementwise.Binary<TOp, T>(new ReadOnlySpan<T>(a, ao + s, e - s), new ReadOnlySpan<T>(b, bo + s, e - s), new Span<T>(y, yo + s, e - s));
        }
    }
}
