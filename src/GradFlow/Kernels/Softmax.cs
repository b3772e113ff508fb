using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using GradFlow.Kernels.Optim;

namespace GradFlow.Kernels;

/// <summary>
/// Softmax and log-softmax over the rows of a contiguous (rows, n) block, max-shifted for stability. Forward is a
/// max pass, one pass writing exp(x - max) while summing it, and a scaling pass, all on a row that stays in L1;
/// input and output may be the same span (attention normalises its scores in place).
/// </summary>
internal static unsafe class Softmax
{
    /// <summary>Elements per thread below which rows run on the calling thread (~10 us of exp-bound rows).</summary>
    internal const int MinPerThread = 1 << 14;

    public static void Forward<T>(ReadOnlySpan<T> x, Span<T> y, int rows, int n, bool log)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int chunks = RowChunks(rows, n);
        if (chunks >= 2)
        {
            // Rows are independent and each is computed as on one thread: the split cannot change a bit.
            fixed (T* xp = x, yp = y)
            {
                var body = new Rows<T> { X = xp, Y = yp, RowCount = rows, N = n, Chunks = chunks, Log = log };
                Parallelism.For(chunks, ref body);
            }
            return;
        }
        ForwardRows(x, y, rows, n, log);
    }

    private static int RowChunks(int rows, int n) =>
        Parallelism.IsInsideParallelRegion ? 1 : (int)Math.Min(Math.Min(Parallelism.NumThreads, rows), (long)rows * n / MinPerThread);

    private static void ForwardRows<T>(ReadOnlySpan<T> x, Span<T> y, int rows, int n, bool log)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * n, n);
            var yr = y.Slice(r * n, n);
            T max = Reduction.Fold<MaxOp, T>(xr, T.NegativeInfinity);
            if (T.IsInfinity(max)) max = T.Zero; // all -inf (or +inf) rows: let the arithmetic give NaN/0 as PyTorch does
            T sum = ExpShiftSum(xr, yr, max);
            if (log)
            {
                T shift = max + T.Log(sum);
                Elementwise.BinaryScalarRight<SubOp, T>(xr, shift, yr);
            }
            else
            {
                Elementwise.BinaryScalarRight<MulOp, T>(yr, T.One / sum, yr);
            }
        }
    }

    /// <summary>
    /// The softmax backward dx = y * (g - sum(g * y)) per row (two passes: the dot product, then the write);
    /// <paramref name="dx"/> may be the same span as <paramref name="g"/>.
    /// </summary>
    public static void Backward<T>(ReadOnlySpan<T> y, ReadOnlySpan<T> g, Span<T> dx, int rows, int n)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int chunks = RowChunks(rows, n);
        if (chunks >= 2)
        {
            fixed (T* yp = y, gp = g, dp = dx)
            {
                var body = new Rows<T> { X = yp, G = gp, Y = dp, RowCount = rows, N = n, Chunks = chunks, IsBackward = true };
                Parallelism.For(chunks, ref body);
            }
            return;
        }
        BackwardRows(y, g, dx, rows, n);
    }

    /// <summary>Rows [r0, r1) of a forward (X to Y) or a backward (y = X, g = G, dx = Y), chunk i of <c>Chunks</c>.</summary>
    private struct Rows<T> : IParallelBody where T : unmanaged, IFloatingPointIeee754<T>
    {
        public T* X, G, Y;
        public int RowCount, N, Chunks;
        public bool Log, IsBackward;

        public readonly void Invoke(int index)
        {
            int r0 = (int)((long)RowCount * index / Chunks), count = (int)((long)RowCount * (index + 1) / Chunks) - r0;
            long at = (long)r0 * N;
            int size = count * N;
            if (IsBackward) BackwardRows(new ReadOnlySpan<T>(X + at, size), new ReadOnlySpan<T>(G + at, size), new Span<T>(Y + at, size), count, N);
            else ForwardRows(new ReadOnlySpan<T>(X + at, size), new Span<T>(Y + at, size), count, N, Log);
        }
    }

    private static void BackwardRows<T>(ReadOnlySpan<T> y, ReadOnlySpan<T> g, Span<T> dx, int rows, int n)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (V512<T>.IsSupported) Backward<V512<T>, T>(y, g, dx, rows, n);
        else if (V256<T>.IsSupported) Backward<V256<T>, T>(y, g, dx, rows, n);
        else Backward<V1<T>, T>(y, g, dx, rows, n);
    }

    private static void Backward<TV, T>(ReadOnlySpan<T> y, ReadOnlySpan<T> g, Span<T> dx, int rows, int n)
        where TV : struct, IVec<TV, T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        nuint len = (nuint)n, step = (nuint)TV.Count;
        for (int r = 0; r < rows; r++)
        {
            ref T yr = ref Unsafe.Add(ref MemoryMarshal.GetReference(y), r * n);
            ref T gr = ref Unsafe.Add(ref MemoryMarshal.GetReference(g), r * n);
            ref T dr = ref Unsafe.Add(ref MemoryMarshal.GetReference(dx), r * n);
            TV acc0 = TV.Create(T.Zero), acc1 = acc0;
            nuint i = 0;
            for (; i + (2 * step) <= len; i += 2 * step)
            {
                acc0 += TV.Load(ref gr, i) * TV.Load(ref yr, i);
                acc1 += TV.Load(ref gr, i + step) * TV.Load(ref yr, i + step);
            }
            for (; i + step <= len; i += step) acc0 += TV.Load(ref gr, i) * TV.Load(ref yr, i);
            T dot = TV.Sum(acc0 + acc1);
            for (; i < len; i++) dot += Unsafe.Add(ref gr, i) * Unsafe.Add(ref yr, i);
            var vd = TV.Create(dot);
            for (i = 0; i + step <= len; i += step) TV.Store(TV.Load(ref yr, i) * (TV.Load(ref gr, i) - vd), ref dr, i);
            for (; i < len; i++) Unsafe.Add(ref dr, i) = Unsafe.Add(ref yr, i) * (Unsafe.Add(ref gr, i) - dot);
        }
    }

    /// <summary>y = exp(x - shift); returns the sum of y.</summary>
    private static T ExpShiftSum<T>(ReadOnlySpan<T> x, Span<T> y, T shift) where T : unmanaged, IFloatingPointIeee754<T>
    {
        ref T xs = ref MemoryMarshal.GetReference(x);
        ref T ys = ref MemoryMarshal.GetReference(y);
        nuint n = (nuint)x.Length, i = 0;
        T sum = T.Zero;
        if (Vector512.IsHardwareAccelerated)
        {
            var s = Vector512.Create(shift);
            var acc = Vector512<T>.Zero;
            for (; i + (nuint)Vector512<T>.Count <= n; i += (nuint)Vector512<T>.Count)
            {
                var e = VecMath.Exp(Vector512.LoadUnsafe(ref xs, i) - s);
                e.StoreUnsafe(ref ys, i);
                acc += e;
            }
            sum = Vector512.Sum(acc);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var s = Vector256.Create(shift);
            var acc = Vector256<T>.Zero;
            for (; i + (nuint)Vector256<T>.Count <= n; i += (nuint)Vector256<T>.Count)
            {
                var e = VecMath.Exp(Vector256.LoadUnsafe(ref xs, i) - s);
                e.StoreUnsafe(ref ys, i);
                acc += e;
            }
            sum = Vector256.Sum(acc);
        }
        for (; i < n; i++)
        {
            T e = T.Exp(Unsafe.Add(ref xs, i) - shift);
            Unsafe.Add(ref ys, i) = e;
            sum += e;
        }
        return sum;
    }
}
