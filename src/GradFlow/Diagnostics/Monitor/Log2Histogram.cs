using GradFlow.Kernels;

namespace GradFlow.Diagnostics;

/// <summary>
/// A histogram of values by sign and binary order of magnitude: bucket e counts |x| in [2^e, 2^(e+1)).
/// The buckets are fixed (e from <see cref="MinExponent"/> to <see cref="MaxExponent"/>, smaller
/// magnitudes in the lowest, larger in the highest), so histograms from different steps and layers
/// compare and add directly. Exact zeros and non-finite values have buckets of their own.
/// </summary>
public sealed class Log2Histogram
{
    /// <summary>The lowest exponent bucket; it also holds every smaller non-zero magnitude (and denormals).</summary>
    public const int MinExponent = -40;

    /// <summary>The highest exponent bucket; it also holds every larger finite magnitude.</summary>
    public const int MaxExponent = 15;

    /// <summary>Buckets per sign.</summary>
    public const int BucketCount = MaxExponent - MinExponent + 1;

    // A monitored step keeps one histogram per parameter and per layer, and a gradient fills 10 to 20 of the 56 buckets:
    // until someone asks for the full arrays (Positive, Negative), the counts live in one array over the occupied buckets
    // [_lo, _lo + _width), the negative ones first. Reading through At, Total, Add or Buckets keeps that form.
    private long[]? _positive, _negative;
    private long[] _compact = [];
    private int _lo, _width;

    /// <summary>Counts of positive values by exponent; index i is exponent MinExponent + i.</summary>
    public long[] Positive
    {
        get
        {
            Expand();
            return _positive!;
        }
    }

    /// <summary>Counts of negative values by exponent; index i is exponent MinExponent + i.</summary>
    public long[] Negative
    {
        get
        {
            Expand();
            return _negative!;
        }
    }

    /// <summary>The count of bucket <paramref name="index"/> (exponent MinExponent + index) of one sign, without expanding the compact form.</summary>
    internal long At(bool negative, int index)
    {
        if (_positive is not null) return (negative ? _negative! : _positive)[index];
        int i = index - _lo;
        return i < 0 || i >= _width ? 0 : _compact[(negative ? 0 : _width) + i];
    }

    private void Expand()
    {
        if (_positive is not null) return;
        var positive = new long[BucketCount];
        var negative = new long[BucketCount];
        Array.Copy(_compact, 0, negative, _lo, _width);
        Array.Copy(_compact, _width, positive, _lo, _width);
        (_positive, _negative, _compact, _width) = (positive, negative, [], 0);
    }

    /// <summary>A histogram of full-width counts (negative then positive, <see cref="BucketCount"/> each), kept compact.</summary>
    internal static Log2Histogram FromCounts(ReadOnlySpan<long> negativeThenPositive, long zero, long nonFinite)
    {
        var h = new Log2Histogram { Zero = zero, NonFinite = nonFinite };
        var negative = negativeThenPositive[..BucketCount];
        var positive = negativeThenPositive.Slice(BucketCount, BucketCount);
        int lo = BucketCount, hi = -1;
        for (int i = 0; i < BucketCount; i++)
            if ((negative[i] | positive[i]) != 0) { lo = Math.Min(lo, i); hi = i; }
        if (hi < 0) return h;
        int width = hi - lo + 1;
        h._lo = lo;
        h._width = width;
        h._compact = new long[2 * width];
        negative.Slice(lo, width).CopyTo(h._compact);
        positive.Slice(lo, width).CopyTo(h._compact.AsSpan(width));
        return h;
    }

    /// <summary>Adds this histogram's buckets into full-width counts (negative then positive, <see cref="BucketCount"/> each).</summary>
    internal void AddTo(Span<long> negativeThenPositive)
    {
        for (int i = 0; i < BucketCount; i++)
        {
            negativeThenPositive[i] += At(true, i);
            negativeThenPositive[BucketCount + i] += At(false, i);
        }
    }

    /// <summary>Exact zeros (either sign).</summary>
    public long Zero { get; set; }

    /// <summary>NaN and infinite values.</summary>
    public long NonFinite { get; set; }

    /// <summary>Every value counted.</summary>
    public long Total
    {
        get
        {
            long total = Zero + NonFinite;
            for (int i = 0; i < BucketCount; i++) total += At(true, i) + At(false, i);
            return total;
        }
    }

    /// <summary>Adds another histogram's counts into this one.</summary>
    public void Add(Log2Histogram other)
    {
        ArgumentNullException.ThrowIfNull(other);
        for (int i = 0; i < BucketCount; i++)
        {
            Positive[i] += other.At(false, i);
            Negative[i] += other.At(true, i);
        }
        Zero += other.Zero;
        NonFinite += other.NonFinite;
    }

