using System.Buffers;
using System.Numerics;

namespace GradFlow.Kernels;

/// <summary>
/// Conv2d as unfold + GEMM, per image and channel group g (W_g: [OutC/G, ColRows], col: [ColRows, OH*OW]):
///   forward          out_g   = W_g col                    (+ bias per output channel)
///   backward-input   dcol    = W_g^T dout_g, then fold dcol into dinput
///   backward-weight  dW_g   += dout_g col^T               (summed over the batch), dbias = sum of dout
/// Forward and backward-input run images in parallel (each GEMM then runs on one thread); backward-weight
/// accumulates into one dW, so it walks the batch in order and lets each GEMM use the threads.
/// The unfold buffer comes from ArrayPool, so steady-state calls do not allocate. Float layers with few taps
/// per output go to <see cref="Conv2dDirect"/> instead (its rule in <see cref="Conv2dDirect.Applies"/>).
/// </summary>
internal static unsafe class Conv2dCore<T> where T : unmanaged, INumber<T>
{
    public static void Forward(in Conv2dGeometry g, T* input, T* weight, T* bias, T* output, bool allowDirect = true)
    {
        if (allowDirect && typeof(T) == typeof(float) && Conv2dDirect.AppliesForward(g))
        {
            Conv2dDirect.Forward(g, (float*)input, (float*)weight, (float*)bias, (float*)output);
            return;
        }

        var body = new ForwardBody(g, input, weight, bias, output);
        Parallelism.For(g.N, ref body);
    }

    public static void BackwardInput(in Conv2dGeometry g, T* gradOutput, T* weight, T* gradInput)
    {
        var body = new BackwardInputBody(g, gradOutput, weight, gradInput);
        Parallelism.For(g.N, ref body);
    }

    public static void BackwardWeight(in Conv2dGeometry g, T* input, T* gradOutput, T* gradWeight, T* gradBias, bool allowDirect = true)
    {
        if (allowDirect && typeof(T) == typeof(float) && Conv2dDirect.Applies(g))
        {
            Conv2dDirect.BackwardWeight(g, (float*)input, (float*)gradOutput, (float*)gradWeight, (float*)gradBias);
            return;
        }

        T[] col = ArrayPool<T>.Shared.Rent(g.IsPointwise ? 1 : g.ColRows * g.ColCols);
        try
        {
            fixed (T* colBuffer = col)
            {
                for (int b = 0; b < g.N; b++)
                {
                    for (int grp = 0; grp < g.Groups; grp++)
                    {
                        T* x = input + (((b * g.C) + (grp * g.InPerGroup)) * g.H * g.W);
                        T* unfolded = Unfold(g, x, colBuffer);
                        WeightGemm(g, gradOutput + OutputOffset(g, b, grp), unfolded, gradWeight + WeightOffset(g, grp), b > 0);
                    }
                }
            }
        }
        finally
        {
            ArrayPool<T>.Shared.Return(col);
        }

        if (g.N == 0)
        {
            new Span<T>(gradWeight, g.WeightLength).Clear();
        }

        if (gradBias != null)
        {
            BiasGradient(g, gradOutput, gradBias);
        }
    }

    private static int OutputOffset(in Conv2dGeometry g, int b, int grp) =>
        ((b * g.OutC) + (grp * g.OutPerGroup)) * g.ColCols;

    private static int WeightOffset(in Conv2dGeometry g, int grp) => grp * g.OutPerGroup * g.ColRows;

    private static T* Unfold(in Conv2dGeometry g, T* image, T* colBuffer)
    {
        if (g.IsPointwise)
        {
            return image;
        }

        Im2Col.Unfold(g, image, colBuffer);
        return colBuffer;
    }

    private static void WeightGemm(in Conv2dGeometry g, T* gradOut, T* col, T* gradW, bool accumulate)
    {
        int m = g.OutPerGroup, n = g.ColRows, k = g.ColCols;
        GemmOf<T>.Run(false, true, m, n, k, T.One, new ReadOnlySpan<T>(gradOut, m * k), k,
            new ReadOnlySpan<T>(col, n * k), k, accumulate ? T.One : T.Zero, new Span<T>(gradW, m * n), n);
    }

    // Per output channel, the sum over images of the plane's sum (vector partial sums, then lanes): a fixed order.
    private static void BiasGradient(in Conv2dGeometry g, T* gradOutput, T* gradBias)
    {
        for (int oc = 0; oc < g.OutC; oc++)
        {
            T sum = T.Zero;
            for (int b = 0; b < g.N; b++)
            {
                sum += PlaneSum(gradOutput + (((b * g.OutC) + oc) * g.ColCols), g.ColCols);
            }

            gradBias[oc] = sum;
        }
    }

