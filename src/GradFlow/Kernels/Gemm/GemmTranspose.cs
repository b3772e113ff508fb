using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GradFlow.Kernels;

/// <summary>
/// The transposing pack of float panels, with AVX-512 (<see cref="Pack16"/>) or AVX (<see cref="Pack8"/>): 16 source rows x 16 depth steps are loaded as 16
/// vectors and transposed in registers (unpack ps, unpack pd, two 128-bit lane shuffles: 64 shuffles for
/// 256 elements), then written one depth step per store. The scalar gather it replaces did one load and
/// one store per element, with every load 'ld' elements from the last. Without AVX-512 the same in 8 x 8 blocks
/// (unpack, shuffle, 128-bit lane permute: 24 shuffles for 64 elements).
/// </summary>
internal static unsafe class GemmTranspose
{
    /// <summary>Off to pack with the scalar gather where <see cref="Pack8"/> would apply (the bench's A/B in one process).</summary>
    internal static bool Pack8Enabled { get; set; } = true;

    /// <summary>
    /// dst[p * width + i] = src[i * ld + p] for i &lt; width, p &lt; kc; width is 4, 6 or a multiple of 8 (the AVX2 and
    /// 128-bit kernels' MR and NR), kc a multiple of 8.
    /// </summary>
    public static void Pack8(float* src, nint ld, int width, int kc, float* dst)
    {
        for (int p = 0; p < kc; p += 8)
        {
            for (int i = 0; i < width; i += 8)
            {
                Block8(src + (i * ld) + p, ld, Math.Min(8, width - i), dst + (p * width) + i, width);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Row8(float* src, nint ld, int i, int rows) =>
        i < rows ? Vector256.Load(src + (i * ld)) : Vector256<float>.Zero;

    // rows is 8, 6 or 4: rows past 'rows' are zeros and only 'rows' lanes of each column are stored.
    private static void Block8(float* src, nint ld, int rows, float* dst, nint stride)
    {
        var r0 = Row8(src, ld, 0, rows); var r1 = Row8(src, ld, 1, rows); var r2 = Row8(src, ld, 2, rows); var r3 = Row8(src, ld, 3, rows);
        var r4 = Row8(src, ld, 4, rows); var r5 = Row8(src, ld, 5, rows); var r6 = Row8(src, ld, 6, rows); var r7 = Row8(src, ld, 7, rows);

        // Interleave pairs of rows, then pairs of pairs: each 128-bit half holds one column of 4 rows (columns j, j + 4).
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1); var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5); var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        r0 = Avx.Shuffle(t0, t2, 0x44); r1 = Avx.Shuffle(t0, t2, 0xee); r2 = Avx.Shuffle(t1, t3, 0x44); r3 = Avx.Shuffle(t1, t3, 0xee);
        r4 = Avx.Shuffle(t4, t6, 0x44); r5 = Avx.Shuffle(t4, t6, 0xee); r6 = Avx.Shuffle(t5, t7, 0x44); r7 = Avx.Shuffle(t5, t7, 0xee);

        // Rows 0-3 and 4-7 of a column meet in one vector.
        Store8(Avx.Permute2x128(r0, r4, 0x20), dst, 0, stride, rows); Store8(Avx.Permute2x128(r1, r5, 0x20), dst, 1, stride, rows);
        Store8(Avx.Permute2x128(r2, r6, 0x20), dst, 2, stride, rows); Store8(Avx.Permute2x128(r3, r7, 0x20), dst, 3, stride, rows);
        Store8(Avx.Permute2x128(r0, r4, 0x31), dst, 4, stride, rows); Store8(Avx.Permute2x128(r1, r5, 0x31), dst, 5, stride, rows);
        Store8(Avx.Permute2x128(r2, r6, 0x31), dst, 6, stride, rows); Store8(Avx.Permute2x128(r3, r7, 0x31), dst, 7, stride, rows);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store8(Vector256<float> column, float* dst, int p, nint stride, int rows)
    {
        float* d = dst + (p * stride);
        if (rows == 8)
        {
            column.Store(d);
            return;
        }

        column.GetLower().Store(d);
        if (rows == 6)
        {
            Unsafe.WriteUnaligned(d + 4, column.GetUpper().AsUInt64().ToScalar());
        }
    }

    /// <summary>
    /// dst[p * width + i] = src[i * ld + p] for i &lt; width, p &lt; kc; width is 12 or a multiple of 16,
    /// kc a multiple of 16.
    /// </summary>
    public static void Pack16(float* src, nint ld, int width, int kc, float* dst)
    {
        for (int p = 0; p < kc; p += 16)
        {
            for (int i = 0; i < width; i += 16)
            {
                Block(src + (i * ld) + p, ld, Math.Min(16, width - i), dst + (p * width) + i, width);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Row(float* src, nint ld, int i, int rows) =>
        i < rows ? Vector512.Load(src + (i * ld)) : Vector512<float>.Zero;

    // rows is 16 or 12: rows past 'rows' are zeros and only 'rows' lanes of each column are stored.
    private static void Block(float* src, nint ld, int rows, float* dst, nint stride)
    {
        var r0 = Row(src, ld, 0, rows); var r1 = Row(src, ld, 1, rows); var r2 = Row(src, ld, 2, rows); var r3 = Row(src, ld, 3, rows);
        var r4 = Row(src, ld, 4, rows); var r5 = Row(src, ld, 5, rows); var r6 = Row(src, ld, 6, rows); var r7 = Row(src, ld, 7, rows);
        var r8 = Row(src, ld, 8, rows); var r9 = Row(src, ld, 9, rows); var ra = Row(src, ld, 10, rows); var rb = Row(src, ld, 11, rows);
        var rc = Row(src, ld, 12, rows); var rd = Row(src, ld, 13, rows); var re = Row(src, ld, 14, rows); var rf = Row(src, ld, 15, rows);

        // Stage 1: interleave pairs of rows (lanes 2j, 2j+1 of each 128-bit block).
        var t0 = Avx512F.UnpackLow(r0, r1); var t1 = Avx512F.UnpackHigh(r0, r1);
        var t2 = Avx512F.UnpackLow(r2, r3); var t3 = Avx512F.UnpackHigh(r2, r3);
        var t4 = Avx512F.UnpackLow(r4, r5); var t5 = Avx512F.UnpackHigh(r4, r5);
        var t6 = Avx512F.UnpackLow(r6, r7); var t7 = Avx512F.UnpackHigh(r6, r7);
        var t8 = Avx512F.UnpackLow(r8, r9); var t9 = Avx512F.UnpackHigh(r8, r9);
        var ta = Avx512F.UnpackLow(ra, rb); var tb = Avx512F.UnpackHigh(ra, rb);
        var tc = Avx512F.UnpackLow(rc, rd); var td = Avx512F.UnpackHigh(rc, rd);
        var te = Avx512F.UnpackLow(re, rf); var tf = Avx512F.UnpackHigh(re, rf);

        // Stage 2: interleave pairs of pairs (64-bit units): each 128-bit block now holds one column of 4 rows.
        r0 = Lo(t0, t2); r1 = Hi(t0, t2); r2 = Lo(t1, t3); r3 = Hi(t1, t3);
        r4 = Lo(t4, t6); r5 = Hi(t4, t6); r6 = Lo(t5, t7); r7 = Hi(t5, t7);
        r8 = Lo(t8, ta); r9 = Hi(t8, ta); ra = Lo(t9, tb); rb = Hi(t9, tb);
        rc = Lo(tc, te); rd = Hi(tc, te); re = Lo(td, tf); rf = Hi(td, tf);

        // Stages 3 and 4: gather the 128-bit blocks of rows 0-3, 4-7, 8-11, 12-15 of one column.
        t0 = Avx512F.Shuffle4x128(r0, r4, 0x88); t1 = Avx512F.Shuffle4x128(r1, r5, 0x88);
        t2 = Avx512F.Shuffle4x128(r2, r6, 0x88); t3 = Avx512F.Shuffle4x128(r3, r7, 0x88);
        t4 = Avx512F.Shuffle4x128(r0, r4, 0xdd); t5 = Avx512F.Shuffle4x128(r1, r5, 0xdd);
        t6 = Avx512F.Shuffle4x128(r2, r6, 0xdd); t7 = Avx512F.Shuffle4x128(r3, r7, 0xdd);
        t8 = Avx512F.Shuffle4x128(r8, rc, 0x88); t9 = Avx512F.Shuffle4x128(r9, rd, 0x88);
        ta = Avx512F.Shuffle4x128(ra, re, 0x88); tb = Avx512F.Shuffle4x128(rb, rf, 0x88);
        tc = Avx512F.Shuffle4x128(r8, rc, 0xdd); td = Avx512F.Shuffle4x128(r9, rd, 0xdd);
        te = Avx512F.Shuffle4x128(ra, re, 0xdd); tf = Avx512F.Shuffle4x128(rb, rf, 0xdd);

        Store(Avx512F.Shuffle4x128(t0, t8, 0x88), dst, 0, stride, rows); Store(Avx512F.Shuffle4x128(t1, t9, 0x88), dst, 1, stride, rows);
        Store(Avx512F.Shuffle4x128(t2, ta, 0x88), dst, 2, stride, rows); Store(Avx512F.Shuffle4x128(t3, tb, 0x88), dst, 3, stride, rows);
        Store(Avx512F.Shuffle4x128(t4, tc, 0x88), dst, 4, stride, rows); Store(Avx512F.Shuffle4x128(t5, td, 0x88), dst, 5, stride, rows);
        Store(Avx512F.Shuffle4x128(t6, te, 0x88), dst, 6, stride, rows); Store(Avx512F.Shuffle4x128(t7, tf, 0x88), dst, 7, stride, rows);
        Store(Avx512F.Shuffle4x128(t0, t8, 0xdd), dst, 8, stride, rows); Store(Avx512F.Shuffle4x128(t1, t9, 0xdd), dst, 9, stride, rows);
        Store(Avx512F.Shuffle4x128(t2, ta, 0xdd), dst, 10, stride, rows); Store(Avx512F.Shuffle4x128(t3, tb, 0xdd), dst, 11, stride, rows);
        Store(Avx512F.Shuffle4x128(t4, tc, 0xdd), dst, 12, stride, rows); Store(Avx512F.Shuffle4x128(t5, td, 0xdd), dst, 13, stride, rows);
        Store(Avx512F.Shuffle4x128(t6, te, 0xdd), dst, 14, stride, rows); Store(Avx512F.Shuffle4x128(t7, tf, 0xdd), dst, 15, stride, rows);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Lo(Vector512<float> a, Vector512<float> b) => Avx512F.UnpackLow(a.AsDouble(), b.AsDouble()).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Hi(Vector512<float> a, Vector512<float> b) => Avx512F.UnpackHigh(a.AsDouble(), b.AsDouble()).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(Vector512<float> column, float* dst, int p, nint stride, int rows)
    {
        float* d = dst + (p * stride);
        if (rows == 16)
        {
            column.Store(d);
            return;
        }

        column.GetLower().Store(d);
        column.GetUpper().GetLower().Store(d + 8);
    }
}
