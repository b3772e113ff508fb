using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace GradFlow.Kernels;

/// <summary>Passes over activations for the monitor: moments, per-unit maxima, saturation counts.</summary>
internal static class ActivationKernels
{
    /// <summary>
    /// Sum and sum of squares (in double, from float blocks of 4,096). Four accumulators of each: one would hold the loop
    /// to an add's latency per 16 values, several times slower than L2 delivers them.
    /// </summary>
    public static (double Sum, double SumSquares) Moments(ReadOnlySpan<float> y)
    {
        double sum = 0, sumSq = 0;
        ref float p = ref MemoryMarshal.GetReference(y);
        for (int start = 0; start < y.Length; start += 4096)
        {
            int end = Math.Min(y.Length, start + 4096), i = start;
            double s = 0, q = 0; // double: on hardware without vectors the whole block is the scalar tail
            if (Vector512.IsHardwareAccelerated && end - start >= 16)
            {
                var s0 = Vector512<float>.Zero; var s1 = s0; var s2 = s0; var s3 = s0;
                var q0 = s0; var q1 = s0; var q2 = s0; var q3 = s0;
                for (; i + 64 <= end; i += 64)
                {
                    var v0 = Vector512.LoadUnsafe(ref p, (nuint)i); var v1 = Vector512.LoadUnsafe(ref p, (nuint)(i + 16));
                    var v2 = Vector512.LoadUnsafe(ref p, (nuint)(i + 32)); var v3 = Vector512.LoadUnsafe(ref p, (nuint)(i + 48));
                    s0 += v0; s1 += v1; s2 += v2; s3 += v3;
                    q0 = Vector512.FusedMultiplyAdd(v0, v0, q0); q1 = Vector512.FusedMultiplyAdd(v1, v1, q1);
                    q2 = Vector512.FusedMultiplyAdd(v2, v2, q2); q3 = Vector512.FusedMultiplyAdd(v3, v3, q3);
                }
                for (; i + 16 <= end; i += 16)
                {
                    var v = Vector512.LoadUnsafe(ref p, (nuint)i);
                    s0 += v;
                    q0 = Vector512.FusedMultiplyAdd(v, v, q0);
                }
                s = Vector512.Sum((s0 + s1) + (s2 + s3)); q = Vector512.Sum((q0 + q1) + (q2 + q3));
            }
            else if (Vector256.IsHardwareAccelerated && end - start >= 8)
            {
                var s0 = Vector256<float>.Zero; var s1 = s0; var q0 = s0; var q1 = s0;
                for (; i + 16 <= end; i += 16)
                {
                    var v0 = Vector256.LoadUnsafe(ref p, (nuint)i); var v1 = Vector256.LoadUnsafe(ref p, (nuint)(i + 8));
                    s0 += v0; s1 += v1;
                    q0 += v0 * v0; q1 += v1 * v1;
                }
                for (; i + 8 <= end; i += 8)
                {
                    var v = Vector256.LoadUnsafe(ref p, (nuint)i);
                    s0 += v;
                    q0 += v * v;
                }
                s = Vector256.Sum(s0 + s1); q = Vector256.Sum(q0 + q1);
            }
            for (; i < end; i++) { float v = Unsafe.Add(ref p, i); s += v; q += v * v; }
            if (!double.IsFinite(s + q)) (s, q) = Wide(y[start..end]);
            sum += s; sumSq += q;
        }
        return (sum, sumSq);
    }

    /// <summary>
    /// Sum and sum of squares in double, for a block whose float lanes gave a non-finite sum: finite values overflow
    /// them past ~1.8e19 (squares) or 3.4e38 (sums), never a double's; a NaN or Inf in the block stays non-finite.
    /// </summary>
    private static (double Sum, double SumSquares) Wide(ReadOnlySpan<float> x)
    {
        double s = 0, q = 0;
        foreach (float v in x)
        {
            s += v;
            q += (double)v * v;
        }
        return (s, q);
    }

