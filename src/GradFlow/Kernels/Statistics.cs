using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace GradFlow.Kernels;

/// <summary>Running sums of one statistics pass (see <see cref="Statistics"/>).</summary>
internal struct StatsAccumulator
{
    public long Count;
    public double SumSquares;
    public double SumAbs;
    public double MaxAbs;
    public long Zeros;
    public long NaNs;
    public long Infs;
}

/// <summary>
/// One fused pass over a gradient or activation: sum of squares, sum and max of |x|, exact zeros,
/// NaN and Inf counts, and a histogram of the raw sign+exponent bits (so log2-magnitude buckets cost
/// a shift and an increment). Non-finite values are counted but kept out of the sums, so a single
/// NaN does not hide the scale of everything else.
/// </summary>
internal static class Statistics
{
    /// <summary>Raw bins for float32: sign bit and 8 exponent bits (bits &gt;&gt; 23).</summary>
    public const int FloatRawBins = 512;

    /// <summary>Raw bins for float64: sign bit and 11 exponent bits (bits &gt;&gt; 52).</summary>
    public const int DoubleRawBins = 4096;

    // Sums are kept in float per block and folded into double after it: blocks of 4096 keep float
    // rounding below ~1e-6 relative while the inner loop stays at full vector width.
    private const int Block = 4096;

    public static void Accumulate(ReadOnlySpan<float> x, ref StatsAccumulator acc, Span<long> rawHistogram)
    {
        // The histogram counts each block right after its statistics, while the block is in L1: one pass
        // over memory instead of two (a large gradient is read from DRAM once).
        Span<int> table = rawHistogram.IsEmpty ? default : Table();
        for (int start = 0; start < x.Length; start += Block)
        {
            var block = x.Slice(start, Math.Min(Block, x.Length - start));
            AccumulateBlock(block, ref acc);
            if (!table.IsEmpty) HistogramFloat(block, table); // int counts: a tensor has under 2^31 values
        }
        if (!table.IsEmpty) Flush(table, rawHistogram);
        acc.Count += x.Length;
    }

    public static void Accumulate(ReadOnlySpan<double> x, ref StatsAccumulator acc, Span<long> rawHistogram)
    {
        double sumSq = 0, sumAbs = 0, maxAbs = 0;
        long zeros = 0, nans = 0, infs = 0;
        foreach (double v in x)
        {
            double a = Math.Abs(v);
            if (!double.IsFinite(v)) { if (double.IsNaN(v)) nans++; else infs++; continue; }
            if (v == 0) zeros++;
            sumSq += v * v;
            sumAbs += a;
            if (a > maxAbs) maxAbs = a;
        }
        acc.SumSquares += sumSq; acc.SumAbs += sumAbs; acc.MaxAbs = Math.Max(acc.MaxAbs, maxAbs);
        acc.Zeros += zeros; acc.NaNs += nans; acc.Infs += infs; acc.Count += x.Length;
        if (!rawHistogram.IsEmpty)
            foreach (double v in x) rawHistogram[(int)(BitConverter.DoubleToUInt64Bits(v) >> 52)]++;
    }

