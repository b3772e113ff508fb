using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace GradFlow.Kernels;

/// <summary>Softmax and log-softmax over the rows of a contiguous (rows, n) block, max-shifted for stability.</summary>
internal static class Softmax
{
    public static void Forward<T>(ReadOnlySpan<T> x, Span<T> y, int rows, int n, bool log)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * n, n);
            var yr = y.Slice(r * n, n);
            T max = Reduction.Fold<MaxOp, T>(xr, T.NegativeInfinity);
            if (T.IsInfinity(max)) max = T.Zero; // all -inf (or +inf) rows: let the arithmetic give NaN/0 as PyTorch does
            T sum = ExpShiftSum(xr, yr, max);
            if (log)
            {
                T shift = max + T.Log(sum);
                Elementwise.BinaryScalarRight<SubOp, T>(xr, shift, yr);
            }
            else
            {
                Elementwise.BinaryScalarRight<MulOp, T>(yr, T.One / sum, yr);
            }
        }
    }

    /// <summary>y = exp(x - shift); returns the sum of y.</summary>
    private static T ExpShiftSum<T>(ReadOnlySpan<T> x, Span<T> y, T shift) where T : unmanaged, IFloatingPointIeee754<T>
    {
        ref T xs = ref MemoryMarshal.GetReference(x);
        ref T ys = ref MemoryMarshal.GetReference(y);
        nuint n = (nuint)x.Length, i = 0;
        T sum = T.Zero;
        if (Vector512.IsHardwareAccelerated)
        {
            var s = Vector512.Create(shift);
            var acc = Vector512<T>.Zero;
            for (; i + (nuint)Vector512<T>.Count <= n; i += (nuint)Vector512<T>.Count)
            {
                var e = VecMath.Exp(Vector512.LoadUnsafe(ref xs, i) - s);
                e.StoreUnsafe(ref ys, i);
                acc += e;
            }
            sum = Vector512.Sum(acc);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var s = Vector256.Create(shift);
            var acc = Vector256<T>.Zero;
            for (; i + (nuint)Vector256<T>.Count <= n; i += (nuint)Vector256<T>.Count)
            {
                var e = VecMath.Exp(Vector256.LoadUnsafe(ref xs, i) - s);
                e.StoreUnsafe(ref ys, i);
                acc += e;
            }
            sum = Vector256.Sum(acc);
        }
        for (; i < n; i++)
        {
            T e = T.Exp(Unsafe.Add(ref xs, i) - shift);
            Unsafe.Add(ref ys, i) = e;
            sum += e;
        }
        return sum;
    }
}
