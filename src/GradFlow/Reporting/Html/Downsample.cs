namespace GradFlow.Reporting.Html;

/// <summary>
/// Reduces a long series to at most a given number of buckets of consecutive steps, keeping each bucket's mean,
/// minimum and maximum so that a spike survives downsampling (a plain stride would skip it). Non-finite values
/// are left out of a bucket's figures and counted.
/// </summary>
internal sealed class Downsample
{
    /// <summary>The bucket edges: bucket b holds the source indices [Start[b], Start[b + 1]).</summary>
    public int[] Start { get; }

    /// <summary>The number of buckets.</summary>
    public int Count => Start.Length - 1;

    private Downsample(int[] start) => Start = start;

    /// <summary>Buckets for <paramref name="length"/> values, at most <paramref name="maxBuckets"/> of them (one per value when it fits).</summary>
    public static Downsample For(int length, int maxBuckets)
    {
        int buckets = Math.Max(1, Math.Min(length, maxBuckets));
        var start = new int[buckets + 1];
        for (int b = 0; b <= buckets; b++) start[b] = (int)((long)b * length / buckets);
        return new Downsample(start);
    }

    /// <summary>Per bucket: mean, min and max of the finite values (NaN where a bucket has none).</summary>
    public (double[] Mean, double[] Min, double[] Max) Reduce(IReadOnlyList<double> values)
    {
        var mean = new double[Count];
        var min = new double[Count];
        var max = new double[Count];
        for (int b = 0; b < Count; b++)
        {
            double sum = 0, lo = double.PositiveInfinity, hi = double.NegativeInfinity;
            int n = 0;
            for (int i = Start[b]; i < Start[b + 1]; i++)
            {
                double v = values[i];
                if (!double.IsFinite(v)) continue;
                sum += v;
                n++;
                lo = Math.Min(lo, v);
                hi = Math.Max(hi, v);
            }
            (mean[b], min[b], max[b]) = n == 0 ? (double.NaN, double.NaN, double.NaN) : (sum / n, lo, hi);
        }
        return (mean, min, max);
    }

    /// <summary>The representative x of each bucket: the step of its last value.</summary>
    public double[] Last(IReadOnlyList<double> x)
    {
        var r = new double[Count];
        for (int b = 0; b < Count; b++) r[b] = x[Start[b + 1] - 1];
        return r;
    }
}
