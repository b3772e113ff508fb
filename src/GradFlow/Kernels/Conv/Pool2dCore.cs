using System.Numerics;
using System.Runtime.InteropServices;

namespace GradFlow.Kernels;

/// <summary>Max and average pooling over each [H, W] plane, as PyTorch computes them.</summary>
internal static class Pool2dCore<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>
    /// Max over the in-bounds part of each window (padding never wins). NaN propagates as in PyTorch
    /// (a NaN replaces the running max). indices holds the winner's offset within its [H, W] plane.
    /// </summary>
    public static void MaxForward(in Pool2dGeometry g, ReadOnlySpan<T> input, Span<T> output, Span<int> indices)
    {
        if (g is { KH: 2, KW: 2, StrideH: 2, StrideW: 2, PadH: 0, PadW: 0 })
        {
            MaxForward2x2(g, input, output, indices);
            return;
        }

        int plane = g.H * g.W, outPlane = g.OH * g.OW;
        for (int p = 0; p < g.Planes; p++)
        {
            var x = input.Slice(p * plane, plane);
            int o = p * outPlane;
            for (int oy = 0; oy < g.OH; oy++)
            {
                var (y0, y1) = Clip((oy * g.StrideH) - g.PadH, g.KH, g.H);
                for (int ox = 0; ox < g.OW; ox++, o++)
                {
                    var (x0, x1) = Clip((ox * g.StrideW) - g.PadW, g.KW, g.W);
                    (output[o], indices[o]) = WindowMax(x, g.W, y0, y1, x0, x1);
                }
            }
        }
    }

    /// <summary>gradInput = 0, then gradInput[plane, indices[o]] += gradOutput[o] (the adjoint of the max selection).</summary>
    public static void MaxBackward(in Pool2dGeometry g, ReadOnlySpan<T> gradOutput, ReadOnlySpan<int> indices, Span<T> gradInput)
    {
        if (g is { KH: 2, KW: 2, StrideH: 2, StrideW: 2, PadH: 0, PadW: 0 } && MaxBackward2x2(g, gradOutput, indices, gradInput))
        {
            return;
        }

        gradInput.Clear();
        int plane = g.H * g.W, outPlane = g.OH * g.OW;
        for (int p = 0, o = 0; p < g.Planes; p++)
        {
            var dx = gradInput.Slice(p * plane, plane);
            for (int end = o + outPlane; o < end; o++)
            {
                int index = indices[o];
                if ((uint)index >= (uint)plane)
                {
                    Guard.ThrowArg("MaxPool2d backward", nameof(indices), $"indices[{o}] = {index} is outside the {g.H} x {g.W} input plane.");
                }

                dx[index] += gradOutput[o];
            }
        }
    }

    /// <summary>
    /// The common 2x2 window of stride 2: windows do not overlap, so each writes its four inputs once (the winner's
    /// gradient and three zeros) in one pass, instead of clearing the whole input gradient and then scattering into
    /// it, which reads back from memory the lines the clear wrote out (1.38M values on the cnn's first pool). Only the
    /// last row or column that no window covers (an odd H or W) is cleared. False, at the first index outside its
    /// window (indices not made by the forward), for the general scatter to start over.
    /// </summary>
    private static bool MaxBackward2x2(in Pool2dGeometry g, ReadOnlySpan<T> gradOutput, ReadOnlySpan<int> indices, Span<T> gradInput)
    {
        if (typeof(T) == typeof(float) && Pool2dVector.BackwardApplies(g))
        {
            return Pool2dVector.MaxBackward2x2(g, MemoryMarshal.Cast<T, float>(gradOutput), indices, MemoryMarshal.Cast<T, float>(gradInput));
        }

        return MaxBackward2x2Scalar(g, gradOutput, indices, gradInput);
    }

    /// <summary>The 2x2 write-once backward one window at a time (the reference the vector path matches bit for bit).</summary>
    internal static bool MaxBackward2x2Scalar(in Pool2dGeometry g, ReadOnlySpan<T> gradOutput, ReadOnlySpan<int> indices, Span<T> gradInput)
    {
        int w = g.W, plane = g.H * w;
        for (int p = 0, o = 0; p < g.Planes; p++)
        {
            var dx = gradInput.Slice(p * plane, plane);
            for (int oy = 0; oy < g.OH; oy++)
            {
                int top = 2 * oy * w;
                var row0 = dx.Slice(top, w);
                var row1 = dx.Slice(top + w, w);
                for (int ox = 0; ox < g.OW; ox++, o++)
                {
                    int at = 2 * ox, d = indices[o] - (top + at);
                    T v = gradOutput[o];
                    if (d != 0 && d != 1 && d != w && d != w + 1)
                    {
                        return false;
                    }

                    row0[at] = d == 0 ? v : T.Zero;
                    row0[at + 1] = d == 1 ? v : T.Zero;
                    row1[at] = d == w ? v : T.Zero;
                    row1[at + 1] = d == w + 1 ? v : T.Zero;
                }

                if ((w & 1) != 0)
                {
                    row0[w - 1] = T.Zero;
                    row1[w - 1] = T.Zero;
                }
            }

            if ((g.H & 1) != 0)
            {
                dx.Slice((g.H - 1) * w, w).Clear();
            }
        }

        return true;
    }

    /// <summary>
    /// Window mean with count_include_pad = true: the divisor counts padded positions (but not the part
    /// of a window past the padding), PyTorch's default.
    /// </summary>
    public static void AvgForward(in Pool2dGeometry g, ReadOnlySpan<T> input, Span<T> output)
    {
        int plane = g.H * g.W, outPlane = g.OH * g.OW;
        for (int p = 0; p < g.Planes; p++)
        {
            var x = input.Slice(p * plane, plane);
            int o = p * outPlane;
            for (int oy = 0; oy < g.OH; oy++)
            {
                for (int ox = 0; ox < g.OW; ox++, o++)
                {
                    var win = AvgWindow(g, oy, ox);
                    T sum = T.Zero;
                    for (int iy = win.Y0; iy < win.Y1; iy++)
                    {
                        for (int ix = win.X0; ix < win.X1; ix++)
                        {
                            sum += x[(iy * g.W) + ix];
                        }
                    }

                    output[o] = sum / T.CreateChecked(win.Divisor);
                }
            }
        }
    }

    /// <summary>Each output gradient spread evenly (1 / divisor) over its window's in-bounds inputs.</summary>
    public static void AvgBackward(in Pool2dGeometry g, ReadOnlySpan<T> gradOutput, Span<T> gradInput)
    {
        gradInput.Clear();
        int plane = g.H * g.W, outPlane = g.OH * g.OW;
        for (int p = 0; p < g.Planes; p++)
        {
            var dx = gradInput.Slice(p * plane, plane);
            int o = p * outPlane;
            for (int oy = 0; oy < g.OH; oy++)
            {
                for (int ox = 0; ox < g.OW; ox++, o++)
                {
                    var win = AvgWindow(g, oy, ox);
                    T share = gradOutput[o] / T.CreateChecked(win.Divisor);
                    for (int iy = win.Y0; iy < win.Y1; iy++)
                    {
                        for (int ix = win.X0; ix < win.X1; ix++)
                        {
                            dx[(iy * g.W) + ix] += share;
                        }
                    }
                }
            }
        }
    }

    // The common 2x2 / stride 2 window without clipping or a window loop; the same winner as WindowMax
    // (the first maximum in row-major order; a NaN replaces the running max). Float rows of at least 4 outputs
    // take the AVX-512 path (Pool2dVector), or its AVX2 / SSE twin; narrower rows, doubles and other CPUs the scalar chain.
    private static void MaxForward2x2(in Pool2dGeometry g, ReadOnlySpan<T> input, Span<T> output, Span<int> indices)
    {
        if (typeof(T) == typeof(float) && g.OW >= Pool2dVector.Width && Pool2dVector.IsSupported)
        {
            Pool2dVector.MaxForward2x2(g, System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(input),
                System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(output), indices);
            return;
        }

        if (typeof(T) == typeof(float) && Pool2dVector.NoAvx512IsSupported(g.OW))
        {
            Pool2dVector.MaxForward2x2NoAvx512(g, System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(input),
                System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(output), indices);
            return;
        }

        int w = g.W, plane = g.H * w, o = 0;
        for (int p = 0; p < g.Planes; p++)
        {
            var x = input.Slice(p * plane, plane);
            for (int oy = 0; oy < g.OH; oy++)
            {
                int r0 = 2 * oy * w, r1 = r0 + w;
                for (int ox = 0; ox < g.OW; ox++, o++)
                {
                    int i0 = r0 + (2 * ox);
                    T max = x[i0];
                    int best = i0;
                    Step(x, i0 + 1, ref max, ref best);
                    Step(x, r1 + (2 * ox), ref max, ref best);
                    Step(x, r1 + (2 * ox) + 1, ref max, ref best);
                    output[o] = max;
                    indices[o] = best;
                }
            }
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static void Step(ReadOnlySpan<T> x, int i, ref T max, ref int best)
    {
        T v = x[i];
        if (v > max || T.IsNaN(v))
        {
            max = v;
            best = i;
        }
    }

    private static (T Max, int Index) WindowMax(ReadOnlySpan<T> x, int w, int y0, int y1, int x0, int x1)
    {
        T max = T.NegativeInfinity;
        int best = (y0 * w) + x0;
        for (int iy = y0; iy < y1; iy++)
        {
            for (int ix = x0; ix < x1; ix++)
            {
                T v = x[(iy * w) + ix];
                if (v > max || T.IsNaN(v))
                {
                    max = v;
                    best = (iy * w) + ix;
                }
            }
        }

        return (max, best);
    }

    private static (int Start, int End) Clip(int start, int size, int limit) =>
        (Math.Max(start, 0), Math.Min(start + size, limit));

    private static (int Y0, int Y1, int X0, int X1, int Divisor) AvgWindow(in Pool2dGeometry g, int oy, int ox)
    {
        int y0 = (oy * g.StrideH) - g.PadH, x0 = (ox * g.StrideW) - g.PadW;
        int y1 = Math.Min(y0 + g.KH, g.H + g.PadH), x1 = Math.Min(x0 + g.KW, g.W + g.PadW);
        int divisor = (y1 - y0) * (x1 - x0);
        return (Math.Max(y0, 0), Math.Min(y1, g.H), Math.Max(x0, 0), Math.Min(x1, g.W), divisor);
    }
}