    /// <summary>
    /// An activation's fused backward dx = op(g, y) (<see cref="SigmoidGradOp"/>, <see cref="TanhGradOp"/>,
    /// <see cref="ReluGradOp"/>) that also sums the squares of the gradient it receives and of the one it produces, in
    /// the same pass: the backward flow's norms on both sides of the activation at no extra trip through memory. dx
    /// is bitwise what the unmeasured op writes (the same op per element); a NaN or Inf shows
    /// as a non-finite sum.
    /// </summary>
    // Not inlined: a parallel body inlining it would run out of the JIT's inlining budget and call the op per vector.
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static (double GradSquares, double ResultSquares) GradAndSquares<TOp>(ReadOnlySpan<float> g, ReadOnlySpan<float> y, Span<float> dx)
        where TOp : struct, IBinaryOp
    {
        int n = g.Length;
        if (y.Length != n || dx.Length != n) Guard.Throw(nameof(GradAndSquares), $"lengths {n}, {y.Length}, {dx.Length} differ.");
        ref float pg = ref MemoryMarshal.GetReference(g);
        ref float py = ref MemoryMarshal.GetReference(y);
        ref float pd = ref MemoryMarshal.GetReference(dx);
        double gTotal = 0, dTotal = 0;
        for (int start = 0; start < n; start += 4096)
        {
            int end = Math.Min(n, start + 4096), i = start;
            double gs = 0, ds = 0; // double: without vectors the whole block is the scalar tail
            if (Vector512.IsHardwareAccelerated)
            {
                // Two lane groups an iteration: each sum has two accumulators, so the multiply-add latency is hidden.
                var g0 = Vector512<float>.Zero; var g1 = g0; var d0 = g0; var d1 = g0;
                for (; i + 32 <= end; i += 32)
                {
                    var a0 = Vector512.LoadUnsafe(ref pg, (nuint)i); var a1 = Vector512.LoadUnsafe(ref pg, (nuint)(i + 16));
                    var r0 = TOp.Invoke(a0, Vector512.LoadUnsafe(ref py, (nuint)i));
                    var r1 = TOp.Invoke(a1, Vector512.LoadUnsafe(ref py, (nuint)(i + 16)));
                    r0.StoreUnsafe(ref pd, (nuint)i); r1.StoreUnsafe(ref pd, (nuint)(i + 16));
                    g0 = Vector512.FusedMultiplyAdd(a0, a0, g0); g1 = Vector512.FusedMultiplyAdd(a1, a1, g1);
                    d0 = Vector512.FusedMultiplyAdd(r0, r0, d0); d1 = Vector512.FusedMultiplyAdd(r1, r1, d1);
                }
                for (; i + 16 <= end; i += 16)
                {
                    var a = Vector512.LoadUnsafe(ref pg, (nuint)i);
                    var r = TOp.Invoke(a, Vector512.LoadUnsafe(ref py, (nuint)i));
                    r.StoreUnsafe(ref pd, (nuint)i);
                    g0 = Vector512.FusedMultiplyAdd(a, a, g0);
                    d0 = Vector512.FusedMultiplyAdd(r, r, d0);
                }
                gs = Vector512.Sum(g0 + g1); ds = Vector512.Sum(d0 + d1);
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                var g0 = Vector256<float>.Zero; var d0 = g0;
                for (; i + 8 <= end; i += 8)
                {
                    var a = Vector256.LoadUnsafe(ref pg, (nuint)i);
                    var r = TOp.Invoke(a, Vector256.LoadUnsafe(ref py, (nuint)i));
                    r.StoreUnsafe(ref pd, (nuint)i);
                    g0 += a * a; d0 += r * r;
                }
                gs = Vector256.Sum(g0); ds = Vector256.Sum(d0);
            }
            for (; i < end; i++)
            {
                float a = Unsafe.Add(ref pg, i), r = TOp.Invoke(a, Unsafe.Add(ref py, i));
                Unsafe.Add(ref pd, i) = r;
                gs += a * a; ds += r * r;
            }
            if (!double.IsFinite(gs)) gs = Wide(g[start..end]).SumSquares;
            if (!double.IsFinite(ds)) ds = Wide(dx[start..end]).SumSquares;
            gTotal += gs; dTotal += ds;
        }
        return (gTotal, dTotal);
    }

