using GradFlow.Diagnostics;

namespace GradFlow.Reporting;

/// <summary>
/// The fields of TensorBoard's HistogramProto. TensorBoard reads bucket i as the range
/// (bucket_limit[i-1], bucket_limit[i]], with <see cref="Min"/> as the first left edge and <see cref="Max"/>
/// in place of the last limit, so limits are upper edges in ascending order.
/// </summary>
internal sealed record TensorBoardHistogram(double Min, double Max, double Num, double Sum, double SumSquares,
    double[] BucketLimits, double[] BucketCounts)
{
    /// <summary>
    /// Maps a log2 histogram's sign/exponent buckets to ascending signed ranges: negative magnitudes from
    /// largest to smallest, zero, then positive. A gap between non-empty buckets becomes one empty bucket
    /// (as TensorFlow's own encoder collapses runs of empty buckets), so no count is smeared across it.
    /// Min and max are the outer edges of the non-empty buckets, narrowed to ±<paramref name="maxAbs"/> when
    /// known; sum and sum of squares are estimated from bucket centres unless given. Non-finite values are
    /// not representable and are left out. Null when there is no finite value to plot.
    /// </summary>
    public static TensorBoardHistogram? FromLog2(Log2Histogram histogram, double? maxAbs = null, double? sumSquares = null,
        double? min = null, double? max = null, double? sum = null)
    {
        var limits = new List<double>();
        var counts = new List<double>();
        double previousUpper = double.NaN, estSum = 0, estSquares = 0, num = 0;
        (double Lower, double Upper) first = default, last = default;
        double bottom = Math.Pow(2, Log2Histogram.MinExponent);
        foreach (var (nominalLower, nominalUpper, count) in histogram.Buckets())
        {
            // The bottom exponent bucket also holds every smaller magnitude: its ranges reach to (but exclude) zero.
            double lower = nominalLower == bottom ? 0 : nominalLower;
            double upper = nominalUpper == -bottom ? -double.Epsilon : nominalUpper;
            // The zero bucket's range [0, 0] joins the bucket below it; any other gap gets an empty bucket.
            if (counts.Count > 0 && lower > previousUpper && !(lower == 0 && upper == 0))
            {
                limits.Add(lower);
                counts.Add(0);
            }
            if (counts.Count == 0) first = (lower, upper);
            last = (lower, upper);
            limits.Add(upper);
            counts.Add(count);
            previousUpper = upper;
            double centre = (lower + upper) / 2;
            num += count;
            estSum += count * centre;
            estSquares += count * centre * centre;
        }
        if (counts.Count == 0) return null;

        double lo = first.Lower, hi = last.Upper;
        if (maxAbs is { } m && double.IsFinite(m))
        {
            // The top exponent bucket also holds every larger magnitude, so its nominal edge may be too narrow.
            double top = Math.Pow(2, Log2Histogram.MaxExponent + 1);
            lo = lo == -top ? -m : Math.Max(lo, -m);
            hi = hi == top ? m : Math.Min(hi, m);
        }
        lo = min ?? lo;
        hi = max ?? hi;
        limits[^1] = hi;
        return new TensorBoardHistogram(lo, hi, num, sum ?? estSum, sumSquares ?? estSquares, [.. limits], [.. counts]);
    }

    /// <summary>Buckets raw values by sign and binary exponent (as the monitor does), with exact min, max, sum and sum of squares.</summary>
    public static TensorBoardHistogram? FromValues(ReadOnlySpan<double> values)
    {
        var h = new Log2Histogram();
        double min = double.PositiveInfinity, max = double.NegativeInfinity, sum = 0, squares = 0;
        foreach (double x in values)
        {
            if (!double.IsFinite(x)) { h.NonFinite++; continue; }
            min = Math.Min(min, x);
            max = Math.Max(max, x);
            sum += x;
            squares += x * x;
            if (x == 0) h.Zero++;
            else (x < 0 ? h.Negative : h.Positive)[Log2Histogram.BucketOf(Math.ILogB(Math.Abs(x)))]++;
        }
        return FromLog2(h, sumSquares: squares, min: min, max: max, sum: sum);
    }
}
