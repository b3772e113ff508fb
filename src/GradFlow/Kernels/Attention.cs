using System.Buffers;
using System.Numerics;

namespace GradFlow.Kernels;

/// <summary>
/// A batch of row-major matrices in one array: matrix b starts at <c>Offsets[b]</c>, its rows <c>Ld</c> elements
/// apart, its columns adjacent. Attention heads are such batches inside a (N, L, E) projection: no copy per head.
/// </summary>
internal readonly record struct MatrixBatch(int[] Offsets, int Ld);

/// <summary>An additive mask broadcast over the batch: entry (b, i, j) at <c>Offsets[b] + i * RowStride + j * ColStride</c>.</summary>
internal readonly record struct MaskBatch(int[] Offsets, int RowStride, int ColStride);

/// <summary>
/// Scaled dot-product attention per batch entry, out = softmax(scale * Q K^T + mask) V, with Q (L, d), K (S, d),
/// V (S, dv). The scores of one entry (L x S) are written straight into the saved weights P, masked and normalised
/// in place while in cache, then multiplied by V; the backward reuses P instead of recomputing it (FlashAttention
/// would recompute; at these sizes P fits and the GEMMs dominate). Dropout on the weights is a saved multiplier M
/// (0 or 1 / (1 - p), same layout as P): out = (P * M) V, and the weights returned are P, as PyTorch returns them.
/// </summary>
internal static unsafe class Attention
{
    /// <summary>
    /// Multiply-adds (l * s * (d + dv) summed over the batch) below which the entries run on the calling thread:
    /// about 30 us of GEMM at 1 element-FMA per 0.1 ns, well above the ~2 us of waking a worker.
    /// </summary>
    internal const long MinParallelWork = 1L << 18;