    /// <summary>
    /// Sum of squares alone (the backward flow's norm; a NaN or Inf makes it non-finite). Four independent
    /// accumulators: one would hold the loop to a fused multiply-add's 4-cycle latency per 16 values, below the
    /// bandwidth of L2 and L3, where a gradient just written by backward sits (1.5x on a 5.5 MB gradient).
    /// </summary>
    public static double SumSquares(ReadOnlySpan<float> y)
    {
        ref float p = ref MemoryMarshal.GetReference(y);
        double total = 0;
        for (int start = 0; start < y.Length; start += 4096)
        {
            int end = Math.Min(y.Length, start + 4096), i = start;
            double s = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                var a0 = Vector512<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
                for (; i + 64 <= end; i += 64)
                {
                    var v0 = Vector512.LoadUnsafe(ref p, (nuint)i); var v1 = Vector512.LoadUnsafe(ref p, (nuint)(i + 16));
                    var v2 = Vector512.LoadUnsafe(ref p, (nuint)(i + 32)); var v3 = Vector512.LoadUnsafe(ref p, (nuint)(i + 48));
                    a0 = Vector512.FusedMultiplyAdd(v0, v0, a0); a1 = Vector512.FusedMultiplyAdd(v1, v1, a1);
                    a2 = Vector512.FusedMultiplyAdd(v2, v2, a2); a3 = Vector512.FusedMultiplyAdd(v3, v3, a3);
                }
                for (; i + 16 <= end; i += 16)
                {
                    var v = Vector512.LoadUnsafe(ref p, (nuint)i);
                    a0 = Vector512.FusedMultiplyAdd(v, v, a0);
                }
                s = Vector512.Sum((a0 + a1) + (a2 + a3));
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                var a0 = Vector256<float>.Zero; var a1 = a0;
                for (; i + 16 <= end; i += 16)
                {
                    var v0 = Vector256.LoadUnsafe(ref p, (nuint)i); var v1 = Vector256.LoadUnsafe(ref p, (nuint)(i + 8));
                    a0 += v0 * v0; a1 += v1 * v1;
                }
                s = Vector256.Sum(a0 + a1);
            }
            for (; i < end; i++) { float v = Unsafe.Add(ref p, i); s += v * v; }
            if (!double.IsFinite(s)) s = Wide(y[start..end]).SumSquares;
            total += s;
        }
        return total;
    }

    // The largest lane by halving (four max steps), not by reading sixteen lanes one at a time.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float MaxLane(Vector512<float> v)
    {
        var h = Vector256.Max(v.GetLower(), v.GetUpper());
        var q = Vector128.Max(h.GetLower(), h.GetUpper());
        q = Vector128.Max(q, Vector128.Shuffle(q, Vector128.Create(2, 3, 0, 1)));
        q = Vector128.Max(q, Vector128.Shuffle(q, Vector128.Create(1, 0, 3, 2)));
        return q.ToScalar();
    }

    /// <summary>Sum, sum of squares and the count of values below lo or above hi, in one pass.</summary>
    public static (double Sum, double SumSquares, long Outside) MomentsAndOutside(ReadOnlySpan<float> y, float lo, float hi)
    {
        double sum = 0, sumSq = 0;
        long outside = 0;
        ref float p = ref MemoryMarshal.GetReference(y);
        for (int start = 0; start < y.Length; start += 4096)
        {
            int end = Math.Min(y.Length, start + 4096), i = start;
            double s = 0, q = 0; // double: on hardware without vectors the whole block is the scalar tail
            if (Vector512.IsHardwareAccelerated && end - start >= 16)
            {
                var vlo = Vector512.Create(lo); var vhi = Vector512.Create(hi);
                var s0 = Vector512<float>.Zero; var s1 = s0; var q0 = s0; var q1 = s0;
                // Two lane groups an iteration, each sum with two accumulators (an add's latency would bound one).
                for (; i + 32 <= end; i += 32)
                {
                    var v0 = Vector512.LoadUnsafe(ref p, (nuint)i); var v1 = Vector512.LoadUnsafe(ref p, (nuint)(i + 16));
                    s0 += v0; s1 += v1;
                    q0 = Vector512.FusedMultiplyAdd(v0, v0, q0); q1 = Vector512.FusedMultiplyAdd(v1, v1, q1);
                    // The count on the integer side (compare to a mask, pop-count), off the floating-point pipes.
                    ulong out0 = (Vector512.LessThan(v0, vlo) | Vector512.GreaterThan(v0, vhi)).ExtractMostSignificantBits();
                    ulong out1 = (Vector512.LessThan(v1, vlo) | Vector512.GreaterThan(v1, vhi)).ExtractMostSignificantBits();
                    outside += BitOperations.PopCount(out0 | (out1 << 16));
                }
                for (; i + 16 <= end; i += 16)
                {
                    var v = Vector512.LoadUnsafe(ref p, (nuint)i);
                    s0 += v;
                    q0 = Vector512.FusedMultiplyAdd(v, v, q0);
                    outside += BitOperations.PopCount((Vector512.LessThan(v, vlo) | Vector512.GreaterThan(v, vhi)).ExtractMostSignificantBits());
                }
                s = Vector512.Sum(s0 + s1); q = Vector512.Sum(q0 + q1);
            }
            for (; i < end; i++)
            {
                float v = Unsafe.Add(ref p, i);
                s += v; q += v * v;
                if (v < lo || v > hi) outside++;
            }
            if (!double.IsFinite(s + q)) (s, q) = Wide(y[start..end]);
            sum += s; sumSq += q;
        }
        return (sum, sumSq, outside);
    }

    /// <summary>
    /// y = op(x) with <see cref="MomentsAndOutside"/> of y, block by block: each block of y is measured right after it
    /// is written, from L1, instead of in a pass of its own from L2 or memory. Blocks start at multiples of 4,096, so
    /// y is bitwise what <see cref="Elementwise.Unary{TOp, T}(ReadOnlySpan{T}, Span{T})"/> writes over the whole span.
    /// </summary>
    // Not inlined: a parallel body inlining it would run out of the JIT's inlining budget and call the op per vector.
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static (double Sum, double SumSquares, long Outside) UnaryWithMoments<TOp>(ReadOnlySpan<float> x, Span<float> y, float lo, float hi)
        where TOp : struct, IUnaryOp
    {
        if (y.Length != x.Length) Guard.Throw(nameof(UnaryWithMoments), $"lengths {x.Length} and {y.Length} differ.");
        double sum = 0, sumSq = 0;
        long outside = 0;
        for (int start = 0; start < x.Length; start += 4096)
        {
            int n = Math.Min(4096, x.Length - start);
            var block = y.Slice(start, n);
            Elementwise.Unary<TOp, float>(x.Slice(start, n), block);
            var (s, q, o) = MomentsAndOutside(block, lo, hi);
            sum += s; sumSq += q; outside += o;
        }
        return (sum, sumSq, outside);
    }

    /// <summary>
    /// y = op(x) over a contiguous (outer, units, inner) block with <see cref="UnitMaxAndMoments"/> of y, in one pass:
    /// the sums and each unit's maximum are taken from the registers that write y. A unit's (or a feature row's) last
    /// partial vector is the overlapping last full vector: its store rewrites equal values, the maximum is idempotent,
    /// and the sums mask the lanes already counted. So the op must give the same value at every width (ReLU); y is then
    /// bitwise the unmeasured kernel's.
    /// </summary>
    // Not inlined: a parallel body inlining it would run out of the JIT's inlining budget and call the op per vector.
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static (double Sum, double SumSquares) UnaryWithUnitMax<TOp>(ReadOnlySpan<float> x, Span<float> y, int outer, int units, int inner, Span<float> unitMax)
        where TOp : struct, IUnaryOp
    {
        int row = units * inner;
        if (x.Length != (long)outer * row || y.Length != x.Length || unitMax.Length < units)
            Guard.Throw(nameof(UnaryWithUnitMax), $"lengths {x.Length} and {y.Length} do not hold ({outer}, {units}, {inner}) with {unitMax.Length} maxima.");
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float py = ref MemoryMarshal.GetReference(y);
        ref float m = ref MemoryMarshal.GetReference(unitMax);
        if (!Vector512.IsHardwareAccelerated || (inner == 1 ? units : inner) < 16)
        {
            // Units narrower than a vector, or no 512-bit vectors: the op, then the pass (vectorised along the rows and
            // at 256 bits), a few rows at a time while they are in L1 or L2.
            int rowsPerGroup = Math.Max(1, 4096 / Math.Max(row, 1));
            double total = 0, totalSq = 0;
            for (int o = 0; o < outer; o += rowsPerGroup)
            {
                int rows = Math.Min(rowsPerGroup, outer - o);
                var group = y.Slice(o * row, rows * row);
                Elementwise.Unary<TOp, float>(x.Slice(o * row, rows * row), group);
                var (gs, gq) = UnitMaxAndMoments(group, rows, units, inner, unitMax);
                total += gs; totalSq += gq;
            }
            return (total, totalSq);
        }
        var lanes = Vector512.Create(0f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        double sum = 0, sumSq = 0;
        for (int o = 0; o < outer; o++)
        {
            int rowStart = o * row;
            var s0 = Vector512<float>.Zero; var q0 = s0;
            if (inner == 1)
            {
                // A row of features: 16 units a step, their maxima updated in place.
                int u = 0;
                for (; u + 16 <= units; u += 16)
                {
                    if ((u & 0xFFFF) == 0xFFF0) // every 4,096 terms a lane, the sums move to the double totals
                    {
                        sum += Vector512.Sum(s0); sumSq += Vector512.Sum(q0);
                        s0 = q0 = Vector512<float>.Zero;
                    }
                    var v = TOp.Invoke(Vector512.LoadUnsafe(ref px, (nuint)(rowStart + u)));
                    v.StoreUnsafe(ref py, (nuint)(rowStart + u));
                    Vector512.MaxNative(Vector512.LoadUnsafe(ref m, (nuint)u), v).StoreUnsafe(ref m, (nuint)u);
                    s0 += v;
                    q0 = Vector512.FusedMultiplyAdd(v, v, q0);
                }
                if (u < units)
                {
                    int back = units - 16, fresh = units - u;
                    var v = TOp.Invoke(Vector512.LoadUnsafe(ref px, (nuint)(rowStart + back)));
                    v.StoreUnsafe(ref py, (nuint)(rowStart + back));
                    Vector512.MaxNative(Vector512.LoadUnsafe(ref m, (nuint)back), v).StoreUnsafe(ref m, (nuint)back);
                    v = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(lanes, Vector512.Create((float)(16 - fresh))), v, Vector512<float>.Zero);
                    s0 += v;
                    q0 = Vector512.FusedMultiplyAdd(v, v, q0);
                }
            }
            else
            {
                var s1 = s0; var q1 = s0;
                for (int u = 0; u < units; u++)
                {
                    int start = rowStart + u * inner, end = start + inner, i = start;
                    var a = Vector512.Create(Unsafe.Add(ref m, u)); var b = a;
                    for (; i + 32 <= end; i += 32)
                    {
                        var v0 = TOp.Invoke(Vector512.LoadUnsafe(ref px, (nuint)i));
                        var v1 = TOp.Invoke(Vector512.LoadUnsafe(ref px, (nuint)(i + 16)));
                        v0.StoreUnsafe(ref py, (nuint)i); v1.StoreUnsafe(ref py, (nuint)(i + 16));
                        a = Vector512.MaxNative(a, v0); b = Vector512.MaxNative(b, v1);
                        s0 += v0; s1 += v1;
                        q0 = Vector512.FusedMultiplyAdd(v0, v0, q0); q1 = Vector512.FusedMultiplyAdd(v1, v1, q1);
                    }
                    if (i + 16 <= end)
                    {
                        var v = TOp.Invoke(Vector512.LoadUnsafe(ref px, (nuint)i));
                        v.StoreUnsafe(ref py, (nuint)i);
                        a = Vector512.MaxNative(a, v);
                        s0 += v;
                        q0 = Vector512.FusedMultiplyAdd(v, v, q0);
                        i += 16;
                    }
                    if (i < end)
                    {
                        int fresh = end - i;
                        var v = TOp.Invoke(Vector512.LoadUnsafe(ref px, (nuint)(end - 16)));
                        v.StoreUnsafe(ref py, (nuint)(end - 16));
                        b = Vector512.MaxNative(b, v);
                        v = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(lanes, Vector512.Create((float)(16 - fresh))), v, Vector512<float>.Zero);
                        s1 += v;
                        q1 = Vector512.FusedMultiplyAdd(v, v, q1);
                    }
                    Unsafe.Add(ref m, u) = MaxLane(Vector512.MaxNative(a, b));
                    if (((u + 1) * inner & 0xFFFF) < inner) // about every 65,536 values (2,048 terms a lane), to the doubles
                    {
                        sum += Vector512.Sum(s0 + s1); sumSq += Vector512.Sum(q0 + q1);
                        s0 = s1 = q0 = q1 = Vector512<float>.Zero;
                    }
                }
                s0 += s1; q0 += q1;
            }
            // A row's sums leave the float lanes (at most a few thousand terms each) for the double totals.
            sum += Vector512.Sum(s0); sumSq += Vector512.Sum(q0);
        }
        return double.IsFinite(sum + sumSq) ? (sum, sumSq) : Wide(y); // overflowed float lanes, or a NaN or Inf
    }

    /// <summary>
    /// Over a contiguous (outer, units, inner) block: unitMax[u] = max(unitMax[u], every value of unit u) (a unit whose
    /// maximum is not positive was dead for the batch), and the sum and sum of squares (mean and std). Rows are taken a
    /// few at a time, so the moments' pass (<see cref="Moments"/>, unit-blind) and the maxima's pass read them from L1
    /// or L2. Maxima use the hardware max (a NaN may or may not win over a number).
    /// </summary>
    public static (double Sum, double SumSquares) UnitMaxAndMoments(ReadOnlySpan<float> y, int outer, int units, int inner, Span<float> unitMax)
    {
        int row = units * inner;
        int rowsPerGroup = Math.Max(1, 8192 / Math.Max(row, 1));
        double sum = 0, sumSq = 0;
        for (int o = 0; o < outer; o += rowsPerGroup)
        {
            int rows = Math.Min(rowsPerGroup, outer - o);
            var group = y.Slice(o * row, rows * row);
            var (s, q) = Moments(group);
            sum += s; sumSq += q;
            for (int r = 0; r < rows; r++) RowUnitMax(group.Slice(r * row, row), units, inner, unitMax);
        }
        return (sum, sumSq);
    }

    // One row of (units, inner) values into the units' maxima. A unit's last vector may overlap values already taken
    // (max is idempotent), so no unit ends in a scalar tail once it spans a vector.
    private static void RowUnitMax(ReadOnlySpan<float> row, int units, int inner, Span<float> unitMax)
    {
        ref float p = ref MemoryMarshal.GetReference(row);
        ref float m = ref MemoryMarshal.GetReference(unitMax);
        if (inner == 1)
        {
            // A row of features: the maxima update 16 units at a time.
            int u = 0;
            if (Vector512.IsHardwareAccelerated && units >= 16)
            {
                for (; u + 16 <= units; u += 16)
                    Vector512.MaxNative(Vector512.LoadUnsafe(ref m, (nuint)u), Vector512.LoadUnsafe(ref p, (nuint)u)).StoreUnsafe(ref m, (nuint)u);
                if (u < units)
                {
                    u = units - 16;
                    Vector512.MaxNative(Vector512.LoadUnsafe(ref m, (nuint)u), Vector512.LoadUnsafe(ref p, (nuint)u)).StoreUnsafe(ref m, (nuint)u);
                }
                return;
            }
            if (Vector256.IsHardwareAccelerated && units >= 8)
            {
                for (; u + 8 <= units; u += 8)
                    Vector256.MaxNative(Vector256.LoadUnsafe(ref m, (nuint)u), Vector256.LoadUnsafe(ref p, (nuint)u)).StoreUnsafe(ref m, (nuint)u);
                if (u < units)
                {
                    u = units - 8;
                    Vector256.MaxNative(Vector256.LoadUnsafe(ref m, (nuint)u), Vector256.LoadUnsafe(ref p, (nuint)u)).StoreUnsafe(ref m, (nuint)u);
                }
                return;
            }
            for (; u < units; u++) Unsafe.Add(ref m, u) = MathF.Max(Unsafe.Add(ref m, u), Unsafe.Add(ref p, u));
            return;
        }
        for (int u = 0; u < units; u++)
        {
            int start = u * inner, end = start + inner, i = start;
            float mx = Unsafe.Add(ref m, u);
            if (Vector512.IsHardwareAccelerated && inner >= 16)
            {
                var a = Vector512.Create(mx); var b = a;
                for (; i + 32 <= end; i += 32)
                {
                    a = Vector512.MaxNative(a, Vector512.LoadUnsafe(ref p, (nuint)i));
                    b = Vector512.MaxNative(b, Vector512.LoadUnsafe(ref p, (nuint)(i + 16)));
                }
                if (i + 16 <= end) { a = Vector512.MaxNative(a, Vector512.LoadUnsafe(ref p, (nuint)i)); i += 16; }
                if (i < end) b = Vector512.MaxNative(b, Vector512.LoadUnsafe(ref p, (nuint)(end - 16)));
                mx = MaxLane(Vector512.MaxNative(a, b));
            }
            else if (Vector256.IsHardwareAccelerated && inner >= 8)
            {
                var a = Vector256.Create(mx);
                for (; i + 8 <= end; i += 8) a = Vector256.MaxNative(a, Vector256.LoadUnsafe(ref p, (nuint)i));
                if (i < end) a = Vector256.MaxNative(a, Vector256.LoadUnsafe(ref p, (nuint)(end - 8)));
                var h = Vector128.MaxNative(a.GetLower(), a.GetUpper());
                h = Vector128.MaxNative(h, Vector128.Shuffle(h, Vector128.Create(2, 3, 0, 1)));
                h = Vector128.MaxNative(h, Vector128.Shuffle(h, Vector128.Create(1, 0, 3, 2)));
                mx = h.ToScalar();
            }
            else
            {
                for (; i < end; i++) mx = MathF.Max(mx, Unsafe.Add(ref p, i));
            }
            Unsafe.Add(ref m, u) = mx;
        }
    }
}
