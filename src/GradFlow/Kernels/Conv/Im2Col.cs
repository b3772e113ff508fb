using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GradFlow.Kernels;

/// <summary>
/// Unfold (im2col) and fold (col2im) of one image's channel group. The unfolded matrix has a row per
/// (channel, kernel row, kernel column) and a column per output pixel, so a convolution becomes
/// weight [OutC/G, ColRows] x col [ColRows, OH*OW]. Each row is built from output rows whose in-bounds
/// pixels form one contiguous range, so padding costs a clear rather than a test per pixel.
/// </summary>
internal static unsafe class Im2Col
{
    /// <summary>col[row, oy*OW + ox] = image[ch, iy, ix] (0 where (iy, ix) falls in the padding).</summary>
    public static void Unfold<T>(in Conv2dGeometry g, T* image, T* col) where T : unmanaged, INumber<T>
    {
        if (g.PadH == 0 && g.PadW == 0 && g.StrideW == 1 && Vector256.IsHardwareAccelerated && g.OW >= Vector256<T>.Count)
        {
            UnfoldDense(g, image, col);
            return;
        }

        for (int ch = 0; ch < g.InPerGroup; ch++)
        {
            for (int ki = 0; ki < g.KH; ki++)
            {
                for (int kj = 0; kj < g.KW; kj++, col += g.ColCols)
                {
                    UnfoldRow(g, image + (ch * g.H * g.W), ki, kj, col);
                }
            }
        }
    }

    // Without padding every window is inside the image: each unfolded row is OH copies of OW contiguous values,
    // 256-bit steps with the last one overlapping; no clipping, no clears, sizes in locals (conv2 of the cnn bench:
    // 288 rows x 11 copies of 11 values per image, where the general path's per-row bookkeeping cost more than the copy).
    private static void UnfoldDense<T>(in Conv2dGeometry g, T* image, T* col) where T : unmanaged, INumber<T>
    {
        int oh = g.OH, ow = g.OW, w = g.W, rowStep = g.StrideH * g.W, last = ow - Vector256<T>.Count;
        for (int ch = 0; ch < g.InPerGroup; ch++)
        {
            for (int ki = 0; ki < g.KH; ki++)
            {
                for (int kj = 0; kj < g.KW; kj++)
                {
                    T* src = image + (ch * g.H * w) + (ki * g.DilH * w) + (kj * g.DilW);
                    for (int oy = 0; oy < oh; oy++, src += rowStep, col += ow)
                    {
                        for (int i = 0; i < last; i += Vector256<T>.Count)
                        {
                            Vector256.Load(src + i).Store(col + i);
                        }

                        Vector256.Load(src + last).Store(col + last);
                    }
                }
            }
        }
    }

    /// <summary>Floats <see cref="FoldNarrow"/> may read before and after the unfolded matrix.</summary>
    public const int NarrowSlack = 16;

    /// <summary>
    /// Rule for <see cref="FoldNarrow"/>: float with AVX-512 (one 16-float vector a row) or 256-bit vectors (two), no
    /// padding, stride 1, image rows of at most 16 (conv2 of the cnn bench: 13), where every window of a row fits them.
    /// </summary>
    public static bool FoldsNarrowRows(in Conv2dGeometry g) =>
        (Avx512F.IsSupported || Vector256.IsHardwareAccelerated) && g.PadH == 0 && g.PadW == 0 && g.StrideH == 1 && g.StrideW == 1 && g.W <= 16;