    private static void AccumulateBlock(ReadOnlySpan<float> x, ref StatsAccumulator acc)
    {
        ref float p = ref MemoryMarshal.GetReference(x);
        int n = x.Length, i = 0;
        float sumSq = 0, sumAbs = 0, maxAbs = 0;
        long zeros = 0, nonFinite = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var sq = Vector512<float>.Zero; var ab = Vector512<float>.Zero; var mx = Vector512<float>.Zero;
            var zc = Vector512<int>.Zero; var nf = Vector512<int>.Zero;
            var inf = Vector512.Create(float.PositiveInfinity);
            for (; i + 16 <= n; i += 16)
            {
                var v = Vector512.LoadUnsafe(ref p, (nuint)i);
                var a = Vector512.Abs(v);
                var finite = Vector512.LessThan(a, inf); // false for NaN and +-Inf
                a = a & finite;
                sq = Vector512.FusedMultiplyAdd(a, a, sq);
                ab += a;
                mx = Vector512.Max(mx, a);
                zc -= Vector512.Equals(v, Vector512<float>.Zero).AsInt32();
                nf -= (~finite).AsInt32();
            }
            sumSq = Vector512.Sum(sq); sumAbs = Vector512.Sum(ab);
            for (int l = 0; l < 16; l++) maxAbs = Math.Max(maxAbs, mx[l]);
            zeros = Vector512.Sum(zc); nonFinite = Vector512.Sum(nf);
        }
        else if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var sq = Vector256<float>.Zero; var ab = Vector256<float>.Zero; var mx = Vector256<float>.Zero;
            var zc = Vector256<int>.Zero; var nf = Vector256<int>.Zero;
            var inf = Vector256.Create(float.PositiveInfinity);
            for (; i + 8 <= n; i += 8)
            {
                var v = Vector256.LoadUnsafe(ref p, (nuint)i);
                var a = Vector256.Abs(v);
                var finite = Vector256.LessThan(a, inf);
                a = a & finite;
                sq += a * a;
                ab += a;
                mx = Vector256.Max(mx, a);
                zc -= Vector256.Equals(v, Vector256<float>.Zero).AsInt32();
                nf -= (~finite).AsInt32();
            }
            sumSq = Vector256.Sum(sq); sumAbs = Vector256.Sum(ab);
            for (int l = 0; l < 8; l++) maxAbs = Math.Max(maxAbs, mx[l]);
            zeros = Vector256.Sum(zc); nonFinite = Vector256.Sum(nf);
        }
        // NaNs are rare: the vector loop counts non-finite values, and only when there are some does a
        // second look tell NaN from Inf.
        long nans = 0;
        if (nonFinite != 0)
            for (int k = 0; k < i; k++) if (float.IsNaN(Unsafe.Add(ref p, k))) nans++;
        for (; i < n; i++)
        {
            float v = Unsafe.Add(ref p, i);
            if (!float.IsFinite(v)) { nonFinite++; if (float.IsNaN(v)) nans++; continue; }
            float a = MathF.Abs(v);
            if (v == 0) zeros++;
            sumSq += a * a; sumAbs += a;
            if (a > maxAbs) maxAbs = a;
        }
        acc.SumSquares += sumSq; acc.SumAbs += sumAbs; acc.MaxAbs = Math.Max(acc.MaxAbs, maxAbs);
        acc.Zeros += zeros; acc.NaNs += nans; acc.Infs += nonFinite - nans;
    }

    /// <summary>True if any value is NaN or infinite: one compare and an OR per vector, no counting.</summary>
    public static bool HasNonFinite(ReadOnlySpan<float> x)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated && x.Length >= 16)
        {
            var inf = Vector512.Create(float.PositiveInfinity);
            var bad = Vector512<float>.Zero;
            for (; i + 16 <= x.Length; i += 16)
                bad |= ~Vector512.LessThan(Vector512.Abs(Vector512.Create(x.Slice(i, 16))), inf); // NaN compares false
            if (bad != Vector512<float>.Zero) return true;
        }
        for (; i < x.Length; i++) if (!float.IsFinite(x[i])) return true;
        return false;
    }

    /// <summary>
    /// The raw sign+exponent histogram of a float span alone, from whole 256-value blocks spread evenly over it
    /// when it holds more than <paramref name="maxSample"/> values (0: every value). Returns how many values
    /// were counted and, in <paramref name="zeros"/>, how many of them were exact zeros.
    /// </summary>
    public static long Histogram(ReadOnlySpan<float> x, Span<long> rawHistogram, int maxSample, out long zeros)
    {
        const int Run = 256;
        var table = Table();
        int runs = (x.Length + Run - 1) / Run;
        int take = maxSample <= 0 ? runs : Math.Min(runs, Math.Max(1, maxSample / Run));
        long counted = 0;
        zeros = 0;
        for (int k = 0; k < take; k++)
        {
            int r = (int)((long)k * runs / take);   // evenly spaced runs, first and last included when all are taken
            var block = x.Slice(r * Run, Math.Min(Run, x.Length - r * Run));
            HistogramFloat(block, table);
            counted += block.Length;
            zeros += CountZeros(block);
            if ((k & 4095) == 4095) Flush(table, rawHistogram);
        }
        Flush(table, rawHistogram);
        return counted;
    }

    private static int CountZeros(ReadOnlySpan<float> x)
    {
        int i = 0, n = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= x.Length; i += 16)
                n += BitOperations.PopCount(Vector512.Equals(Vector512.Create(x.Slice(i, 16)), Vector512<float>.Zero).ExtractMostSignificantBits());
        for (; i < x.Length; i++) if (x[i] == 0) n++;
        return n;
    }

    // The four interleaved count tables (4 x FloatRawBins ints) of this thread, all zero between calls: a histogram of a
    // 256-value bias then costs its values and one flush, not the clearing of 8 KB.
    [ThreadStatic] private static int[]? t_table;

    private static Span<int> Table() => t_table ??= new int[4 * FloatRawBins];

    /// <summary>Adds the four tables into <paramref name="raw"/> and zeroes them, 16 bins a step.</summary>
    private static void Flush(Span<int> table, Span<long> raw)
    {
        int b = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            ref int t = ref MemoryMarshal.GetReference(table);
            ref long r = ref MemoryMarshal.GetReference(raw);
            for (; b + 16 <= FloatRawBins; b += 16)
            {
                var sum = Vector512.LoadUnsafe(ref t, (nuint)b) + Vector512.LoadUnsafe(ref t, (nuint)(FloatRawBins + b))
                        + Vector512.LoadUnsafe(ref t, (nuint)(2 * FloatRawBins + b)) + Vector512.LoadUnsafe(ref t, (nuint)(3 * FloatRawBins + b));
                for (int k = 0; k < 4; k++) Vector512<int>.Zero.StoreUnsafe(ref t, (nuint)(k * FloatRawBins + b));
                var (lo, hi) = Vector512.Widen(sum);
                (Vector512.LoadUnsafe(ref r, (nuint)b) + lo).StoreUnsafe(ref r, (nuint)b);
                (Vector512.LoadUnsafe(ref r, (nuint)(b + 8)) + hi).StoreUnsafe(ref r, (nuint)(b + 8));
            }
        }
        for (; b < FloatRawBins; b++)
        {
            raw[b] += table[b] + table[FloatRawBins + b] + table[2 * FloatRawBins + b] + table[3 * FloatRawBins + b];
            table[b] = table[FloatRawBins + b] = table[2 * FloatRawBins + b] = table[3 * FloatRawBins + b] = 0;
        }
    }

    // Counts into four interleaved tables (t, of 4 x FloatRawBins; the caller sums them): separate tables break
    // the store-to-load dependency when neighbours share a bin. A block of at most 4096 values cannot overflow an int.
    private static void HistogramFloat(ReadOnlySpan<float> x, Span<int> t)
    {
        // bits >> 23 is below 512 for any uint, so the table needs no bounds check (t holds 4 x 512).
        ref uint b = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(x));
        ref int t0 = ref MemoryMarshal.GetReference(t);
        ref int t1 = ref Unsafe.Add(ref t0, FloatRawBins);
        ref int t2 = ref Unsafe.Add(ref t0, 2 * FloatRawBins);
        ref int t3 = ref Unsafe.Add(ref t0, 3 * FloatRawBins);
        nuint n = (nuint)x.Length, i = 0;
        for (; i + 4 <= n; i += 4)
        {
            Unsafe.Add(ref t0, Unsafe.Add(ref b, i) >> 23)++;
            Unsafe.Add(ref t1, Unsafe.Add(ref b, i + 1) >> 23)++;
            Unsafe.Add(ref t2, Unsafe.Add(ref b, i + 2) >> 23)++;
            Unsafe.Add(ref t3, Unsafe.Add(ref b, i + 3) >> 23)++;
        }
        for (; i < n; i++) Unsafe.Add(ref t0, Unsafe.Add(ref b, i) >> 23)++;
    }
}

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
            sum += s; sumSq += q;
        }
        return (sum, sumSq);
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
        if (y.Length != n || dx.Length != n) throw new ArgumentException($"{nameof(GradAndSquares)}: lengths {n}, {y.Length}, {dx.Length} differ.");
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
        if (y.Length != x.Length) throw new ArgumentException($"{nameof(UnaryWithMoments)}: lengths {x.Length} and {y.Length} differ.");
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
            throw new ArgumentException($"{nameof(UnaryWithUnitMax)}: lengths {x.Length} and {y.Length} do not hold ({outer}, {units}, {inner}) with {unitMax.Length} maxima.");
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
        return (sum, sumSq);
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
