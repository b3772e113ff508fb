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

    /// <summary>Counts of positive values by exponent; index i is exponent MinExponent + i.</summary>
    public long[] Positive { get; } = new long[BucketCount];

    /// <summary>Counts of negative values by exponent; index i is exponent MinExponent + i.</summary>
    public long[] Negative { get; } = new long[BucketCount];

    /// <summary>Exact zeros (either sign).</summary>
    public long Zero { get; set; }

    /// <summary>NaN and infinite values.</summary>
    public long NonFinite { get; set; }

    /// <summary>Every value counted.</summary>
    public long Total => Positive.Sum() + Negative.Sum() + Zero + NonFinite;

    /// <summary>Adds another histogram's counts into this one.</summary>
    public void Add(Log2Histogram other)
    {
        ArgumentNullException.ThrowIfNull(other);
        for (int i = 0; i < BucketCount; i++)
        {
            Positive[i] += other.Positive[i];
            Negative[i] += other.Negative[i];
        }
        Zero += other.Zero;
        NonFinite += other.NonFinite;
    }

    /// <summary>The bucket index of a magnitude's exponent (clamped).</summary>
    public static int BucketOf(int exponent) => Math.Clamp(exponent, MinExponent, MaxExponent) - MinExponent;

    /// <summary>Collapses the raw sign+exponent bins of float32 values; <paramref name="zeros"/> are the exact zeros among them.</summary>
    internal static Log2Histogram FromFloatBins(ReadOnlySpan<long> raw, long zeros)
    {
        var h = new Log2Histogram();
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
                if (biased == 0xFF) h.NonFinite += c;
                else (negative ? h.Negative : h.Positive)[BucketOf(biased == 0 ? int.MinValue / 2 : biased - 127)] += c;
            }
        }
        RemoveZeros(h, zeros);
        return h;
    }

    /// <summary>Multiplies every count by <paramref name="factor"/> (rounded): a sampled histogram scaled to its tensor's size.</summary>
    internal void Scale(double factor)
    {
        if (factor == 1) return;
        for (int i = 0; i < BucketCount; i++)
        {
            // Most buckets are empty: a rounding per bucket cost more than the rest of building the histogram.
            if (Positive[i] != 0) Positive[i] = (long)Math.Round(Positive[i] * factor);
            if (Negative[i] != 0) Negative[i] = (long)Math.Round(Negative[i] * factor);
        }
        Zero = (long)Math.Round(Zero * factor);
        NonFinite = (long)Math.Round(NonFinite * factor);
    }

    /// <summary>Collapses the raw sign+exponent bins of float64 values.</summary>
    internal static Log2Histogram FromDoubleBins(ReadOnlySpan<long> raw, long zeros)
    {
        var h = new Log2Histogram();
        for (int b = 0; b < Statistics.DoubleRawBins; b++)
        {
            long c = raw[b];
            if (c == 0) continue;
            int biased = b & 0x7FF;
            bool negative = b >= 2048;
            if (biased == 0x7FF) h.NonFinite += c;
            else (negative ? h.Negative : h.Positive)[BucketOf(biased == 0 ? int.MinValue / 2 : biased - 1023)] += c;
        }
        RemoveZeros(h, zeros);
        return h;
    }

    // Zeros share the exponent field 0 with denormals, which landed in the lowest buckets: move them out.
    private static void RemoveZeros(Log2Histogram h, long zeros)
    {
        long fromPositive = Math.Min(zeros, h.Positive[0]);
        h.Positive[0] -= fromPositive;
        h.Negative[0] -= zeros - fromPositive;
        h.Zero = zeros;
    }

    /// <summary>
    /// Non-empty buckets as signed value ranges, ascending: negative magnitudes from largest to smallest,
    /// zero, then positive (the edges TensorBoard's histogram plot wants).
    /// </summary>
    public IEnumerable<(double Lower, double Upper, long Count)> Buckets()
    {
        for (int i = BucketCount - 1; i >= 0; i--)
            if (Negative[i] != 0) yield return (-Math.Pow(2, MinExponent + i + 1), -Math.Pow(2, MinExponent + i), Negative[i]);
        if (Zero != 0) yield return (0, 0, Zero);
        for (int i = 0; i < BucketCount; i++)
            if (Positive[i] != 0) yield return (Math.Pow(2, MinExponent + i), Math.Pow(2, MinExponent + i + 1), Positive[i]);
    }
}
