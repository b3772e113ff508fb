using System.Numerics;
using System.Runtime.Intrinsics;

namespace GradFlow.Kernels;

/// <summary>
/// Reductions as an elementwise loop whose output has step 0 along the reduced dims:
/// dst[out(i)] = op(dst[out(i)], src[i]). A row along a reduced dim is folded with vector
/// accumulators and one horizontal step; a row along a kept dim is a vector op into dst.
/// The caller fills dst with the op's identity first.
/// </summary>
internal static class Reduction
{
    public static void Reduce<TOp, T>(ReadOnlySpan<int> shape, T[] dst, ReadOnlySpan<int> dstStrides, int dstOffset,
        T[] src, ReadOnlySpan<int> srcStrides, int srcOffset)
        where TOp : struct, IBinaryOp where T : unmanaged, INumber<T>
    {
        var k = new ReduceRow<TOp, T>(dst, src);
        StridedLoop.Run(ref k, shape, dstStrides, dstOffset, srcStrides, srcOffset, default, 0);
    }

    /// <summary>Elements per thread below which <see cref="ReduceLeading{TOp, T}"/> runs on the calling thread.</summary>
    public const int MinPerThread = 1 << 14;

    /// <summary>
    /// Reduces a contiguous (outer, inner) block over its rows into dst (length inner, holding the op's identity):
    /// the bias gradient of a linear layer, a column sum over the batch. Columns are split into blocks starting at
    /// multiples of 64 over the worker pool; each column is still folded over the rows in order, so the result does
    /// not depend on the thread count and equals <see cref="Reduce{TOp, T}"/>'s.
    /// </summary>
    public static void ReduceLeading<TOp, T>(T[] src, int srcOffset, int outer, int inner, T[] dst)
        where TOp : struct, IBinaryOp where T : unmanaged, INumber<T>
    {
        int blocks = Math.Min(Math.Min(Parallelism.NumThreads, inner / 64), (int)Math.Min(int.MaxValue, (long)outer * inner / MinPerThread));
        var body = new LeadingBlocks<TOp, T>(src, srcOffset, outer, inner, dst, Math.Max(blocks, 1));
        if (blocks < 2) body.Invoke(0);
        else Parallelism.For(blocks, ref body);
    }

    private readonly struct LeadingBlocks<TOp, T>(T[] src, int srcOffset, int outer, int inner, T[] dst, int blocks) : IParallelBody
        where TOp : struct, IBinaryOp where T : unmanaged, INumber<T>
    {
        public void Invoke(int index)
        {
            var (start, end) = ElementwiseParallel.Range(index, inner, blocks);
            var d = new Span<T>(dst, start, end - start);
            for (int r = 0; r < outer; r++)
                Elementwise.Binary<TOp, T>(d, new ReadOnlySpan<T>(src, srcOffset + (r * inner) + start, end - start), d);
        }
    }

    /// <summary>Folds a contiguous span with the op, starting from <paramref name="init"/>.</summary>
    public static T Fold<TOp, T>(ReadOnlySpan<T> x, T init) where TOp : struct, IBinaryOp where T : unmanaged, INumber<T>
    {
        int i = 0;
        T acc = init;
        if (Vector512.IsHardwareAccelerated && Vector512<T>.IsSupported && x.Length >= 2 * Vector512<T>.Count)
        {
            // Two accumulators, seeded from the data, hide the add latency; the order of combination is
            // fixed, so results are reproducible run to run.
            int w = Vector512<T>.Count;
            var v0 = Vector512.Create(x.Slice(0, w));
            var v1 = Vector512.Create(x.Slice(w, w));
            for (i = 2 * w; i + 2 * w <= x.Length; i += 2 * w)
            {
                v0 = TOp.Invoke(v0, Vector512.Create(x.Slice(i, w)));
                v1 = TOp.Invoke(v1, Vector512.Create(x.Slice(i + w, w)));
            }
            v0 = TOp.Invoke(v0, v1);
            for (int l = 0; l < w; l++) acc = TOp.Invoke(acc, v0[l]);
        }
        else if (Vector256.IsHardwareAccelerated && Vector256<T>.IsSupported && x.Length >= Vector256<T>.Count)
        {
            int w = Vector256<T>.Count;
            var v0 = Vector256.Create(x.Slice(0, w));
            for (i = w; i + w <= x.Length; i += w) v0 = TOp.Invoke(v0, Vector256.Create(x.Slice(i, w)));
            for (int l = 0; l < w; l++) acc = TOp.Invoke(acc, v0[l]);
        }
        for (; i < x.Length; i++) acc = TOp.Invoke(acc, x[i]);
        return acc;
    }

    private readonly struct ReduceRow<TOp, T>(T[] dst, T[] src) : IRowKernel
        where TOp : struct, IBinaryOp where T : unmanaged, INumber<T>
    {
        public void Row(int n, int o0, int s0, int o1, int s1, int o2, int s2)
        {
            if (s0 == 0 && s1 == 1)
            {
                dst[o0] = Fold<TOp, T>(new ReadOnlySpan<T>(src, o1, n), dst[o0]);
                return;
            }
            if (s0 == 1 && s1 == 1)
            {
                var d = new Span<T>(dst, o0, n);
                Elementwise.Binary<TOp, T>(d, new ReadOnlySpan<T>(src, o1, n), d);
                return;
            }
            for (int i = 0; i < n; i++) dst[o0 + i * s0] = TOp.Invoke(dst[o0 + i * s0], src[o1 + i * s1]);
        }
    }

    /// <summary>
    /// Max or min along the middle axis of a contiguous (outer, size, inner) block, with the index of
    /// the first extreme; NaN wins, as in PyTorch.
    /// </summary>
    public static void ArgExtreme<T>(ReadOnlySpan<T> src, int outer, int size, int inner, bool max, Span<T> values, Span<long> indices)
        where T : unmanaged, INumber<T>
    {
        for (int o = 0; o < outer; o++)
        {
            var block = src.Slice(o * size * inner, size * inner);
            for (int j = 0; j < inner; j++)
            {
                T best = block[j];
                int bestIdx = 0;
                if (!T.IsNaN(best))
                {
                    for (int r = 1; r < size; r++)
                    {
                        T v = block[r * inner + j];
                        if (T.IsNaN(v)) { best = v; bestIdx = r; break; }
                        if (max ? v > best : v < best) { best = v; bestIdx = r; }
                    }
                }
                values[o * inner + j] = best;
                indices[o * inner + j] = bestIdx;
            }
        }
    }
}