    public static void Forward<T>(int batch, int l, int s, int d, int dv, T scale,
        ReadOnlySpan<T> q, MatrixBatch qb, ReadOnlySpan<T> k, MatrixBatch kb, ReadOnlySpan<T> v, MatrixBatch vb,
        ReadOnlySpan<T> mask, MaskBatch? mb, ReadOnlySpan<T> drop, Span<T> p, Span<T> o, MatrixBatch ob)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        // Entries are independent and each is computed exactly as on one thread, so the split (one item per entry)
        // cannot change a bit of the result. The spans are pinned for the duration of the loop.
        fixed (T* qp = q, kp = k, vp = v, mp = mask, dp = drop, pp = p, op = o)
        {
            var body = new ForwardEntry<T>
            {
                L = l, S = s, D = d, Dv = dv, Scale = scale,
                Q = new(qp, q.Length, qb), K = new(kp, k.Length, kb), V = new(vp, v.Length, vb),
                Mask = new(mp, mask.Length, default), MaskLayout = mb, Drop = new(dp, drop.Length, default),
                P = new(pp, p.Length, default), O = new(op, o.Length, ob),
            };
            Run(batch, (long)batch * l * s * (d + dv), ref body);
        }
    }

    /// <summary>
    /// Gradients from dO (and dW, the gradient of the returned weights, when not empty), per entry, with
    /// Pd = P * M (P without dropout): dV = Pd^T dO; dP = (dO V^T) * M + dW; dS = P * (dP - rowsum(dP * P)) (the
    /// softmax backward, in place); dQ = scale * dS K; dK = scale * dS^T Q. An empty <paramref name="dq"/>,
    /// <paramref name="dk"/> or <paramref name="dvOut"/> is not computed.
    /// </summary>
    public static void Backward<T>(int batch, int l, int s, int d, int dv, T scale,
        ReadOnlySpan<T> q, MatrixBatch qb, ReadOnlySpan<T> k, MatrixBatch kb, ReadOnlySpan<T> v, MatrixBatch vb,
        ReadOnlySpan<T> p, ReadOnlySpan<T> drop, ReadOnlySpan<T> dO, MatrixBatch dob, ReadOnlySpan<T> dW,
        Span<T> dq, MatrixBatch dqb, Span<T> dk, MatrixBatch dkb, Span<T> dvOut, MatrixBatch dvb)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        fixed (T* qp = q, kp = k, vp = v, pp = p, dp = drop, dop = dO, dwp = dW, dqp = dq, dkp = dk, dvp = dvOut)
        {
            var body = new BackwardEntry<T>
            {
                L = l, S = s, D = d, Dv = dv, Scale = scale,
                Q = new(qp, q.Length, qb), K = new(kp, k.Length, kb), V = new(vp, v.Length, vb),
                P = new(pp, p.Length, default), Drop = new(dp, drop.Length, default), DO = new(dop, dO.Length, dob),
                DW = new(dwp, dW.Length, default), DQ = new(dqp, dq.Length, dqb), DK = new(dkp, dk.Length, dkb),
                DV = new(dvp, dvOut.Length, dvb),
            };
            Run(batch, (long)batch * l * s * (2 * d + 2 * dv), ref body);
        }
    }

    private static void Run<TBody>(int batch, long work, ref TBody body) where TBody : struct, IParallelBody
    {
        if (work >= MinParallelWork)
        {
            Parallelism.For(batch, ref body);
            return;
        }
        for (int b = 0; b < batch; b++) body.Invoke(b);
    }

    /// <summary>A pinned operand: its elements and, for a matrix batch, where each entry starts.</summary>
    private readonly struct Pinned<T>(T* pointer, int length, MatrixBatch layout) where T : unmanaged
    {
        public Span<T> Span => new(pointer, length);

        public bool IsEmpty => length == 0;

        /// <summary>Entry b of a matrix batch: from its first element to the end of the operand.</summary>
        public Span<T> Entry(int b) => new(pointer + layout.Offsets[b], length - layout.Offsets[b]);

        /// <summary>Entry b of a dense (batch, l, s) block.</summary>
        public Span<T> Block(int b, int size) => new(pointer + ((long)b * size), size);

        public int Ld => layout.Ld;
    }

    private struct ForwardEntry<T> : IParallelBody where T : unmanaged, IFloatingPointIeee754<T>
    {
        public int L, S, D, Dv;
        public T Scale;
        public Pinned<T> Q, K, V, Mask, Drop, P, O;
        public MaskBatch? MaskLayout;

        public readonly void Invoke(int b)
        {
            int ls = L * S;
            var pb = P.Block(b, ls);
            GemmOf<T>.Run(false, true, L, S, D, Scale, Q.Entry(b), Q.Ld, K.Entry(b), K.Ld, T.Zero, pb, S);
            if (MaskLayout is { } m) AddMask(pb, Mask.Span, m, b, L, S);
            Softmax.Forward<T>(pb, pb, L, S, log: false);
            T[]? rented = null;
            ReadOnlySpan<T> mix = pb;
            if (!Drop.IsEmpty)
            {
                rented = ArrayPool<T>.Shared.Rent(ls);
                var dropped = rented.AsSpan(0, ls);
                Elementwise.Binary<MulOp, T>(pb, Drop.Block(b, ls), dropped);
                mix = dropped;
            }
            GemmOf<T>.Run(false, false, L, Dv, S, T.One, mix, S, V.Entry(b), V.Ld, T.Zero, O.Entry(b), O.Ld);
            if (rented is not null) ArrayPool<T>.Shared.Return(rented);
        }
    }

    private struct BackwardEntry<T> : IParallelBody where T : unmanaged, IFloatingPointIeee754<T>
    {
        public int L, S, D, Dv;
        public T Scale;
        public Pinned<T> Q, K, V, P, Drop, DO, DW, DQ, DK, DV;

        public readonly void Invoke(int b)
        {
            int ls = L * S;
            bool wantScores = !DQ.IsEmpty || !DK.IsEmpty, hasDrop = !Drop.IsEmpty;
            var rented = wantScores || hasDrop ? ArrayPool<T>.Shared.Rent(ls) : null;
            var ds = rented.AsSpan(0, wantScores || hasDrop ? ls : 0);
            var pb = P.Block(b, ls);
            var mb = hasDrop ? Drop.Block(b, ls) : default;
            var dOb = DO.Entry(b);
            if (!DV.IsEmpty)
            {
                ReadOnlySpan<T> mix = pb;
                if (hasDrop)
                {
                    Elementwise.Binary<MulOp, T>(pb, mb, ds);
                    mix = ds;
                }
                GemmOf<T>.Run(true, false, S, Dv, L, T.One, mix, S, dOb, DO.Ld, T.Zero, DV.Entry(b), DV.Ld);
            }
            if (wantScores) Scores(b, pb, mb, dOb, ds);
            if (rented is not null) ArrayPool<T>.Shared.Return(rented);
        }

        private readonly void Scores(int b, Span<T> pb, Span<T> mb, Span<T> dOb, Span<T> ds)
        {
            int ls = L * S;
            bool hasDrop = !Drop.IsEmpty, accumulate = !DW.IsEmpty && !hasDrop;
            if (accumulate) DW.Block(b, ls).CopyTo(ds);
            GemmOf<T>.Run(false, true, L, S, Dv, T.One, dOb, DO.Ld, V.Entry(b), V.Ld, accumulate ? T.One : T.Zero, ds, S);
            if (hasDrop)
            {
                Elementwise.Binary<MulOp, T>(ds, mb, ds);
                if (!DW.IsEmpty) Elementwise.Binary<AddOp, T>(ds, DW.Block(b, ls), ds);
            }
            Softmax.Backward<T>(pb, ds, ds, L, S);
            if (!DQ.IsEmpty)
                GemmOf<T>.Run(false, false, L, D, S, Scale, ds, S, K.Entry(b), K.Ld, T.Zero, DQ.Entry(b), DQ.Ld);
            if (!DK.IsEmpty)
                GemmOf<T>.Run(true, false, S, D, L, Scale, ds, S, Q.Entry(b), Q.Ld, T.Zero, DK.Entry(b), DK.Ld);
        }
    }

    private static void AddMask<T>(Span<T> scores, ReadOnlySpan<T> mask, MaskBatch m, int b, int l, int s)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int off = m.Offsets[b];
        for (int i = 0; i < l; i++, off += m.RowStride)
        {
            var row = scores.Slice(i * s, s);
            if (m.ColStride == 1) Elementwise.Binary<AddOp, T>(row, mask.Slice(off, s), row);
            else if (m.ColStride == 0) Elementwise.BinaryScalarRight<AddOp, T>(row, mask[off], row);
            else
                for (int j = 0; j < s; j++) row[j] += mask[off + (j * m.ColStride)];
        }
    }
}
