using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GradFlow.Kernels;

/// <summary>
/// Direct float convolution (no unfold, no GEMM) for layers whose kernel sees few inputs, vectorised along the
/// output row, one vector of outputs per step: 16 with AVX-512, else 8 with AVX2 and FMA (the loops are written once
/// over <see cref="IDirectLanes{TV}"/>; at 8 lanes only backward-weight is taken, see <see cref="AppliesForward"/>).
/// Rule (<see cref="Applies"/>): float, one of those, horizontal stride 1, at most
/// <see cref="MaxColRows"/> taps per output (input channels of a group x KH x KW, e.g. a first layer's 1x3x3 or
/// 1x4x4), and output rows of at least one vector. There im2col + GEMM does little arithmetic per stored value (conv1
/// of the cnn bench: K = 9 against an output tile of 32 x 676), while here each output vector is loaded and stored
/// once and every tap is one load and one FMA. Rows of a non-multiple of the width end with a step at OW - width:
/// forward recomputes the overlap, backward masks the gradient lanes already counted. Padding is a zero-bordered copy of
/// the batch, so the inner loops have no bounds tests. Backward-input keeps the im2col path (a first layer's input
/// rarely needs a gradient).
/// </summary>
internal static unsafe class Conv2dDirect
{
    /// <summary>
    /// Taps per output up to which the direct path is used. Measured (1 thread, batch 64 of 28x28, 32 filters): the
    /// forward costs the same per tap and output at 16 taps direct (1x4x4) as at 18 taps through GEMM (2x3x3), while
    /// the direct backward-weight was still twice as fast; with more taps the GEMM's register blocking wins.
    /// </summary>
    public const int MaxColRows = 16;

    private const int Block = 4;

    /// <summary>Outputs per vector step on this machine: 16 (AVX-512), 8 (AVX2 with FMA), or 0 (no direct path).</summary>
    public static int Width { get; } = Avx512F.IsSupported ? DirectLanes512.Count : Fma.IsSupported && Avx2.IsSupported ? DirectLanes256.Count : 0;

    /// <summary>Whether backward-weight takes the direct path for <paramref name="g"/>.</summary>
    public static bool Applies(in Conv2dGeometry g) =>
        Width > 0 && g.StrideW == 1 && g.ColRows <= MaxColRows && g.OW >= Width;

    /// <summary>
    /// Whether the forward takes the direct path: at 16 lanes only. At 8 (`GradFlow.Bench --conv-direct`, 1 thread, batch 64
    /// of 28x28, 32 filters) the direct forward took 1.17-1.22x the GEMM's time at 9 taps and 1.29-1.36x at 16: its output
    /// is as large as the GEMM's and written as slowly, and half-width vectors leave the taps' loads and broadcasts
    /// costing more than the FMAs; the backward-weight, which writes almost nothing, took 0.41-0.47x at 9 taps.
    /// </summary>
    public static bool AppliesForward(in Conv2dGeometry g) => Width == DirectLanes512.Count && Applies(g);

    /// <summary>The forward, where <see cref="AppliesForward"/>: 16 lanes only.</summary>
    public static void Forward(in Conv2dGeometry g, float* input, float* weight, float* bias, float* output)
    {
        using var src = new PaddedInput(g, input);
        var body = new ForwardBody<Vector512<float>, DirectLanes512>(g, src.Layout, weight, bias, output);
        Parallelism.For(g.N, ref body);
    }

    /// <summary>gradWeight (and gradBias when not null) overwritten; output channels run in parallel.</summary>
    public static void BackwardWeight(in Conv2dGeometry g, float* input, float* gradOutput, float* gradWeight, float* gradBias)
    {
        using var src = new PaddedInput(g, input);
        int items = g.Groups * ItemsPerGroup(g);
        if (Width == DirectLanes512.Count)
        {
            var body = new WeightBody<Vector512<float>, DirectLanes512>(g, src.Layout, gradOutput, gradWeight, gradBias);
            Parallelism.For(items, ref body);
        }
        else
        {
            var body = new WeightBody<Vector256<float>, DirectLanes256>(g, src.Layout, gradOutput, gradWeight, gradBias);
            Parallelism.For(items, ref body);
        }
    }

    private const int WeightChannels = 3;

    private static int ItemsPerGroup(in Conv2dGeometry g) => (g.OutPerGroup + WeightChannels - 1) / WeightChannels;

