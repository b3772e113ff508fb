using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GradFlow.Kernels;

/// <summary>
/// 2x2 / stride-2 max pooling of float planes with AVX-512, 8 outputs per step (4 when a row has fewer than 8
/// outputs: 256-bit loads, permutes and compares). One row pair gives two
/// 16-float loads; two two-source permutes split them into [x00 | x10] and [x01 | x11] (the even and odd
/// columns of the top and bottom rows), so the window's chain of four becomes two vector steps. The chain
/// "take b when b &gt; a or b is NaN" picks the last NaN if any, else the first maximum in row-major order, and
/// that choice is associative, so ((x00, x01), (x10, x11)) picks what the scalar chain x00, x01, x10, x11 picks.
/// A row's last step starts at OW - 8 and recomputes a few outputs instead of a scalar tail.
/// </summary>
internal static unsafe class Pool2dVector
{
    /// <summary>Outputs per step of the narrow variant; rows need at least this many.</summary>
    public const int Width = 4;

    public static bool IsSupported => Avx512F.IsSupported && Avx512F.VL.IsSupported;

    public static void MaxForward2x2(in Pool2dGeometry g, ReadOnlySpan<float> input, Span<float> output, Span<int> indices)
    {
        if (g.OW < 8)
        {
            MaxForward2x2Narrow(g, input, output, indices);
            return;
        }

        int w = g.W, plane = g.H * w, ow = g.OW;
        var even = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        var odd = even + Vector512<int>.One;

        // Plane offsets of x00 (lanes 0-7) and x10 (lanes 8-15) for the step at column 0 of row pair 0.
        var lanes = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, w, w + 2, w + 4, w + 6, w + 8, w + 10, w + 12, w + 14);
        fixed (float* xBase = input, yBase = output)
        fixed (int* iBase = indices)
        {
            float* y = yBase;
            int* idx = iBase;
            for (int p = 0; p < g.Planes; p++)
            {
                float* x = xBase + ((long)p * plane);
                for (int oy = 0; oy < g.OH; oy++, y += ow, idx += ow)
                {
                    int r0 = 2 * oy * w;
                    for (int ox = 0; ; ox += 8)
                    {
                        ox = Math.Min(ox, ow - 8);
                        Step(x + r0 + (2 * ox), w, even, odd, lanes + Vector512.Create(r0 + (2 * ox)), y + ox, idx + ox);
                        if (ox == ow - 8)
                        {
                            break;
                        }
                    }
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step(float* top, int w, Vector512<int> even, Vector512<int> odd, Vector512<int> at, float* y, int* idx)
    {
        Vector512<float> upper = Vector512.Load(top), lower = Vector512.Load(top + w);
        Vector512<float> a = Avx512F.PermuteVar16x32x2(upper, even, lower); // x00 | x10
        Vector512<float> b = Avx512F.PermuteVar16x32x2(upper, odd, lower);  // x01 | x11
        Vector512<float> take = Vector512.GreaterThan(b, a) | ~Vector512.Equals(b, b);
        Vector512<float> pair = Vector512.ConditionalSelect(take, b, a);
        Vector512<int> pairAt = Vector512.ConditionalSelect(take.AsInt32(), at + Vector512<int>.One, at);

        Vector256<float> first = pair.GetLower(), second = pair.GetUpper();
        Vector256<float> take2 = Vector256.GreaterThan(second, first) | ~Vector256.Equals(second, second);
        Vector256.ConditionalSelect(take2, second, first).Store(y);
        Vector256.ConditionalSelect(take2.AsInt32(), pairAt.GetUpper(), pairAt.GetLower()).Store(idx);
    }

    private static void MaxForward2x2Narrow(in Pool2dGeometry g, ReadOnlySpan<float> input, Span<float> output, Span<int> indices)
    {
        int w = g.W, plane = g.H * w, ow = g.OW;
        var even = Vector256.Create(0, 2, 4, 6, 8, 10, 12, 14);
        var odd = even + Vector256<int>.One;
        var lanes = Vector256.Create(0, 2, 4, 6, w, w + 2, w + 4, w + 6);
        fixed (float* xBase = input, yBase = output)
        fixed (int* iBase = indices)
        {
            float* y = yBase;
            int* idx = iBase;
            for (int p = 0; p < g.Planes; p++)
            {
                float* x = xBase + ((long)p * plane);
                for (int oy = 0; oy < g.OH; oy++, y += ow, idx += ow)
                {
                    int r0 = 2 * oy * w;
                    for (int ox = 0; ; ox += 4)
                    {
                        ox = Math.Min(ox, ow - 4);
                        Step(x + r0 + (2 * ox), w, even, odd, lanes + Vector256.Create(r0 + (2 * ox)), y + ox, idx + ox);
                        if (ox == ow - 4)
                        {
                            break;
                        }
                    }
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step(float* top, int w, Vector256<int> even, Vector256<int> odd, Vector256<int> at, float* y, int* idx)
    {
        Vector256<float> upper = Vector256.Load(top), lower = Vector256.Load(top + w);
        Vector256<float> a = Avx512F.VL.PermuteVar8x32x2(upper, even, lower); // x00 | x10
        Vector256<float> b = Avx512F.VL.PermuteVar8x32x2(upper, odd, lower);  // x01 | x11
        Vector256<float> take = Vector256.GreaterThan(b, a) | ~Vector256.Equals(b, b);
        Vector256<float> pair = Vector256.ConditionalSelect(take, b, a);
        Vector256<int> pairAt = Vector256.ConditionalSelect(take.AsInt32(), at + Vector256<int>.One, at);

        Vector128<float> first = pair.GetLower(), second = pair.GetUpper();
        Vector128<float> take2 = Vector128.GreaterThan(second, first) | ~Vector128.Equals(second, second);
        Vector128.ConditionalSelect(take2, second, first).Store(y);
        Vector128.ConditionalSelect(take2.AsInt32(), pairAt.GetUpper(), pairAt.GetLower()).Store(idx);
    }
}