    /// <summary>
    /// image[ch] = fold(col), each image row written once: the row gathers, in one register, every (ki, kj) row of
    /// col that lands on it (a 16-float load shifted by kj DilW, lanes outside [kj DilW, kj DilW + OW) masked off).
    /// No clear and no read-modify-write per contribution, unlike <see cref="FoldAdd"/>. A row's store spills up to
    /// 16 - W zeros into the next row, which is written after it; stores that would pass <paramref name="end"/> go
    /// through a scratch row. col needs <see cref="NarrowSlack"/> readable floats before and after it.
    /// </summary>
    public static void FoldNarrow(in Conv2dGeometry g, float* col, float* image, float* end)
    {
        if (!Avx512F.IsSupported)
        {
            FoldNarrow256(g, col, image, end);
            return;
        }

        int w = g.W, ow = g.OW, oh = g.OH, kh = g.KH, kw = g.KW, dilH = g.DilH, dilW = g.DilW, cols = g.ColCols;
        Vector512<float>* masks = stackalloc Vector512<float>[kw];
        float* scratch = stackalloc float[16];
        for (int kj = 0; kj < kw; kj++)
        {
            var lane = Vector512<int>.Indices;
            masks[kj] = (Vector512.GreaterThanOrEqual(lane, Vector512.Create(kj * dilW))
                & Vector512.LessThan(lane, Vector512.Create((kj * dilW) + ow))).AsSingle();
        }

        for (int ch = 0; ch < g.InPerGroup; ch++)
        {
            float* plane = image + (ch * g.H * w);
            for (int iy = 0; iy < g.H; iy++)
            {
                var acc = Vector512<float>.Zero;
                for (int ki = 0; ki < kh; ki++)
                {
                    int oy = iy - (ki * dilH);
                    if ((uint)oy >= (uint)oh)
                    {
                        continue;
                    }

                    float* row = col + (((ch * kh) + ki) * kw * cols) + (oy * ow);
                    for (int kj = 0; kj < kw; kj++, row += cols)
                    {
                        acc += Vector512.Load(row - (kj * dilW)) & masks[kj];
                    }
                }

                float* dst = plane + (iy * w);
                if (dst + 16 <= end)
                {
                    acc.Store(dst);
                }
                else
                {
                    acc.Store(scratch);
                    new ReadOnlySpan<float>(scratch, w).CopyTo(new Span<float>(dst, w));
                }
            }
        }
    }

    // FoldNarrow at 256 bits: a row's 16 floats in two registers (lanes 0-7 and 8-15), the same contributions added in the
    // same order, so the same bits as the 512-bit path and as FoldAdd's clear-then-add.
    private static void FoldNarrow256(in Conv2dGeometry g, float* col, float* image, float* end)
    {
        int w = g.W, ow = g.OW, oh = g.OH, kh = g.KH, kw = g.KW, dilH = g.DilH, dilW = g.DilW, cols = g.ColCols;
        Vector256<float>* masks = stackalloc Vector256<float>[2 * kw];
        float* scratch = stackalloc float[16];
        for (int kj = 0; kj < kw; kj++)
        {
            var lo = Vector256.Create(kj * dilW);
            var hi = Vector256.Create((kj * dilW) + ow);
            var lane = Vector256<int>.Indices;
            var upper = lane + Vector256.Create(8);
            masks[2 * kj] = (Vector256.GreaterThanOrEqual(lane, lo) & Vector256.LessThan(lane, hi)).AsSingle();
            masks[(2 * kj) + 1] = (Vector256.GreaterThanOrEqual(upper, lo) & Vector256.LessThan(upper, hi)).AsSingle();
        }

        for (int ch = 0; ch < g.InPerGroup; ch++)
        {
            float* plane = image + (ch * g.H * w);
            for (int iy = 0; iy < g.H; iy++)
            {
                Vector256<float> acc0 = Vector256<float>.Zero, acc1 = Vector256<float>.Zero;
                for (int ki = 0; ki < kh; ki++)
                {
                    int oy = iy - (ki * dilH);
                    if ((uint)oy >= (uint)oh)
                    {
                        continue;
                    }

                    float* row = col + (((ch * kh) + ki) * kw * cols) + (oy * ow);
                    for (int kj = 0; kj < kw; kj++, row += cols)
                    {
                        float* at = row - (kj * dilW);
                        acc0 += Vector256.Load(at) & masks[2 * kj];
                        acc1 += Vector256.Load(at + 8) & masks[(2 * kj) + 1];
                    }
                }

                float* dst = plane + (iy * w);
                if (dst + 16 <= end)
                {
                    acc0.Store(dst);
                    acc1.Store(dst + 8);
                }
                else
                {
                    acc0.Store(scratch);
                    acc1.Store(scratch + 8);
                    new ReadOnlySpan<float>(scratch, w).CopyTo(new Span<float>(dst, w));
                }
            }
        }
    }

