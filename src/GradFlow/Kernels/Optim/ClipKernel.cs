using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace GradFlow.Kernels.Optim;

/// <summary>
/// Norms and in-place scaling for gradient clipping. Sums are taken in vector lanes of T over blocks of
/// 4096 elements and then added in double, so a float32 norm over millions of elements keeps about
/// double's accuracy at the cost of one horizontal add per block.
/// </summary>
internal static class ClipKernel
{
    private const int Block = 4096;

    public static double SumOfSquares<T>(ReadOnlySpan<T> x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        double total = 0;
        for (int start = 0; start < x.Length; start += Block)
        {
            var s = x.Slice(start, Math.Min(Block, x.Length - start));
            ref T r = ref MemoryMarshal.GetReference(s);
            nuint n = (nuint)s.Length, i = 0;
            T acc = T.Zero;
            if (Vector512.IsHardwareAccelerated && n >= (nuint)Vector512<T>.Count)
            {
                var v = Vector512<T>.Zero;
                for (; i + (nuint)Vector512<T>.Count <= n; i += (nuint)Vector512<T>.Count)
                {
                    var a = Vector512.LoadUnsafe(ref r, i);
                    v += a * a;
                }
                acc += Vector512.Sum(v);
            }
            if (Vector256.IsHardwareAccelerated && n - i >= (nuint)Vector256<T>.Count)
            {
                var v = Vector256<T>.Zero;
                for (; i + (nuint)Vector256<T>.Count <= n; i += (nuint)Vector256<T>.Count)
                {
                    var a = Vector256.LoadUnsafe(ref r, i);
                    v += a * a;
                }
                acc += Vector256.Sum(v);
            }
            for (; i < n; i++)
            {
                T a = System.Runtime.CompilerServices.Unsafe.Add(ref r, i);
                acc += a * a;
            }
            total += double.CreateTruncating(acc);
        }
        return total;
    }

    /// <summary>Σ|x|^p for a general p (the rare norms; a scalar loop).</summary>
    public static double SumAbsPow<T>(ReadOnlySpan<T> x, double p) where T : unmanaged, IFloatingPointIeee754<T>
    {
        double total = 0;
        if (p == 1) foreach (var v in x) total += Math.Abs(double.CreateTruncating(v));
        else foreach (var v in x) total += Math.Pow(Math.Abs(double.CreateTruncating(v)), p);
        return total;
    }

    /// <summary>max |x| (NaN if any element is NaN), 0 for an empty span.</summary>
    public static double MaxAbs<T>(ReadOnlySpan<T> x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        double m = 0;
        foreach (var v in x)
        {
            double a = Math.Abs(double.CreateTruncating(v));
            if (a > m || double.IsNaN(a)) m = a;
            if (double.IsNaN(m)) return m;
        }
        return m;
    }

    public static void Scale<T>(Span<T> x, T factor) where T : unmanaged, IFloatingPointIeee754<T> =>
        Elementwise.BinaryScalarRight<MulOp, T>(x, factor, x);

    /// <summary>x = min(max(x, lo), hi), NaN kept.</summary>
    public static void Clamp<T>(Span<T> x, T lo, T hi) where T : unmanaged, IFloatingPointIeee754<T>
    {
        ref T r = ref MemoryMarshal.GetReference(x);
        nuint n = (nuint)x.Length, i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var l = Vector512.Create(lo);
            var h = Vector512.Create(hi);
            for (; i + (nuint)Vector512<T>.Count <= n; i += (nuint)Vector512<T>.Count)
                Vector512.Min(Vector512.Max(Vector512.LoadUnsafe(ref r, i), l), h).StoreUnsafe(ref r, i);
        }
        for (; i < n; i++)
        {
            ref T v = ref System.Runtime.CompilerServices.Unsafe.Add(ref r, i);
            if (v < lo) v = lo;
            else if (v > hi) v = hi;
        }
    }
}
