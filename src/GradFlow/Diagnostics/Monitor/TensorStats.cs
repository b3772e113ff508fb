using GradFlow.Kernels;

namespace GradFlow.Diagnostics;

/// <summary>
/// Statistics of one tensor from one fused pass: L2 norm, mean and max |x|, RMS, fraction of exact
/// zeros, NaN and Inf counts and an optional log2 histogram. Norms and means are over the finite values.
/// </summary>
public sealed record TensorStats(
    long Count, double L2Norm, double MeanAbs, double MaxAbs, double Rms, double ZeroFraction,
    long NaNCount, long InfCount, Log2Histogram? Histogram)
{
    /// <summary>True if any value is NaN or infinite.</summary>
    public bool HasNonFinite => NaNCount + InfCount > 0;

    /// <summary>Measures a floating-point tensor (any layout).</summary>
    public static TensorStats Of(Tensor tensor, bool histogram = true)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        var acc = new StatsAccumulator();
        var h = Accumulate(tensor, ref acc, histogram);
        return From(acc, h);
    }

    /// <summary>Adds a tensor into running sums; returns its histogram when asked.</summary>
    internal static Log2Histogram? Accumulate(Tensor tensor, ref StatsAccumulator acc, bool histogram)
    {
        Guard.Floating(tensor, nameof(TensorStats));
        var c = tensor.ContiguousRaw();
        long zerosBefore = acc.Zeros;
        if (c.DType == DType.Float32)
        {
            Span<long> raw = histogram ? stackalloc long[Statistics.FloatRawBins] : default;
            raw.Clear();
            Statistics.Accumulate(c.Span<float>(), ref acc, raw);
            return histogram ? Log2Histogram.FromFloatBins(raw, acc.Zeros - zerosBefore) : null;
        }
        long[]? rawD = histogram ? new long[Statistics.DoubleRawBins] : null;
        Statistics.Accumulate(c.Span<double>(), ref acc, rawD);
        return histogram ? Log2Histogram.FromDoubleBins(rawD, acc.Zeros - zerosBefore) : null;
    }

    internal static TensorStats From(in StatsAccumulator acc, Log2Histogram? histogram)
    {
        long finite = acc.Count - acc.NaNs - acc.Infs;
        double n = Math.Max(finite, 1);
        return new TensorStats(acc.Count, Math.Sqrt(acc.SumSquares), acc.SumAbs / n, acc.MaxAbs, Math.Sqrt(acc.SumSquares / n),
            acc.Count == 0 ? 0 : (double)acc.Zeros / acc.Count, acc.NaNs, acc.Infs, histogram);
    }
}
