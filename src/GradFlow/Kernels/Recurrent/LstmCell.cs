using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace GradFlow.Kernels;

/// <summary>
/// One LSTM time step over a batch, forward and backward, each in a single pass over the gates.
/// Gates in PyTorch's order (input, forget, cell, output) are the four column blocks of a pre-activation row
/// of width 4H. The activated gates are kept in planes of batch*hidden elements, sigmoids first so that
/// consecutive time steps of one buffer give contiguous views: plane 0 i = sigmoid, 1 f = sigmoid,
/// 2 o = sigmoid, 3 g = tanh, 4 tanh(c').
/// Forward: c' = f c + i g, h' = o tanh(c'), rounded as the composed tensor ops round (no fused multiply-add).
/// </summary>
internal static unsafe class LstmCell
{
    /// <summary>Number of saved planes per step (i, f, o, g, tanh c').</summary>
    public const int Planes = 5;

    /// <summary>
    /// From pre-activations <paramref name="pre"/> (batch rows of 4*hidden, row stride <paramref name="ldPre"/>) and
    /// the previous cell state, writes the activated gates (plane p at <c>gates[p * plane ..]</c>), c' and h'
    /// (contiguous batch x hidden).
    /// </summary>
    public static void Forward<T>(int batch, int hidden, ReadOnlySpan<T> pre, int ldPre, ReadOnlySpan<T> cPrev,
        Span<T> gates, int plane, Span<T> c, Span<T> h)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Check(batch, hidden, pre.Length, ldPre, cPrev.Length, gates.Length, plane, c.Length, h.Length);
        int chunks = Chunks(batch, (long)batch * hidden);
        if (chunks < 2)
        {
            ForwardRows(0, batch, hidden, pre, ldPre, cPrev, gates, plane, c, h);
            return;
        }
        // Rows are independent and each is computed as on one thread: the split cannot change a bit.
        fixed (T* pp = pre, cp = cPrev, gp = gates, c2 = c, hp = h)
        {
            var body = new ForwardBody<T>
            {
                Pre = new(pp, pre.Length), CPrev = new(cp, cPrev.Length), Gates = new(gp, gates.Length), C = new(c2, c.Length), H = new(hp, h.Length),
                Batch = batch, Hidden = hidden, LdPre = ldPre, Plane = plane, Chunks = chunks,
            };
            Parallelism.For(chunks, ref body);
        }
    }

    /// <summary>Elements (batch x hidden) per thread below which a step runs on the calling thread: ~10 us of gates.</summary>
    internal const int MinPerThread = 1 << 12;

    private static int Chunks(int extent, long elements) =>
        (int)Math.Min(Math.Min(Parallelism.NumThreads, extent), elements / MinPerThread);

    private static void ForwardRows<T>(int b0, int b1, int hidden, ReadOnlySpan<T> pre, int ldPre, ReadOnlySpan<T> cPrev,
        Span<T> gates, int plane, Span<T> c, Span<T> h)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int b = b0; b < b1; b++)
        {
            var row = new Rows<T>(pre, b * ldPre, hidden);
            int o = b * hidden;
            int j = 0;
            if (Lanes512<T>.IsSupported) j = ForwardRun<T, Lanes512<T>, Vector512<T>>(row, cPrev, gates, plane, c, h, o, j, hidden);
            if (Lanes256<T>.IsSupported) j = ForwardRun<T, Lanes256<T>, Vector256<T>>(row, cPrev, gates, plane, c, h, o, j, hidden);
            ForwardRun<T, Lane<T>, T>(row, cPrev, gates, plane, c, h, o, j, hidden);
        }
    }

    /// <summary>
    /// Backward of one step. <paramref name="dh"/> is dL/dh' and <paramref name="dc"/> dL/dc' on entry and dL/dc on
    /// return; writes dL/d(pre-activation) into <paramref name="dPre"/> (row stride <paramref name="ldPre"/>) and,
    /// unless <paramref name="dBias"/> is empty, adds its column sums to it (4*hidden).
    /// With s' = s(1 - s) and tanh' = 1 - tanh^2: dc_tot = dc + dh o (1 - tanh(c')^2), d_o = dh tanh(c') o',
    /// d_i = dc_tot g i', d_f = dc_tot c f', d_g = dc_tot i (1 - g^2), dc = dc_tot f.
    /// </summary>
    public static void Backward<T>(int batch, int hidden, ReadOnlySpan<T> dh, Span<T> dc, ReadOnlySpan<T> gates, int plane,
        ReadOnlySpan<T> cPrev, Span<T> dPre, int ldPre, Span<T> dBias)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Check(batch, hidden, dPre.Length, ldPre, cPrev.Length, gates.Length, plane, dc.Length, dh.Length);
        if (!dBias.IsEmpty && dBias.Length < 4 * hidden)
            Guard.ThrowArg("LstmCell.Backward", nameof(dBias), $"dBias holds {dBias.Length} elements, fewer than 4*hidden = {4 * hidden}.");
        // Column blocks (64-aligned, so every block but the last runs in the widest lanes) over all rows in order:
        // each dBias column still sums the rows in order, so the split cannot change a bit.
        int blocks = Chunks(hidden / 64, (long)batch * hidden);
        if (blocks < 2)
        {
            BackwardColumns(0, hidden, batch, hidden, dh, dc, gates, plane, cPrev, dPre, ldPre, dBias);
            return;
        }
        fixed (T* dhp = dh, dcp = dc, gp = gates, cp = cPrev, dpp = dPre, dbp = dBias)
        {
            var body = new BackwardBody<T>
            {
                Dh = new(dhp, dh.Length), Dc = new(dcp, dc.Length), Gates = new(gp, gates.Length), CPrev = new(cp, cPrev.Length),
                DPre = new(dpp, dPre.Length), DBias = new(dbp, dBias.Length),
                Batch = batch, Hidden = hidden, LdPre = ldPre, Plane = plane, Blocks = blocks,
            };
            Parallelism.For(blocks, ref body);
        }
    }

    private static void BackwardColumns<T>(int j0, int j1, int batch, int hidden, ReadOnlySpan<T> dh, Span<T> dc, ReadOnlySpan<T> gates, int plane,
        ReadOnlySpan<T> cPrev, Span<T> dPre, int ldPre, Span<T> dBias)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int b = 0; b < batch; b++)
        {
            int o = b * hidden;
            int j = j0;
            var args = new BackwardArgs<T>(dh, dc, gates, plane, cPrev, dPre, b * ldPre, dBias, hidden, j1);
            if (Lanes512<T>.IsSupported) j = BackwardRun<T, Lanes512<T>, Vector512<T>>(args, o, j);
            if (Lanes256<T>.IsSupported) j = BackwardRun<T, Lanes256<T>, Vector256<T>>(args, o, j);
            BackwardRun<T, Lane<T>, T>(args, o, j);
        }
    }

    /// <summary>A pinned span, so a parallel body (a struct, not a ref struct) can carry it.</summary>
    private readonly struct Pinned<T>(T* pointer, int length) where T : unmanaged
    {
        public Span<T> Span => new(pointer, length);
    }

    private struct ForwardBody<T> : IParallelBody where T : unmanaged, IFloatingPointIeee754<T>
    {
        public Pinned<T> Pre, CPrev, Gates, C, H;
        public int Batch, Hidden, LdPre, Plane, Chunks;

        public readonly void Invoke(int index)
        {
            int b0 = (int)((long)Batch * index / Chunks), b1 = (int)((long)Batch * (index + 1) / Chunks);
            ForwardRows<T>(b0, b1, Hidden, Pre.Span, LdPre, CPrev.Span, Gates.Span, Plane, C.Span, H.Span);
        }
    }

    private struct BackwardBody<T> : IParallelBody where T : unmanaged, IFloatingPointIeee754<T>
    {
        public Pinned<T> Dh, Dc, Gates, CPrev, DPre, DBias;
        public int Batch, Hidden, LdPre, Plane, Blocks;

        public readonly void Invoke(int index)
        {
            var (j0, j1) = ElementwiseParallel.Range(index, Hidden, Blocks);
            BackwardColumns<T>(j0, j1, Batch, Hidden, Dh.Span, Dc.Span, Gates.Span, Plane, CPrev.Span, DPre.Span, LdPre, DBias.Span);
        }
    }

    private static void Check(int batch, int hidden, int preLength, int ldPre, int cLength, int gatesLength, int plane, int c2Length, int hLength)
    {
        long n = (long)batch * hidden;
        if (batch < 0 || hidden < 0 || ldPre < 4 * hidden || plane < n)
            Guard.Throw("LstmCell", $"batch={batch}, hidden={hidden}, ldPre={ldPre}, plane={plane} are inconsistent.");
        if ((batch > 0 && preLength < ((long)(batch - 1) * ldPre) + (4L * hidden)) || cLength < n || c2Length < n || hLength < n
            || (n > 0 && gatesLength < ((long)(Planes - 1) * plane) + n))
            Guard.Throw("LstmCell", $"a span is too short for batch={batch}, hidden={hidden}.");
    }

    private readonly ref struct Rows<T>(ReadOnlySpan<T> pre, int start, int hidden)
    {
        public readonly ReadOnlySpan<T> I = pre.Slice(start, hidden);
        public readonly ReadOnlySpan<T> F = pre.Slice(start + hidden, hidden);
        public readonly ReadOnlySpan<T> G = pre.Slice(start + (2 * hidden), hidden);
        public readonly ReadOnlySpan<T> O = pre.Slice(start + (3 * hidden), hidden);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int ForwardRun<T, TL, TV>(in Rows<T> row, ReadOnlySpan<T> cPrev, Span<T> gates, int plane, Span<T> c, Span<T> h, int o, int j, int hidden)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TL : struct, ILanes<T, TV>
    {
        ref T gi = ref MemoryMarshal.GetReference(gates);
        ref T gf = ref Unsafe.Add(ref gi, plane);
        ref T go = ref Unsafe.Add(ref gi, 2 * plane);
        ref T gg = ref Unsafe.Add(ref gi, 3 * plane);
        ref T gt = ref Unsafe.Add(ref gi, 4 * plane);
        for (; j <= hidden - TL.Count; j += TL.Count)
        {
            nuint at = (nuint)(o + j), col = (nuint)j;
            var i = TL.Sigmoid(TL.Load(row.I, col));
            var f = TL.Sigmoid(TL.Load(row.F, col));
            var g = TL.Tanh(TL.Load(row.G, col));
            var og = TL.Sigmoid(TL.Load(row.O, col));
            var cn = TL.Add(TL.Mul(f, TL.Load(cPrev, at)), TL.Mul(i, g));
            var tc = TL.Tanh(cn);
            TL.Store(i, ref gi, at);
            TL.Store(f, ref gf, at);
            TL.Store(og, ref go, at);
            TL.Store(g, ref gg, at);
            TL.Store(tc, ref gt, at);
            TL.Store(cn, ref MemoryMarshal.GetReference(c), at);
            TL.Store(TL.Mul(og, tc), ref MemoryMarshal.GetReference(h), at);
        }
        return j;
    }

    private readonly ref struct BackwardArgs<T>(ReadOnlySpan<T> dh, Span<T> dc, ReadOnlySpan<T> gates, int plane,
        ReadOnlySpan<T> cPrev, Span<T> dPre, int preStart, Span<T> dBias, int hidden, int end)
    {
        public readonly ReadOnlySpan<T> Dh = dh;
        public readonly Span<T> Dc = dc;
        public readonly ReadOnlySpan<T> Gates = gates;
        public readonly int Plane = plane;
        public readonly ReadOnlySpan<T> CPrev = cPrev;
        public readonly Span<T> DPre = dPre.Slice(preStart, 4 * hidden);
        public readonly Span<T> DBias = dBias;
        public readonly int Hidden = hidden;
        public readonly int End = end;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int BackwardRun<T, TL, TV>(in BackwardArgs<T> a, int o, int j)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TL : struct, ILanes<T, TV>
    {
        int hidden = a.Hidden, plane = a.Plane;
        ref T gi = ref MemoryMarshal.GetReference(a.Gates);
        ref T dp = ref MemoryMarshal.GetReference(a.DPre);
        ref T db = ref MemoryMarshal.GetReference(a.DBias);
        ref T dcRef = ref MemoryMarshal.GetReference(a.Dc);
        bool bias = !a.DBias.IsEmpty;
        var one = TL.Create(T.One);
        for (; j <= a.End - TL.Count; j += TL.Count)
        {
            nuint at = (nuint)(o + j), col = (nuint)j;
            var i = TL.Load(ref gi, at);
            var f = TL.Load(ref Unsafe.Add(ref gi, plane), at);
            var og = TL.Load(ref Unsafe.Add(ref gi, 2 * plane), at);
            var g = TL.Load(ref Unsafe.Add(ref gi, 3 * plane), at);
            var tc = TL.Load(ref Unsafe.Add(ref gi, 4 * plane), at);
            var dh = TL.Load(a.Dh, at);
            var dct = TL.Add(TL.Load(ref dcRef, at), TL.Mul(TL.Mul(dh, og), TL.Sub(one, TL.Mul(tc, tc))));
            var dI = TL.Mul(TL.Mul(dct, g), TL.Mul(i, TL.Sub(one, i)));
            var dF = TL.Mul(TL.Mul(dct, TL.Load(a.CPrev, at)), TL.Mul(f, TL.Sub(one, f)));
            var dG = TL.Mul(TL.Mul(dct, i), TL.Sub(one, TL.Mul(g, g)));
            var dO = TL.Mul(TL.Mul(dh, tc), TL.Mul(og, TL.Sub(one, og)));
            TL.Store(TL.Mul(dct, f), ref dcRef, at);
            TL.Store(dI, ref dp, col);
            TL.Store(dF, ref dp, col + (nuint)hidden);
            TL.Store(dG, ref dp, col + (nuint)(2 * hidden));
            TL.Store(dO, ref dp, col + (nuint)(3 * hidden));
            if (bias)
            {
                TL.Store(TL.Add(TL.Load(ref db, col), dI), ref db, col);
                TL.Store(TL.Add(TL.Load(ref db, col + (nuint)hidden), dF), ref db, col + (nuint)hidden);
                TL.Store(TL.Add(TL.Load(ref db, col + (nuint)(2 * hidden)), dG), ref db, col + (nuint)(2 * hidden));
                TL.Store(TL.Add(TL.Load(ref db, col + (nuint)(3 * hidden)), dO), ref db, col + (nuint)(3 * hidden));
            }
        }
        return j;
    }
}
