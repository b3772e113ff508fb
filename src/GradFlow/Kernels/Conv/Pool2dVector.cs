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
/// (8 outputs) or 128-bit (4 outputs) in-lane shuffles and the scalar chain's order of steps. The backward
/// (<see cref="MaxBackward2x2"/>) writes 8 or 4 windows' inputs a step with AVX2 or SSE2.
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

    /// <summary>
    /// Whether <see cref="MaxBackward2x2"/> takes a 2x2 / stride-2 layer: rows of at least 8 outputs with AVX2 (8 windows
    /// a step), or of at least 4 with SSE2 (4 windows a step).
    /// </summary>
    public static bool BackwardApplies(in Pool2dGeometry g) => (Avx2.IsSupported && g.OW >= 8) || (Sse2.IsSupported && g.OW >= 4);

    /// <summary>
    /// The 2x2 / stride-2 backward, 8 (or 4) windows a step: each window writes its four inputs once, the output gradient
    /// where its index points and zeros elsewhere (an AND with the compare masks, so a NaN or -0 gradient moves as its
    /// bits, as the scalar path's select does); the two columns of a row are interleaved by unpacks (and, at 256 bits, a
    /// 128-bit permute). A row's last step starts at OW - 8 (or 4) and rewrites a few windows with the same values. The
    /// inputs no window covers (an odd last row or column) are cleared. False at the first step with an index outside
    /// its window (indices not made by the forward): the caller then clears the input gradient and scatters, as after
    /// the scalar path.
    /// </summary>
    public static bool MaxBackward2x2(in Pool2dGeometry g, ReadOnlySpan<float> gradOutput, ReadOnlySpan<int> indices, Span<float> gradInput)
    {
        bool wide = Avx2.IsSupported && g.OW >= 8;
        int w = g.W, plane = g.H * w, ow = g.OW;
        fixed (float* dyBase = gradOutput, dxBase = gradInput)
        fixed (int* iBase = indices)
        {
            float* dy = dyBase;
            int* idx = iBase;
            for (int p = 0; p < g.Planes; p++)
            {
                float* dx = dxBase + ((long)p * plane);
                for (int oy = 0; oy < g.OH; oy++, dy += ow, idx += ow)
                {
                    int r0 = 2 * oy * w;
                    if (!(wide ? BackwardRow256(dy, idx, dx + r0, r0, w, ow) : BackwardRow128(dy, idx, dx + r0, r0, w, ow)))
                    {
                        return false;
                    }

                    if ((w & 1) != 0)
                    {
                        dx[r0 + w - 1] = 0;
                        dx[r0 + (2 * w) - 1] = 0;
                    }
                }

                if ((g.H & 1) != 0)
                {
                    new Span<float>(dx + ((g.H - 1) * w), w).Clear();
                }
            }
        }

        return true;
    }

    // One row pair (top at dx, its plane offset r0) of a 256-bit backward: 8 windows a step.
    private static bool BackwardRow256(float* dy, int* idx, float* dx, int r0, int w, int ow)
    {
        var offsets = Vector256.Create(0, 2, 4, 6, 8, 10, 12, 14);
        Vector256<int> below = Vector256.Create(w), belowRight = Vector256.Create(w + 1);
        for (int ox = 0; ; ox += 8)
        {
            ox = Math.Min(ox, ow - 8);
            Vector256<float> v = Avx.LoadVector256(dy + ox);
            Vector256<int> d = Avx.LoadVector256(idx + ox) - (offsets + Vector256.Create(r0 + (2 * ox)));
            Vector256<int> m00 = Vector256.Equals(d, Vector256<int>.Zero), m01 = Vector256.Equals(d, Vector256<int>.One);
            Vector256<int> m10 = Vector256.Equals(d, below), m11 = Vector256.Equals(d, belowRight);
            if (!Vector256.EqualsAll(m00 | m01 | m10 | m11, Vector256<int>.AllBitsSet))
            {
                return false;
            }

            Interleave(v & m00.AsSingle(), v & m01.AsSingle(), dx + (2 * ox));
            Interleave(v & m10.AsSingle(), v & m11.AsSingle(), dx + w + (2 * ox));
            if (ox == ow - 8)
            {
                return true;
            }
        }
    }

    // The same at 128 bits: 4 windows a step.
    private static bool BackwardRow128(float* dy, int* idx, float* dx, int r0, int w, int ow)
    {
        var offsets = Vector128.Create(0, 2, 4, 6);
        Vector128<int> below = Vector128.Create(w), belowRight = Vector128.Create(w + 1);
        for (int ox = 0; ; ox += 4)
        {
            ox = Math.Min(ox, ow - 4);
            Vector128<float> v = Sse.LoadVector128(dy + ox);
            Vector128<int> d = Sse2.LoadVector128(idx + ox) - (offsets + Vector128.Create(r0 + (2 * ox)));
            Vector128<int> m00 = Vector128.Equals(d, Vector128<int>.Zero), m01 = Vector128.Equals(d, Vector128<int>.One);
            Vector128<int> m10 = Vector128.Equals(d, below), m11 = Vector128.Equals(d, belowRight);
            if (!Vector128.EqualsAll(m00 | m01 | m10 | m11, Vector128<int>.AllBitsSet))
            {
                return false;
            }

            Interleave(v & m00.AsSingle(), v & m01.AsSingle(), dx + (2 * ox));
            Interleave(v & m10.AsSingle(), v & m11.AsSingle(), dx + w + (2 * ox));
            if (ox == ow - 4)
            {
                return true;
            }
        }
    }

    // [e0 o0 e1 o1 ... e7 o7] into 16 floats at row: unpack pairs within 128-bit lanes, then put the lanes in order.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Interleave(Vector256<float> even, Vector256<float> odd, float* row)
    {
        Vector256<float> lo = Avx.UnpackLow(even, odd), hi = Avx.UnpackHigh(even, odd); // e0 o0 e1 o1 | e4 o4 e5 o5, e2 o2 e3 o3 | e6 o6 e7 o7
        Avx.Store(row, Avx.Permute2x128(lo, hi, 0x20));
        Avx.Store(row + 8, Avx.Permute2x128(lo, hi, 0x31));
    }

    // [e0 o0 e1 o1 e2 o2 e3 o3] into 8 floats at row.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Interleave(Vector128<float> even, Vector128<float> odd, float* row)
    {
        Sse.Store(row, Sse.UnpackLow(even, odd));
        Sse.Store(row + 4, Sse.UnpackHigh(even, odd));
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
