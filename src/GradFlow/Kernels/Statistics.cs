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
        // Non-finite values are masked out of the lanes, so a non-finite sum is finite values overflowing float
        // (squares past ~1.8e19): summed again in double, which they cannot overflow.
        double squares = sumSq, absolutes = sumAbs;
        if (!float.IsFinite(sumSq) || !float.IsFinite(sumAbs))
        {
            (squares, absolutes) = (0, 0);
            foreach (float v in x)
                if (float.IsFinite(v)) { squares += (double)v * v; absolutes += Math.Abs(v); }
        }
        acc.SumSquares += squares; acc.SumAbs += absolutes; acc.MaxAbs = Math.Max(acc.MaxAbs, maxAbs);
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