    /// <summary>The (padded) input: plane pointer per (image, channel), row and plane strides, tap offsets.</summary>
    private readonly struct Layout(float* data, int rowStride, int planeStride, int[] taps)
    {
        public readonly float* Data = data;
        public readonly int RowStride = rowStride;
        public readonly int PlaneStride = planeStride;

        /// <summary>Offset of tap r = (ci KH + ki) KW + kj from an output pixel's window origin.</summary>
        public readonly int[] Taps = taps;
    }

    private readonly struct PaddedInput : IDisposable
    {
        private readonly float[]? _rented;
        private readonly GCHandle _pin;

        public PaddedInput(in Conv2dGeometry g, float* input)
        {
            int hp = g.H + (2 * g.PadH), wp = g.W + (2 * g.PadW);
            float* data = input;
            if (g.PadH != 0 || g.PadW != 0)
            {
                int planes = g.N * g.C;
                _rented = ArrayPool<float>.Shared.Rent(planes * hp * wp);
                _pin = GCHandle.Alloc(_rented, GCHandleType.Pinned);
                data = (float*)_pin.AddrOfPinnedObject();
                var dst = new Span<float>(data, planes * hp * wp);
                dst.Clear();
                for (int p = 0; p < planes; p++)
                {
                    for (int iy = 0; iy < g.H; iy++)
                    {
                        new ReadOnlySpan<float>(input + (((long)p * g.H) + iy) * g.W, g.W)
                            .CopyTo(dst.Slice((((p * hp) + iy + g.PadH) * wp) + g.PadW, g.W));
                    }
                }
            }

            var taps = new int[g.ColRows];
            for (int ci = 0, r = 0; ci < g.InPerGroup; ci++)
            {
                for (int ki = 0; ki < g.KH; ki++)
                {
                    for (int kj = 0; kj < g.KW; kj++, r++)
                    {
                        taps[r] = (ci * hp * wp) + (ki * g.DilH * wp) + (kj * g.DilW);
                    }
                }
            }

            Layout = new Layout(data, wp, hp * wp, taps);
        }

        public Layout Layout { get; }

        public void Dispose()
        {
            if (_rented is not null)
            {
                _pin.Free();
                ArrayPool<float>.Shared.Return(_rented);
            }
        }
    }

