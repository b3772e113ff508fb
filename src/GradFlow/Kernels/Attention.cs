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
internal static class Attention
{
    public static void Forward<T>(int batch, int l, int s, int d, int dv, T scale,
        ReadOnlySpan<T> q, MatrixBatch qb, ReadOnlySpan<T> k, MatrixBatch kb, ReadOnlySpan<T> v, MatrixBatch vb,
        ReadOnlySpan<T> mask, MaskBatch? mb, ReadOnlySpan<T> drop, Span<T> p, Span<T> o, MatrixBatch ob)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int ls = l * s;
        var rented = drop.IsEmpty ? null : ArrayPool<T>.Shared.Rent(ls);
        var dropped = rented.AsSpan(0, drop.IsEmpty ? 0 : ls);
        for (int b = 0; b < batch; b++)
        {
            var pb = p.Slice(b * ls, ls);
            GemmOf<T>.Run(false, true, l, s, d, scale, q[qb.Offsets[b]..], qb.Ld, k[kb.Offsets[b]..], kb.Ld, T.Zero, pb, s);
            if (mb is { } m) AddMask(pb, mask, m, b, l, s);
            Softmax.Forward<T>(pb, pb, l, s, log: false);
            ReadOnlySpan<T> mix = pb;
            if (!drop.IsEmpty)
            {
                Elementwise.Binary<MulOp, T>(pb, drop.Slice(b * ls, ls), dropped);
                mix = dropped;
            }
            GemmOf<T>.Run(false, false, l, dv, s, T.One, mix, s, v[vb.Offsets[b]..], vb.Ld, T.Zero, o[ob.Offsets[b]..], ob.Ld);
        }
        if (rented is not null) ArrayPool<T>.Shared.Return(rented);
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
        int ls = l * s;
        bool wantScores = !dq.IsEmpty || !dk.IsEmpty, hasDrop = !drop.IsEmpty;
        var rented = wantScores || hasDrop ? ArrayPool<T>.Shared.Rent(ls) : null;
        var ds = rented.AsSpan(0, wantScores || hasDrop ? ls : 0);
        for (int b = 0; b < batch; b++)
        {
            var pb = p.Slice(b * ls, ls);
            var mb = hasDrop ? drop.Slice(b * ls, ls) : default;
            var dOb = dO[dob.Offsets[b]..];
            if (!dvOut.IsEmpty)
            {
                ReadOnlySpan<T> mix = pb;
                if (hasDrop)
                {
                    Elementwise.Binary<MulOp, T>(pb, mb, ds);
                    mix = ds;
                }
                GemmOf<T>.Run(true, false, s, dv, l, T.One, mix, s, dOb, dob.Ld, T.Zero, dvOut[dvb.Offsets[b]..], dvb.Ld);
            }
            if (!wantScores) continue;
            bool accumulate = !dW.IsEmpty && !hasDrop;
            if (accumulate) dW.Slice(b * ls, ls).CopyTo(ds);
            GemmOf<T>.Run(false, true, l, s, dv, T.One, dOb, dob.Ld, v[vb.Offsets[b]..], vb.Ld, accumulate ? T.One : T.Zero, ds, s);
            if (hasDrop)
            {
                Elementwise.Binary<MulOp, T>(ds, mb, ds);
                if (!dW.IsEmpty) Elementwise.Binary<AddOp, T>(ds, dW.Slice(b * ls, ls), ds);
            }
            Softmax.Backward<T>(pb, ds, ds, l, s);
            if (!dq.IsEmpty)
                GemmOf<T>.Run(false, false, l, d, s, scale, ds, s, k[kb.Offsets[b]..], kb.Ld, T.Zero, dq[dqb.Offsets[b]..], dqb.Ld);
            if (!dk.IsEmpty)
                GemmOf<T>.Run(true, false, s, d, l, scale, ds, s, q[qb.Offsets[b]..], qb.Ld, T.Zero, dk[dkb.Offsets[b]..], dkb.Ld);
        }
        if (rented is not null) ArrayPool<T>.Shared.Return(rented);
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
