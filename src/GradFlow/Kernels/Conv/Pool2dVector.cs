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
/// Without AVX-512, <see cref="MaxForward2x2Avx2"/> and <see cref="MaxForward2x2Sse"/> do the same with 256-bit
/// (8 outputs) or 128-bit (4 outputs) in-lane shuffles and the scalar chain's order of steps.
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

    /// <summary>Whether <see cref="MaxForward2x2NoAvx512"/> takes rows of <paramref name="ow"/> outputs.</summary>
    public static bool NoAvx512IsSupported(int ow) => (Avx2.IsSupported && ow >= 8) || (Sse.IsSupported && ow >= 4);

    /// <summary>
    /// AVX2 or SSE 2x2 / stride-2 max pooling (rows of at least 8 or 4 outputs). Each step takes the window's four
    /// taps as four vectors (even and odd columns of the top and bottom rows, split by <c>shufps</c>) and runs the
    /// scalar chain x00, x01, x10, x11 ("take when greater or NaN") lane-wise, so it picks the scalar path's winners.
    /// The cnn bench's first pooling (64 x 32 planes of 26 x 26): 5.3 ms scalar, where a data-dependent branch per
    /// tap mispredicts about half the time, on a Zen core without AVX-512.
    /// </summary>
    public static void MaxForward2x2NoAvx512(in Pool2dGeometry g, ReadOnlySpan<float> input, Span<float> output, Span<int> indices)
    {
        if (Avx2.IsSupported && g.OW >= 8)
        {
            MaxForward2x2Avx2(g, input, output, indices);
        }
        else
        {
            MaxForward2x2Sse(g, input, output, indices);
        }
    }

    private static void MaxForward2x2Avx2(in Pool2dGeometry g, ReadOnlySpan<float> input, Span<float> output, Span<int> indices)
    {
        int w = g.W, plane = g.H * w, ow = g.OW;

        // shufps works within 128-bit lanes: from columns 0-15 the even taps come out as windows 0 1 4 5 | 2 3 6 7.
        // The offsets of x00 follow that order, and one 64-bit permute (0xD8) puts outputs and indices back in order.
        var lanes = Vector256.Create(0, 2, 8, 10, 4, 6, 12, 14);
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
                        float* top = x + r0 + (2 * ox);
                        Vector256<float> t0 = Avx.LoadVector256(top), t1 = Avx.LoadVector256(top + 8);
                        Vector256<float> b0 = Avx.LoadVector256(top + w), b1 = Avx.LoadVector256(top + w + 8);
                        Vector256<int> at = lanes + Vector256.Create(r0 + (2 * ox));
                        Vector256<float> max = Avx.Shuffle(t0, t1, 0b10_00_10_00);
                        Vector256<int> best = at;
                        Take(Avx.Shuffle(t0, t1, 0b11_01_11_01), at + Vector256<int>.One, ref max, ref best);
                        Take(Avx.Shuffle(b0, b1, 0b10_00_10_00), at + Vector256.Create(w), ref max, ref best);
                        Take(Avx.Shuffle(b0, b1, 0b11_01_11_01), at + Vector256.Create(w + 1), ref max, ref best);
                        Avx2.Permute4x64(max.AsDouble(), 0xD8).AsSingle().Store(y + ox);
                        Avx2.Permute4x64(best.AsInt64(), 0xD8).AsInt32().Store(idx + ox);
                        if (ox == ow - 8)
                        {
                            break;
                        }
                    }
                }
            }
        }
    }

    private static void MaxForward2x2Sse(in Pool2dGeometry g, ReadOnlySpan<float> input, Span<float> output, Span<int> indices)
    {
        int w = g.W, plane = g.H * w, ow = g.OW;
        var lanes = Vector128.Create(0, 2, 4, 6);
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
                        float* top = x + r0 + (2 * ox);
                        Vector128<float> t0 = Sse.LoadVector128(top), t1 = Sse.LoadVector128(top + 4);
                        Vector128<float> b0 = Sse.LoadVector128(top + w), b1 = Sse.LoadVector128(top + w + 4);
                        Vector128<int> at = lanes + Vector128.Create(r0 + (2 * ox));
                        Vector128<float> max = Sse.Shuffle(t0, t1, 0b10_00_10_00);
                        Vector128<int> best = at;
                        Take(Sse.Shuffle(t0, t1, 0b11_01_11_01), at + Vector128<int>.One, ref max, ref best);
                        Take(Sse.Shuffle(b0, b1, 0b10_00_10_00), at + Vector128.Create(w), ref max, ref best);
                        Take(Sse.Shuffle(b0, b1, 0b11_01_11_01), at + Vector128.Create(w + 1), ref max, ref best);
                        max.Store(y + ox);
                        best.Store(idx + ox);
                        if (ox == ow - 4)
                        {
                            break;
                        }
                    }
                }
            }
        }
    }

    // One link of the chain: lanes where v > max or v is NaN take v and its offset.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Take(Vector256<float> v, Vector256<int> at, ref Vector256<float> max, ref Vector256<int> best)
    {
        Vector256<float> take = Vector256.GreaterThan(v, max) | ~Vector256.Equals(v, v);
        max = Vector256.ConditionalSelect(take, v, max);
        best = Vector256.ConditionalSelect(take.AsInt32(), at, best);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Take(Vector128<float> v, Vector128<int> at, ref Vector128<float> max, ref Vector128<int> best)
    {
        Vector128<float> take = Vector128.GreaterThan(v, max) | ~Vector128.Equals(v, v);
        max = Vector128.ConditionalSelect(take, v, max);
        best = Vector128.ConditionalSelect(take.AsInt32(), at, best);
    }
}