    /// <summary>The bucket index of a magnitude's exponent (clamped).</summary>
    public static int BucketOf(int exponent) => Math.Clamp(exponent, MinExponent, MaxExponent) - MinExponent;

    /// <summary>Collapses the raw sign+exponent bins of float32 values; <paramref name="zeros"/> are the exact zeros among them.</summary>
    [System.Runtime.CompilerServices.SkipLocalsInit] // counts is cleared below
    internal static Log2Histogram FromFloatBins(ReadOnlySpan<long> raw, long zeros)
    {
        Span<long> counts = stackalloc long[2 * BucketCount];
        counts.Clear();
        long nonFinite = 0;
        raw = raw[..Statistics.FloatRawBins];
        for (int start = 0; start < Statistics.FloatRawBins; start += 8)
        {
            // A tensor's values span a few dozen of the 512 bins: skip empty runs of eight at once (one OR; a vector
            // built from the span slice cost 20 ns a run).
            var run = raw.Slice(start, 8);
            if ((run[0] | run[1] | run[2] | run[3] | run[4] | run[5] | run[6] | run[7]) == 0) continue;
            for (int b = start; b < start + 8; b++)
            {
                long c = raw[b];
                if (c == 0) continue;
                int biased = b & 0xFF;
                bool negative = b >= 256;
                if (biased == 0xFF) nonFinite += c;
                else counts[(negative ? 0 : BucketCount) + BucketOf(biased == 0 ? int.MinValue / 2 : biased - 127)] += c;
            }
        }
        RemoveZeros(counts, zeros);
        return FromCounts(counts, zeros, nonFinite);
    }

    /// <summary>Multiplies every count by <paramref name="factor"/> (rounded): a sampled histogram scaled to its tensor's size.</summary>
    internal void Scale(double factor)
    {
        if (factor == 1) return;
        if (_positive is null) ScaleCounts(_compact, factor);
        else
        {
            ScaleCounts(_positive, factor);
            ScaleCounts(_negative!, factor);
        }
        Zero = (long)Math.Round(Zero * factor);
        NonFinite = (long)Math.Round(NonFinite * factor);
    }

    // Most buckets are empty: a rounding per bucket cost more than the rest of building the histogram.
    private static void ScaleCounts(long[] counts, double factor)
    {
        for (int i = 0; i < counts.Length; i++)
            if (counts[i] != 0) counts[i] = (long)Math.Round(counts[i] * factor);
    }

    /// <summary>Collapses the raw sign+exponent bins of float64 values.</summary>
    internal static Log2Histogram FromDoubleBins(ReadOnlySpan<long> raw, long zeros)
    {
        Span<long> counts = stackalloc long[2 * BucketCount];
        counts.Clear();
        long nonFinite = 0;
        for (int b = 0; b < Statistics.DoubleRawBins; b++)
        {
            long c = raw[b];
            if (c == 0) continue;
            int biased = b & 0x7FF;
            bool negative = b >= 2048;
            if (biased == 0x7FF) nonFinite += c;
            else counts[(negative ? 0 : BucketCount) + BucketOf(biased == 0 ? int.MinValue / 2 : biased - 1023)] += c;
        }
        RemoveZeros(counts, zeros);
        return FromCounts(counts, zeros, nonFinite);
    }

    // Zeros share the exponent field 0 with denormals, which landed in the lowest buckets (negative then positive): move them out.
    private static void RemoveZeros(Span<long> counts, long zeros)
    {
        long fromPositive = Math.Min(zeros, counts[BucketCount]);
        counts[BucketCount] -= fromPositive;
        counts[0] -= zeros - fromPositive;
    }

    /// <summary>
    /// Non-empty buckets as signed value ranges, ascending: negative magnitudes from largest to smallest,
    /// zero, then positive (the edges TensorBoard's histogram plot wants).
    /// </summary>
    public IEnumerable<(double Lower, double Upper, long Count)> Buckets()
    {
        for (int i = BucketCount - 1; i >= 0; i--)
            if (At(true, i) is var n and not 0) yield return (-Math.Pow(2, MinExponent + i + 1), -Math.Pow(2, MinExponent + i), n);
        if (Zero != 0) yield return (0, 0, Zero);
        for (int i = 0; i < BucketCount; i++)
            if (At(false, i) is var p and not 0) yield return (Math.Pow(2, MinExponent + i), Math.Pow(2, MinExponent + i + 1), p);
    }
}