    /// <summary>image[ch, iy, ix] += col[row, oy*OW + ox]: the adjoint of <see cref="Unfold"/>.</summary>
    public static void FoldAdd<T>(in Conv2dGeometry g, T* col, T* image) where T : unmanaged, INumber<T>
    {
        for (int ch = 0; ch < g.InPerGroup; ch++)
        {
            for (int ki = 0; ki < g.KH; ki++)
            {
                for (int kj = 0; kj < g.KW; kj++, col += g.ColCols)
                {
                    FoldRow(g, col, image + (ch * g.H * g.W), ki, kj);
                }
            }
        }
    }

    private static void UnfoldRow<T>(in Conv2dGeometry g, T* plane, int ki, int kj, T* dst) where T : unmanaged, INumber<T>
    {
        var (lo, hi, ix0) = ValidColumns(g, kj);
        for (int oy = 0; oy < g.OH; oy++, dst += g.OW)
        {
            int iy = (oy * g.StrideH) - g.PadH + (ki * g.DilH);
            if ((uint)iy >= (uint)g.H || lo >= hi)
            {
                new Span<T>(dst, g.OW).Clear();
                continue;
            }

            if (lo > 0)
            {
                new Span<T>(dst, lo).Clear();
            }

            if (hi < g.OW)
            {
                new Span<T>(dst + hi, g.OW - hi).Clear();
            }

            T* src = plane + (iy * g.W) + ix0 + (lo * g.StrideW);
            if (g.StrideW == 1)
            {
                CopyRow(src, dst + lo, hi - lo);
            }
            else
            {
                for (int ox = lo; ox < hi; ox++, src += g.StrideW)
                {
                    dst[ox] = *src;
                }
            }
        }
    }

    private static void FoldRow<T>(in Conv2dGeometry g, T* src, T* plane, int ki, int kj) where T : unmanaged, INumber<T>
    {
        var (lo, hi, ix0) = ValidColumns(g, kj);
        for (int oy = 0; oy < g.OH; oy++, src += g.OW)
        {
            int iy = (oy * g.StrideH) - g.PadH + (ki * g.DilH);
            if ((uint)iy >= (uint)g.H)
            {
                continue;
            }

            T* dst = plane + (iy * g.W) + ix0 + (lo * g.StrideW);
            if (g.StrideW == 1)
            {
                AddRow(src + lo, dst, hi - lo);
                continue;
            }

            for (int ox = lo; ox < hi; ox++, dst += g.StrideW)
            {
                *dst += src[ox];
            }
        }
    }

    // Rows are short (an output row, 11 values in conv2 of the cnn bench), where a memmove call costs more than
    // the copy: 256-bit steps, the last one overlapping the one before.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyRow<T>(T* src, T* dst, int n) where T : unmanaged, INumber<T>
    {
        int step = Vector256<T>.Count;
        if (!Vector256.IsHardwareAccelerated || n < step)
        {
            for (int i = 0; i < n; i++)
            {
                dst[i] = src[i];
            }

            return;
        }

        for (int i = 0; ; i += step)
        {
            i = Math.Min(i, n - step);
            Vector256.Load(src + i).Store(dst + i);
            if (i == n - step)
            {
                return;
            }
        }
    }

    // dst[i] += src[i]: 256-bit steps, then 128-bit, then scalars (no overlap: this accumulates).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddRow<T>(T* src, T* dst, int n) where T : unmanaged, INumber<T>
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - Vector256<T>.Count; i += Vector256<T>.Count)
            {
                (Vector256.Load(dst + i) + Vector256.Load(src + i)).Store(dst + i);
            }
        }

        if (Vector128.IsHardwareAccelerated)
        {
            for (; i <= n - Vector128<T>.Count; i += Vector128<T>.Count)
            {
                (Vector128.Load(dst + i) + Vector128.Load(src + i)).Store(dst + i);
            }
        }

        for (; i < n; i++)
        {
            dst[i] += src[i];
        }
    }

    // Output columns [lo, hi) whose input column ix = ox*StrideW + ix0 lies inside [0, W).
    private static (int Lo, int Hi, int Ix0) ValidColumns(in Conv2dGeometry g, int kj)
    {
        int ix0 = (kj * g.DilW) - g.PadW;
        int lo = ix0 >= 0 ? 0 : (-ix0 + g.StrideW - 1) / g.StrideW;
        int hi = ix0 >= g.W ? 0 : Math.Min(g.OW, ((g.W - 1 - ix0) / g.StrideW) + 1);
        return (Math.Min(lo, g.OW), Math.Max(hi, Math.Min(lo, g.OW)), ix0);
    }
}
