using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace GradFlow.Kernels;

/// <summary>
/// float64 to float32 and back in one pass that also says whether every element is finite: a curvature product
/// crosses the float64 boundary twice per call, over every parameter, and a separate finiteness scan would read
/// the vector again. Finiteness is summed as x - x (0 for a finite x, NaN for NaN or an infinity), so the scan
/// costs one subtraction and one addition per vector. Rounding is the cast's (to nearest, ties to even) at every width.
/// </summary>
internal static class PrecisionConversion
{
    /// <summary>dst[i] = (float)src[i]; true when every src[i] is finite.</summary>
    public static bool Narrow(ReadOnlySpan<double> src, Span<float> dst)
    {
        if (src.Length != dst.Length) Guard.ThrowArg(nameof(PrecisionConversion), nameof(dst), $"has length {dst.Length} for {src.Length} values.");
        ref double s = ref MemoryMarshal.GetReference(src);
        ref float d = ref MemoryMarshal.GetReference(dst);
        nuint n = (nuint)src.Length, i = 0;
        double sum = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var acc = Vector256<double>.Zero;
            for (; i + 8 <= n; i += 8)
            {
                Vector256<double> lo = Vector256.LoadUnsafe(ref s, i), hi = Vector256.LoadUnsafe(ref s, i + 4);
                acc += (lo - lo) + (hi - hi);
                Vector256.Narrow(lo, hi).StoreUnsafe(ref d, i);
            }
            sum = Vector256.Sum(acc);
        }
        for (; i < n; i++)
        {
            double x = Unsafe.Add(ref s, i);
            sum += x - x;
            Unsafe.Add(ref d, i) = (float)x;
        }
        return sum == 0;
    }

    /// <summary>dst[i] = src[i] as a double; true when every src[i] is finite.</summary>
    public static bool Widen(ReadOnlySpan<float> src, Span<double> dst)
    {
        if (src.Length != dst.Length) Guard.ThrowArg(nameof(PrecisionConversion), nameof(dst), $"has length {dst.Length} for {src.Length} values.");
        ref float s = ref MemoryMarshal.GetReference(src);
        ref double d = ref MemoryMarshal.GetReference(dst);
        nuint n = (nuint)src.Length, i = 0;
        float sum = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var acc = Vector256<float>.Zero;
            for (; i + 8 <= n; i += 8)
            {
                var x = Vector256.LoadUnsafe(ref s, i);
                acc += x - x;
                var (lo, hi) = Vector256.Widen(x);
                lo.StoreUnsafe(ref d, i);
                hi.StoreUnsafe(ref d, i + 4);
            }
            sum = Vector256.Sum(acc);
        }
        for (; i < n; i++)
        {
            float x = Unsafe.Add(ref s, i);
            sum += x - x;
            Unsafe.Add(ref d, i) = x;
        }
        return sum == 0;
    }

    /// <summary>dst = src; true when every element is finite.</summary>
    public static bool Copy(ReadOnlySpan<double> src, Span<double> dst)
    {
        src.CopyTo(dst);
        return AllFinite(src);
    }

    /// <summary>True when every element is finite (no NaN, no infinity).</summary>
    public static bool AllFinite(ReadOnlySpan<double> x)
    {
        ref double s = ref MemoryMarshal.GetReference(x);
        nuint n = (nuint)x.Length, i = 0;
        double sum = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var acc = Vector256<double>.Zero;
            for (; i + 4 <= n; i += 4)
            {
                var v = Vector256.LoadUnsafe(ref s, i);
                acc += v - v;
            }
            sum = Vector256.Sum(acc);
        }
        for (; i < n; i++)
        {
            double v = Unsafe.Add(ref s, i);
            sum += v - v;
        }
        return sum == 0;
    }
}