    private readonly struct ForwardBody<TV, TL>(Conv2dGeometry g, Layout src, float* weight, float* bias, float* output) : IParallelBody
        where TV : struct
        where TL : IDirectLanes<TV>
    {
        private static int V => TL.Count;

        public void Invoke(int b)
        {
            int* taps = stackalloc int[g.ColRows];
            for (int r = 0; r < g.ColRows; r++)
            {
                taps[r] = src.Taps[r];
            }

            for (int grp = 0; grp < g.Groups; grp++)
            {
                float* x = src.Data + (((long)(b * g.C) + (grp * g.InPerGroup)) * src.PlaneStride);
                int oc = grp * g.OutPerGroup, end = oc + g.OutPerGroup;
                for (; oc + Block <= end; oc += Block)
                {
                    Channels4(x, taps, oc, b);
                }

                for (; oc < end; oc++)
                {
                    Channel1(x, taps, oc, b);
                }
            }
        }

        private void Channels4(float* x, int* taps, int oc, int b)
        {
            int k = g.ColRows, plane = g.OH * g.OW;
            float* w = weight + (oc * k);
            float* y = output + (((long)(b * g.OutC) + oc) * plane);
            for (int oy = 0; oy < g.OH; oy++)
            {
                float* row = x + (oy * g.StrideH * src.RowStride);
                for (int ox = 0; ; ox += V)
                {
                    ox = Math.Min(ox, g.OW - V);
                    TV a0 = Start(oc), a1 = Start(oc + 1), a2 = Start(oc + 2), a3 = Start(oc + 3);
                    for (int r = 0; r < k; r++)
                    {
                        var xv = TL.Load(row + ox + taps[r]);
                        a0 = TL.Fma(TL.Create(w[r]), xv, a0);
                        a1 = TL.Fma(TL.Create(w[k + r]), xv, a1);
                        a2 = TL.Fma(TL.Create(w[(2 * k) + r]), xv, a2);
                        a3 = TL.Fma(TL.Create(w[(3 * k) + r]), xv, a3);
                    }

                    float* at = y + (oy * g.OW) + ox;
                    TL.Store(a0, at);
                    TL.Store(a1, at + plane);
                    TL.Store(a2, at + (2 * plane));
                    TL.Store(a3, at + (3 * plane));
                    if (ox == g.OW - V)
                    {
                        break;
                    }
                }
            }
        }

        private void Channel1(float* x, int* taps, int oc, int b)
        {
            int k = g.ColRows;
            float* w = weight + (oc * k);
            float* y = output + (((long)(b * g.OutC) + oc) * g.OH * g.OW);
            for (int oy = 0; oy < g.OH; oy++)
            {
                float* row = x + (oy * g.StrideH * src.RowStride);
                for (int ox = 0; ; ox += V)
                {
                    ox = Math.Min(ox, g.OW - V);
                    TV a0 = Start(oc);
                    for (int r = 0; r < k; r++)
                    {
                        a0 = TL.Fma(TL.Create(w[r]), TL.Load(row + ox + taps[r]), a0);
                    }

                    TL.Store(a0, y + (oy * g.OW) + ox);
                    if (ox == g.OW - V)
                    {
                        break;
                    }
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private TV Start(int oc) => TL.Create(bias == null ? 0f : bias[oc]);
    }

    // dW[oc, r] = sum over images, rows and columns of dy[b, oc, oy, ox] x[b, window origin + tap r]. Three output
    // channels and three taps at a time (a 3x3 kernel row, nine taps in three blocks without waste): each step loads
    // three gradient and three input vectors for nine FMAs. Per image the vector sums are reduced and added in image
    // order, so the result does not depend on the thread count.
    private readonly struct WeightBody<TV, TL>(Conv2dGeometry g, Layout src, float* gradOutput, float* gradWeight, float* gradBias) : IParallelBody
        where TV : struct
        where TL : IDirectLanes<TV>
    {
        private const int Taps = 3, Channels = WeightChannels;

        private static int V => TL.Count;

        public void Invoke(int item)
        {
            int items = Conv2dDirect.ItemsPerGroup(g), grp = item / items, j = Channels * (item % items);
            int oc0 = (grp * g.OutPerGroup) + j;
            int last = (grp * g.OutPerGroup) + g.OutPerGroup - 1;
            int oc1 = Math.Min(oc0 + 1, last), oc2 = Math.Min(oc0 + 2, last); // a group's last block repeats its last channel
            int k = g.ColRows, plane = g.OH * g.OW;
            int* taps = stackalloc int[k + Taps];
            for (int r = 0; r < k + Taps; r++)
            {
                taps[r] = src.Taps[Math.Min(r, k - 1)];
            }

            float* dw = stackalloc float[Channels * (k + Taps)];
            new Span<float>(dw, Channels * (k + Taps)).Clear();
            float* dw0 = dw, dw1 = dw + k + Taps, dw2 = dw + (2 * (k + Taps));
            float bias0 = 0, bias1 = 0, bias2 = 0;

            // The last step of a row starts at OW - V; its first lanes were counted by the step before.
            int skip = (g.OW % V) == 0 ? 0 : V - (g.OW % V);
            var tail = TL.LanesFrom(skip);
            for (int b = 0; b < g.N; b++)
            {
                float* x = src.Data + (((long)(b * g.C) + (grp * g.InPerGroup)) * src.PlaneStride);
                float* dy0 = gradOutput + (((long)(b * g.OutC) + oc0) * plane);
                float* dy1 = gradOutput + (((long)(b * g.OutC) + oc1) * plane);
                float* dy2 = gradOutput + (((long)(b * g.OutC) + oc2) * plane);
                for (int r0 = 0; r0 < k; r0 += Taps)
                {
                    TV a0 = default, a1 = default, a2 = default, b0 = default, b1 = default, b2 = default;
                    TV c0 = default, c1 = default, c2 = default, s0 = default, s1 = default, s2 = default;
                    int t0 = taps[r0], t1 = taps[r0 + 1], t2 = taps[r0 + 2];
                    for (int oy = 0; oy < g.OH; oy++)
                    {
                        float* row = x + (oy * g.StrideH * src.RowStride);
                        int at = oy * g.OW;
                        for (int ox = 0; ; ox += V)
                        {
                            var mask = TL.AllBitsSet;
                            if (ox > g.OW - V)
                            {
                                ox = g.OW - V;
                                mask = tail;
                            }

                            var d0 = TL.And(TL.Load(dy0 + at + ox), mask);
                            var d1 = TL.And(TL.Load(dy1 + at + ox), mask);
                            var d2 = TL.And(TL.Load(dy2 + at + ox), mask);
                            float* xr = row + ox;
                            var x0 = TL.Load(xr + t0);
                            a0 = TL.Fma(d0, x0, a0);
                            b0 = TL.Fma(d1, x0, b0);
                            c0 = TL.Fma(d2, x0, c0);
                            var x1 = TL.Load(xr + t1);
                            a1 = TL.Fma(d0, x1, a1);
                            b1 = TL.Fma(d1, x1, b1);
                            c1 = TL.Fma(d2, x1, c1);
                            var x2 = TL.Load(xr + t2);
                            a2 = TL.Fma(d0, x2, a2);
                            b2 = TL.Fma(d1, x2, b2);
                            c2 = TL.Fma(d2, x2, c2);
                            if (r0 == 0)
                            {
                                s0 = TL.Add(s0, d0);
                                s1 = TL.Add(s1, d1);
                                s2 = TL.Add(s2, d2);
                            }

                            if (ox == g.OW - V)
                            {
                                break;
                            }
                        }
                    }

                    dw0[r0] += TL.Sum(a0);
                    dw0[r0 + 1] += TL.Sum(a1);
                    dw0[r0 + 2] += TL.Sum(a2);
                    dw1[r0] += TL.Sum(b0);
                    dw1[r0 + 1] += TL.Sum(b1);
                    dw1[r0 + 2] += TL.Sum(b2);
                    dw2[r0] += TL.Sum(c0);
                    dw2[r0 + 1] += TL.Sum(c1);
                    dw2[r0 + 2] += TL.Sum(c2);
                    bias0 += TL.Sum(s0);
                    bias1 += TL.Sum(s1);
                    bias2 += TL.Sum(s2);
                }
            }

            new ReadOnlySpan<float>(dw2, k).CopyTo(new Span<float>(gradWeight + (oc2 * k), k));
            new ReadOnlySpan<float>(dw1, k).CopyTo(new Span<float>(gradWeight + (oc1 * k), k));
            new ReadOnlySpan<float>(dw0, k).CopyTo(new Span<float>(gradWeight + (oc0 * k), k));
            if (gradBias != null)
            {
                gradBias[oc2] = bias2;
                gradBias[oc1] = bias1;
                gradBias[oc0] = bias0;
            }
        }
    }
}

/// <summary>The vector arithmetic of <see cref="Conv2dDirect"/>'s loops, at one width (the JIT specialises each).</summary>
internal interface IDirectLanes<TV> where TV : struct
{
    static abstract int Count { get; }

    static abstract TV AllBitsSet { get; }

    static abstract TV Create(float value);

    static abstract unsafe TV Load(float* source);

    static abstract unsafe void Store(TV value, float* destination);

    /// <summary>a * b + c, rounded once.</summary>
    static abstract TV Fma(TV a, TV b, TV c);

    static abstract TV Add(TV a, TV b);

    static abstract TV And(TV a, TV mask);

    /// <summary>A mask of the lanes from <paramref name="first"/> on.</summary>
    static abstract TV LanesFrom(int first);

    static abstract float Sum(TV value);
}

internal readonly unsafe struct DirectLanes512 : IDirectLanes<Vector512<float>>
{
    public static int Count => Vector512<float>.Count;
    public static Vector512<float> AllBitsSet => Vector512<float>.AllBitsSet;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Create(float value) => Vector512.Create(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(float* source) => Vector512.Load(source);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector512<float> value, float* destination) => value.Store(destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Avx512F.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> And(Vector512<float> a, Vector512<float> mask) => a & mask;
    public static Vector512<float> LanesFrom(int first) => Vector512.GreaterThanOrEqual(Vector512<int>.Indices, Vector512.Create(first)).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector512<float> value) => Vector512.Sum(value);
}

internal readonly unsafe struct DirectLanes256 : IDirectLanes<Vector256<float>>
{
    public static int Count => Vector256<float>.Count;
    public static Vector256<float> AllBitsSet => Vector256<float>.AllBitsSet;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Create(float value) => Vector256.Create(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(float* source) => Vector256.Load(source);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector256<float> value, float* destination) => value.Store(destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Fma(Vector256<float> a, Vector256<float> b, Vector256<float> c) => System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> And(Vector256<float> a, Vector256<float> mask) => a & mask;
    public static Vector256<float> LanesFrom(int first) => Vector256.GreaterThanOrEqual(Vector256<int>.Indices, Vector256.Create(first)).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector256<float> value) => Vector256.Sum(value);
}
