using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using GradFlow.Kernels.Optim;

namespace GradFlow.Kernels;

/// <summary>
/// Layer normalisation over the rows of a contiguous (rows, n) block: y = (x - mean) * rstd * weight + bias with
/// rstd = 1 / sqrt(var + eps) (biased variance). Each row is read while it sits in L1: one pass for the mean, one
/// for the centred squares (two passes keep float32 variance accurate where E[x^2] - mean^2 would cancel), one to
/// write y. The backward needs only the saved mean and rstd per row.
/// </summary>
internal static unsafe class LayerNorm
{
    /// <summary>Normalises each row; <paramref name="weight"/> and <paramref name="bias"/> are length n or empty.</summary>
    public static void Forward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> weight, ReadOnlySpan<T> bias, Span<T> y,
        Span<T> mean, Span<T> rstd, int rows, int n, T eps) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int chunks = RowChunks(rows, n);
        if (chunks >= 2)
        {
            // Rows are independent and each is computed as on one thread: the split cannot change a bit.
            fixed (T* xp = x, wp = weight, bp = bias, yp = y, mp = mean, rp = rstd)
            {
                var body = new ForwardRows<T>
                {
                    X = xp, W = wp, B = bp, Y = yp, Mean = mp, Rstd = rp, HasW = !weight.IsEmpty, HasB = !bias.IsEmpty,
                    Rows = rows, N = n, Eps = eps, Chunks = chunks,
                };
                Parallelism.For(chunks, ref body);
            }
            return;
        }
        if (V512<T>.IsSupported) Forward<V512<T>, T>(x, weight, bias, y, mean, rstd, rows, n, eps);
        else if (V256<T>.IsSupported) Forward<V256<T>, T>(x, weight, bias, y, mean, rstd, rows, n, eps);
        else Forward<V1<T>, T>(x, weight, bias, y, mean, rstd, rows, n, eps);
    }

    /// <summary>
    /// Gradients of <see cref="Forward{T}"/> from the output gradient g. With gw = g * weight and xhat = (x - mean) * rstd:
    /// dx = rstd * (gw - mean(gw) - xhat * mean(gw * xhat)); dweight += sum over rows of g * xhat; dbias += sum of g.
    /// Any of <paramref name="dx"/>, <paramref name="dweight"/>, <paramref name="dbias"/> may be empty (not wanted);
    /// dweight and dbias are accumulated into, so the caller clears them.
    /// </summary>
    public static void Backward<T>(ReadOnlySpan<T> g, ReadOnlySpan<T> x, ReadOnlySpan<T> mean, ReadOnlySpan<T> rstd,
        ReadOnlySpan<T> weight, Span<T> dx, Span<T> dweight, Span<T> dbias, int rows, int n) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int chunks = RowChunks(rows, n);
        if (chunks >= 2)
        {
            ParallelBackward(g, x, mean, rstd, weight, dx, dweight, dbias, rows, n, chunks);
            return;
        }
        if (V512<T>.IsSupported) Backward<V512<T>, T>(g, x, mean, rstd, weight, dx, dweight, dbias, rows, n);
        else if (V256<T>.IsSupported) Backward<V256<T>, T>(g, x, mean, rstd, weight, dx, dweight, dbias, rows, n);
        else Backward<V1<T>, T>(g, x, mean, rstd, weight, dx, dweight, dbias, rows, n);
    }

    private static void Forward<TV, T>(ReadOnlySpan<T> x, ReadOnlySpan<T> weight, ReadOnlySpan<T> bias, Span<T> y,
        Span<T> mean, Span<T> rstd, int rows, int n, T eps)
        where TV : struct, IVec<TV, T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        bool hasW = !weight.IsEmpty, hasB = !bias.IsEmpty;
        ref T w = ref MemoryMarshal.GetReference(weight);
        ref T b = ref MemoryMarshal.GetReference(bias);
        T count = T.CreateTruncating(n);
        for (int r = 0; r < rows; r++)
        {
            ref T xr = ref Unsafe.Add(ref MemoryMarshal.GetReference(x), r * n);
            ref T yr = ref Unsafe.Add(ref MemoryMarshal.GetReference(y), r * n);
            T m = Sum<TV, T>(ref xr, (nuint)n) / count;
            T rs = T.One / T.Sqrt(CentredSquares<TV, T>(ref xr, (nuint)n, m) / count + eps);
            mean[r] = m;
            rstd[r] = rs;
            nuint i = 0, len = (nuint)n;
            TV vm = TV.Create(m), vr = TV.Create(rs);
            for (; i + (nuint)TV.Count <= len; i += (nuint)TV.Count)
            {
                var v = (TV.Load(ref xr, i) - vm) * vr;
                if (hasW) v *= TV.Load(ref w, i);
                if (hasB) v += TV.Load(ref b, i);
                TV.Store(v, ref yr, i);
            }
            for (; i < len; i++)
            {
                T v = (Unsafe.Add(ref xr, i) - m) * rs;
                if (hasW) v *= Unsafe.Add(ref w, i);
                if (hasB) v += Unsafe.Add(ref b, i);
                Unsafe.Add(ref yr, i) = v;
            }
        }
    }

    private static void Backward<TV, T>(ReadOnlySpan<T> g, ReadOnlySpan<T> x, ReadOnlySpan<T> mean, ReadOnlySpan<T> rstd,
        ReadOnlySpan<T> weight, Span<T> dx, Span<T> dweight, Span<T> dbias, int rows, int n)
        where TV : struct, IVec<TV, T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        bool hasW = !weight.IsEmpty, wantX = !dx.IsEmpty, wantW = !dweight.IsEmpty, wantB = !dbias.IsEmpty;
        ref T w = ref MemoryMarshal.GetReference(weight);
        ref T dw = ref MemoryMarshal.GetReference(dweight);
        ref T db = ref MemoryMarshal.GetReference(dbias);
        T inv = T.One / T.CreateTruncating(n);
        nuint len = (nuint)n, step = (nuint)TV.Count;
        for (int r = 0; r < rows; r++)
        {
            ref T gr = ref Unsafe.Add(ref MemoryMarshal.GetReference(g), r * n);
            ref T xr = ref Unsafe.Add(ref MemoryMarshal.GetReference(x), r * n);
            T m = mean[r], rs = rstd[r];
            TV vm = TV.Create(m), vr = TV.Create(rs);
            // Pass 1: the two row sums the input gradient needs, and the parameter gradients.
            TV accA = TV.Create(T.Zero), accB = accA;
            T a = T.Zero, bsum = T.Zero;
            nuint i = 0;
            for (; i + step <= len; i += step)
            {
                var gv = TV.Load(ref gr, i);
                var xh = (TV.Load(ref xr, i) - vm) * vr;
                var gw = hasW ? gv * TV.Load(ref w, i) : gv;
                accA += gw;
                accB += gw * xh;
                if (wantW) TV.Store(TV.Load(ref dw, i) + gv * xh, ref dw, i);
                if (wantB) TV.Store(TV.Load(ref db, i) + gv, ref db, i);
            }
            for (; i < len; i++)
            {
                T gv = Unsafe.Add(ref gr, i), xh = (Unsafe.Add(ref xr, i) - m) * rs;
                T gw = hasW ? gv * Unsafe.Add(ref w, i) : gv;
                a += gw;
                bsum += gw * xh;
                if (wantW) Unsafe.Add(ref dw, i) += gv * xh;
                if (wantB) Unsafe.Add(ref db, i) += gv;
            }
            if (!wantX) continue;
            a += TV.Sum(accA);
            bsum += TV.Sum(accB);
            // Pass 2: dx = rstd * gw - xhat * (rstd * mean(gw xhat)) - rstd * mean(gw).
            ref T dxr = ref Unsafe.Add(ref MemoryMarshal.GetReference(dx), r * n);
            T cb = rs * bsum * inv, ca = rs * a * inv;
            TV vcb = TV.Create(cb), vca = TV.Create(ca);
            for (i = 0; i + step <= len; i += step)
            {
                var gv = TV.Load(ref gr, i);
                var xh = (TV.Load(ref xr, i) - vm) * vr;
                var gw = hasW ? gv * TV.Load(ref w, i) : gv;
                TV.Store(vr * gw - xh * vcb - vca, ref dxr, i);
            }
            for (; i < len; i++)
            {
                T gv = Unsafe.Add(ref gr, i), xh = (Unsafe.Add(ref xr, i) - m) * rs;
                T gw = hasW ? gv * Unsafe.Add(ref w, i) : gv;
                Unsafe.Add(ref dxr, i) = rs * gw - xh * cb - ca;
            }
        }
    }

    /// <summary>Elements per thread below which rows run on the calling thread (~10 us of a three-pass row kernel).</summary>
    internal const int MinPerThread = 1 << 14;

    private static int RowChunks(int rows, int n) => (int)Math.Min(Math.Min(Parallelism.NumThreads, rows), (long)rows * n / MinPerThread);

    /// <summary>
    /// The backward split in two parallel passes: rows for dx (each row as on one thread), then 64-aligned column blocks
    /// for dweight and dbias, each column summing g * xhat and g over the rows in order with the same operations as the
    /// fused single-thread pass, so the results are bitwise those of one thread.
    /// </summary>
    private static void ParallelBackward<T>(ReadOnlySpan<T> g, ReadOnlySpan<T> x, ReadOnlySpan<T> mean, ReadOnlySpan<T> rstd,
        ReadOnlySpan<T> weight, Span<T> dx, Span<T> dweight, Span<T> dbias, int rows, int n, int chunks) where T : unmanaged, IFloatingPointIeee754<T>
    {
        fixed (T* gp = g, xp = x, mp = mean, rp = rstd, wp = weight, dxp = dx, dwp = dweight, dbp = dbias)
        {
            var body = new BackwardRows<T>
            {
                G = gp, X = xp, Mean = mp, Rstd = rp, W = wp, Dx = dxp, Dw = dwp, Db = dbp, HasW = !weight.IsEmpty,
                WantX = !dx.IsEmpty, WantW = !dweight.IsEmpty, WantB = !dbias.IsEmpty, Rows = rows, N = n, Chunks = chunks,
                Blocks = Math.Max(1, Math.Min(Parallelism.NumThreads, n / 64)),
            };
            if (body.WantX) Parallelism.For(chunks, ref body);
            if (body.WantW || body.WantB)
            {
                var columns = new BackwardColumns<T> { Rows = body };
                Parallelism.For(body.Blocks, ref columns);
            }
        }
    }

    private struct ForwardRows<T> : IParallelBody where T : unmanaged, IFloatingPointIeee754<T>
    {
        public T* X, W, B, Y, Mean, Rstd;
        public bool HasW, HasB;
        public int Rows, N, Chunks;
        public T Eps;

        public readonly void Invoke(int index)
        {
            int r0 = (int)((long)Rows * index / Chunks), count = (int)((long)Rows * (index + 1) / Chunks) - r0;
            long at = (long)r0 * N, size = (long)count * N;
            Forward<T>(new ReadOnlySpan<T>(X + at, (int)size), new ReadOnlySpan<T>(W, HasW ? N : 0), new ReadOnlySpan<T>(B, HasB ? N : 0),
                new Span<T>(Y + at, (int)size), new Span<T>(Mean + r0, count), new Span<T>(Rstd + r0, count), count, N, Eps);
        }
    }

    private struct BackwardRows<T> : IParallelBody where T : unmanaged, IFloatingPointIeee754<T>
    {
        public T* G, X, Mean, Rstd, W, Dx, Dw, Db;
        public bool HasW, WantX, WantW, WantB;
        public int Rows, N, Chunks, Blocks;

        public readonly void Invoke(int index)
        {
            int r0 = (int)((long)Rows * index / Chunks), count = (int)((long)Rows * (index + 1) / Chunks) - r0;
            long at = (long)r0 * N, size = (long)count * N;
            Backward<T>(new ReadOnlySpan<T>(G + at, (int)size), new ReadOnlySpan<T>(X + at, (int)size), new ReadOnlySpan<T>(Mean + r0, count),
                new ReadOnlySpan<T>(Rstd + r0, count), new ReadOnlySpan<T>(W, HasW ? N : 0), new Span<T>(Dx + at, (int)size), default, default, count, N);
        }
    }

    private struct BackwardColumns<T> : IParallelBody where T : unmanaged, IFloatingPointIeee754<T>
    {
        public BackwardRows<T> Rows;

        public readonly void Invoke(int index)
        {
            var (j0, j1) = ElementwiseParallel.Range(index, Rows.N, Rows.Blocks);
            if (V512<T>.IsSupported) ParameterGrads<V512<T>>(j0, j1);
            else if (V256<T>.IsSupported) ParameterGrads<V256<T>>(j0, j1);
            else ParameterGrads<V1<T>>(j0, j1);
        }

        private readonly void ParameterGrads<TV>(int j0, int j1) where TV : struct, IVec<TV, T>
        {
            var a = Rows;
            ref T dw = ref Unsafe.AsRef<T>(a.Dw);
            ref T db = ref Unsafe.AsRef<T>(a.Db);
            nuint end = (nuint)j1, step = (nuint)TV.Count;
            for (int r = 0; r < a.Rows; r++)
            {
                ref T gr = ref Unsafe.AsRef<T>(a.G + ((long)r * a.N));
                ref T xr = ref Unsafe.AsRef<T>(a.X + ((long)r * a.N));
                T m = a.Mean[r], rs = a.Rstd[r];
                TV vm = TV.Create(m), vr = TV.Create(rs);
                nuint i = (nuint)j0;
                for (; i + step <= end; i += step)
                {
                    var gv = TV.Load(ref gr, i);
                    if (a.WantW) TV.Store(TV.Load(ref dw, i) + gv * ((TV.Load(ref xr, i) - vm) * vr), ref dw, i);
                    if (a.WantB) TV.Store(TV.Load(ref db, i) + gv, ref db, i);
                }
                for (; i < end; i++)
                {
                    T gv = Unsafe.Add(ref gr, i);
                    if (a.WantW) Unsafe.Add(ref dw, i) += gv * ((Unsafe.Add(ref xr, i) - m) * rs);
                    if (a.WantB) Unsafe.Add(ref db, i) += gv;
                }
            }
        }
    }

    private static T Sum<TV, T>(ref T x, nuint n) where TV : struct, IVec<TV, T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        TV acc0 = TV.Create(T.Zero), acc1 = acc0;
        nuint i = 0, step = (nuint)TV.Count;
        for (; i + (2 * step) <= n; i += 2 * step)
        {
            acc0 += TV.Load(ref x, i);
            acc1 += TV.Load(ref x, i + step);
        }
        for (; i + step <= n; i += step) acc0 += TV.Load(ref x, i);
        T s = TV.Sum(acc0 + acc1);
        for (; i < n; i++) s += Unsafe.Add(ref x, i);
        return s;
    }

    private static T CentredSquares<TV, T>(ref T x, nuint n, T mean) where TV : struct, IVec<TV, T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        TV acc0 = TV.Create(T.Zero), acc1 = acc0, vm = TV.Create(mean);
        nuint i = 0, step = (nuint)TV.Count;
        for (; i + (2 * step) <= n; i += 2 * step)
        {
            var d0 = TV.Load(ref x, i) - vm;
            var d1 = TV.Load(ref x, i + step) - vm;
            acc0 += d0 * d0;
            acc1 += d1 * d1;
        }
        for (; i + step <= n; i += step)
        {
            var d = TV.Load(ref x, i) - vm;
            acc0 += d * d;
        }
        T s = TV.Sum(acc0 + acc1);
        for (; i < n; i++)
        {
            T d = Unsafe.Add(ref x, i) - mean;
            s += d * d;
        }
        return s;
    }
}