    private static T PlaneSum(T* x, int n)
    {
        int i = 0;
        T sum = T.Zero;
        if (Vector.IsHardwareAccelerated && n >= 4 * Vector<T>.Count)
        {
            Vector<T> s0 = Vector<T>.Zero, s1 = s0, s2 = s0, s3 = s0;
            for (; i <= n - (4 * Vector<T>.Count); i += 4 * Vector<T>.Count)
            {
                s0 += Vector.Load(x + i);
                s1 += Vector.Load(x + i + Vector<T>.Count);
                s2 += Vector.Load(x + i + (2 * Vector<T>.Count));
                s3 += Vector.Load(x + i + (3 * Vector<T>.Count));
            }

            sum = Vector.Sum((s0 + s1) + (s2 + s3));
        }

        for (; i < n; i++)
        {
            sum += x[i];
        }

        return sum;
    }

    private readonly struct ForwardBody(Conv2dGeometry g, T* input, T* weight, T* bias, T* output) : IParallelBody
    {
        public void Invoke(int b)
        {
            T[] col = ArrayPool<T>.Shared.Rent(g.IsPointwise ? 1 : g.ColRows * g.ColCols);
            fixed (T* colBuffer = col)
            {
                for (int grp = 0; grp < g.Groups; grp++)
                {
                    T* x = input + (((b * g.C) + (grp * g.InPerGroup)) * g.H * g.W);
                    T* unfolded = Unfold(g, x, colBuffer);
                    int m = g.OutPerGroup, n = g.ColCols, k = g.ColRows;
                    T* y = output + OutputOffset(g, b, grp);
                    if (bias != null)
                    {
                        FillBias(y, grp);
                    }

                    GemmOf<T>.Run(false, false, m, n, k, T.One, new ReadOnlySpan<T>(weight + WeightOffset(g, grp), m * k), k,
                        new ReadOnlySpan<T>(unfolded, k * n), n, bias != null ? T.One : T.Zero, new Span<T>(y, m * n), n);
                }
            }

            ArrayPool<T>.Shared.Return(col);
        }

        // The GEMM then accumulates onto the bias (beta = 1): no second pass over the output.
        private void FillBias(T* y, int grp)
        {
            for (int j = 0; j < g.OutPerGroup; j++)
            {
                new Span<T>(y + (j * g.ColCols), g.ColCols).Fill(bias[(grp * g.OutPerGroup) + j]);
            }
        }
    }

    // Float layers that fit Im2Col.FoldsNarrowRows fold with Im2Col.FoldNarrow (each input row written once, no
    // clear); the unfolded gradient then sits NarrowSlack floats into its buffer, with slack on both sides.
    private readonly struct BackwardInputBody(Conv2dGeometry g, T* gradOutput, T* weight, T* gradInput) : IParallelBody
    {
        public void Invoke(int b)
        {
            bool narrow = typeof(T) == typeof(float) && !g.IsPointwise && Im2Col.FoldsNarrowRows(g);
            int slack = narrow ? Im2Col.NarrowSlack : 0;
            T[] col = ArrayPool<T>.Shared.Rent(g.IsPointwise ? 1 : (g.ColRows * g.ColCols) + (2 * slack));
            fixed (T* colBuffer = col)
            {
                T* imageEnd = gradInput + ((b + 1) * g.C * g.H * g.W);
                for (int grp = 0; grp < g.Groups; grp++)
                {
                    T* dx = gradInput + (((b * g.C) + (grp * g.InPerGroup)) * g.H * g.W);
                    T* dcol = g.IsPointwise ? dx : colBuffer + slack;
                    int m = g.ColRows, n = g.ColCols, k = g.OutPerGroup;
                    GemmOf<T>.Run(true, false, m, n, k, T.One, new ReadOnlySpan<T>(weight + WeightOffset(g, grp), k * m), m,
                        new ReadOnlySpan<T>(gradOutput + OutputOffset(g, b, grp), k * n), n, T.Zero, new Span<T>(dcol, m * n), n);
                    if (narrow)
                    {
                        Im2Col.FoldNarrow(g, (float*)dcol, (float*)dx, (float*)imageEnd);
                    }
                    else if (!g.IsPointwise)
                    {
                        new Span<T>(dx, g.InPerGroup * g.H * g.W).Clear();
                        Im2Col.FoldAdd(g, dcol, dx);
                    }
                }
            }

            ArrayPool<T>.Shared.Return(col);
        }
    }
}
