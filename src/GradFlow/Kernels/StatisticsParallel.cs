namespace GradFlow.Kernels;

/// <summary>
/// The monitor's passes over large activations and backward gradients, split over the worker pool when the step
/// itself runs on several threads (a serial pass would otherwise cost twice its share of a parallel step). Each
/// chunk's sums land in a slot of their own and are added in chunk order, and unit maxima are order-free, so the
/// figures do not depend on scheduling (they differ from one thread's only in the rounding of the sums).
/// </summary>
internal static class StatisticsParallel
{
    /// <summary>Values per thread below which one thread does the pass (~30 us of work from L2/L3).</summary>
    public const int MinPerThread = 1 << 16;

    [ThreadStatic] private static double[]? t_partials;

    /// <summary><see cref="ActivationKernels.SumSquares"/> over data[offset, offset + n).</summary>
    public static double SumSquares(float[] data, int offset, int n)
    {
        int chunks = Chunks(n);
        if (chunks < 2) return ActivationKernels.SumSquares(data.AsSpan(offset, n));
        var partials = Partials(chunks);
        var body = new SumSquaresBody(data, offset, n, chunks, partials);
        Parallelism.For(chunks, ref body);
        double total = 0;
        for (int c = 0; c < chunks; c++) total += partials[c];
        return total;
    }

    /// <summary>
    /// <see cref="ActivationKernels.GradAndSquares{TOp}"/> over n elements at the given offsets, split as
    /// <see cref="ElementwiseParallel.Binary{TOp, T}"/> splits the unmeasured op (so dx is the same at any thread count).
    /// </summary>
    public static (double GradSquares, double ResultSquares) GradAndSquares<TOp>(float[] g, int gOffset, float[] y, int yOffset, float[] dx, int dxOffset, int n)
        where TOp : struct, IBinaryOp
    {
        int chunks = Parallelism.IsInsideParallelRegion ? 1 : Math.Min(Parallelism.NumThreads, n / ElementwiseParallel.MinPerThreadActivationGrad);
        if (chunks < 2) return ActivationKernels.GradAndSquares<TOp>(g.AsSpan(gOffset, n), y.AsSpan(yOffset, n), dx.AsSpan(dxOffset, n));
        var partials = Partials(2 * chunks);
        var body = new GradAndSquaresBody<TOp>(g, gOffset, y, yOffset, dx, dxOffset, n, chunks, partials);
        Parallelism.For(chunks, ref body);
        double gs = 0, ds = 0;
        for (int c = 0; c < chunks; c++) (gs, ds) = (gs + partials[2 * c], ds + partials[2 * c + 1]);
        return (gs, ds);
    }

    /// <summary>
    /// <see cref="ActivationKernels.UnaryWithMoments{TOp}"/> over n elements, split as
    /// <see cref="ElementwiseParallel.Unary{TOp, T}"/> splits the unmeasured op (so y is the same at any thread count).
    /// </summary>
    public static (double Sum, double SumSquares, long Outside) UnaryWithMoments<TOp>(float[] x, int xOffset, float[] y, int yOffset, int n, float lo, float hi)
        where TOp : struct, IUnaryOp
    {
        int chunks = Parallelism.IsInsideParallelRegion ? 1 : Math.Min(Parallelism.NumThreads, n / ElementwiseParallel.MinPerThreadUnary);
        if (chunks < 2) return ActivationKernels.UnaryWithMoments<TOp>(x.AsSpan(xOffset, n), y.AsSpan(yOffset, n), lo, hi);
        var partials = Partials(3 * chunks);
        var body = new UnaryWithMomentsBody<TOp>(x, xOffset, y, yOffset, n, chunks, lo, hi, partials);
        Parallelism.For(chunks, ref body);
        double sum = 0, sumSq = 0, outside = 0;
        for (int c = 0; c < chunks; c++) (sum, sumSq, outside) = (sum + partials[3 * c], sumSq + partials[3 * c + 1], outside + partials[3 * c + 2]);
        return (sum, sumSq, (long)outside);
    }

    /// <summary><see cref="ActivationKernels.MomentsAndOutside"/> over data[offset, offset + n).</summary>
    public static (double Sum, double SumSquares, long Outside) MomentsAndOutside(float[] data, int offset, int n, float lo, float hi)
    {
        int chunks = Chunks(n);
        if (chunks < 2) return ActivationKernels.MomentsAndOutside(data.AsSpan(offset, n), lo, hi);
        var partials = Partials(3 * chunks);
        var body = new MomentsAndOutsideBody(data, offset, n, chunks, lo, hi, partials);
        Parallelism.For(chunks, ref body);
        double sum = 0, sumSq = 0, outside = 0;
        for (int c = 0; c < chunks; c++) (sum, sumSq, outside) = (sum + partials[3 * c], sumSq + partials[3 * c + 1], outside + partials[3 * c + 2]);
        return (sum, sumSq, (long)outside);
    }

    /// <summary>
    /// <see cref="ActivationKernels.UnitMaxAndMoments"/> over data[offset, ...) of shape (outer, units, inner), split
    /// along outer; each chunk keeps its own unit maxima, merged into <paramref name="unitMax"/> afterwards.
    /// </summary>
    public static (double Sum, double SumSquares) UnitMaxAndMoments(float[] data, int offset, int outer, int units, int inner, float[] unitMax) =>
        UnitMax<ReluOp>(null, 0, data, offset, outer, units, inner, unitMax);

    /// <summary>
    /// y = op(x) with <see cref="ActivationKernels.UnitMaxAndMoments"/> of y (<see cref="ActivationKernels.UnaryWithUnitMax{TOp}"/>),
    /// split along outer like the pass alone; for ops exact at every width (ReLU), so y does not depend on the split.
    /// </summary>
    public static (double Sum, double SumSquares) UnaryWithUnitMax<TOp>(float[] x, int xOffset, float[] y, int yOffset, int outer, int units, int inner, float[] unitMax)
        where TOp : struct, IUnaryOp =>
        UnitMax<TOp>(x, xOffset, y, yOffset, outer, units, inner, unitMax);

    // The unit maxima and moments of y[yOffset, ...) of shape (outer, units, inner), after writing y = op(x) when x is given.
    private static (double Sum, double SumSquares) UnitMax<TOp>(float[]? x, int xOffset, float[] y, int yOffset, int outer, int units, int inner, float[] unitMax)
        where TOp : struct, IUnaryOp
    {
        long n = (long)outer * units * inner;
        int chunks = (int)Math.Min(Math.Min(Parallelism.NumThreads, outer), n / MinPerThread);
        if (chunks < 2 || Parallelism.IsInsideParallelRegion)
            return x is null
                ? ActivationKernels.UnitMaxAndMoments(y.AsSpan(yOffset, (int)n), outer, units, inner, unitMax)
                : ActivationKernels.UnaryWithUnitMax<TOp>(x.AsSpan(xOffset, (int)n), y.AsSpan(yOffset, (int)n), outer, units, inner, unitMax);
        var partials = Partials(2 * chunks + chunks * units);
        var body = new UnitMaxBody<TOp>(x, xOffset, y, yOffset, outer, units, inner, chunks, partials);
        Parallelism.For(chunks, ref body);
        double sum = 0, sumSq = 0;
        for (int c = 0; c < chunks; c++)
        {
            sum += partials[2 * c];
            sumSq += partials[2 * c + 1];
            int at = 2 * chunks + c * units;
            for (int u = 0; u < units; u++) unitMax[u] = MathF.Max(unitMax[u], (float)partials[at + u]);
        }
        return (sum, sumSq);
    }

    private static int Chunks(int n) =>
        Parallelism.IsInsideParallelRegion ? 1 : Math.Min(Parallelism.NumThreads, n / MinPerThread);

    private static double[] Partials(int count)
    {
        var p = t_partials;
        if (p is null || p.Length < count) t_partials = p = new double[Math.Max(count, 64)];
        return p;
    }

    private readonly struct SumSquaresBody(float[] data, int offset, int n, int chunks, double[] partials) : IParallelBody
    {
        public void Invoke(int index)
        {
            var (start, end) = ElementwiseParallel.Range(index, n, chunks);
            partials[index] = ActivationKernels.SumSquares(data.AsSpan(offset + start, end - start));
        }
    }

    private readonly struct GradAndSquaresBody<TOp>(float[] g, int go, float[] y, int yo, float[] dx, int dxo, int n, int chunks, double[] partials) : IParallelBody
        where TOp : struct, IBinaryOp
    {
        public void Invoke(int index)
        {
            var (start, end) = ElementwiseParallel.Range(index, n, chunks);
            var (gs, ds) = ActivationKernels.GradAndSquares<TOp>(g.AsSpan(go + start, end - start), y.AsSpan(yo + start, end - start), dx.AsSpan(dxo + start, end - start));
            (partials[2 * index], partials[2 * index + 1]) = (gs, ds);
        }
    }

    private readonly struct UnaryWithMomentsBody<TOp>(float[] x, int xo, float[] y, int yo, int n, int chunks, float lo, float hi, double[] partials) : IParallelBody
        where TOp : struct, IUnaryOp
    {
        public void Invoke(int index)
        {
            var (start, end) = ElementwiseParallel.Range(index, n, chunks);
            var (s, q, o) = ActivationKernels.UnaryWithMoments<TOp>(x.AsSpan(xo + start, end - start), y.AsSpan(yo + start, end - start), lo, hi);
            (partials[3 * index], partials[3 * index + 1], partials[3 * index + 2]) = (s, q, o);
        }
    }

    private readonly struct MomentsAndOutsideBody(float[] data, int offset, int n, int chunks, float lo, float hi, double[] partials) : IParallelBody
    {
        public void Invoke(int index)
        {
            var (start, end) = ElementwiseParallel.Range(index, n, chunks);
            var (s, q, o) = ActivationKernels.MomentsAndOutside(data.AsSpan(offset + start, end - start), lo, hi);
            (partials[3 * index], partials[3 * index + 1], partials[3 * index + 2]) = (s, q, o);
        }
    }

    private readonly struct UnitMaxBody<TOp>(float[]? x, int xOffset, float[] data, int offset, int outer, int units, int inner, int chunks, double[] partials) : IParallelBody
        where TOp : struct, IUnaryOp
    {
        public void Invoke(int index)
        {
            int first = (int)((long)outer * index / chunks), last = (int)((long)outer * (index + 1) / chunks);
            float[]? rented = units <= 1024 ? null : System.Buffers.ArrayPool<float>.Shared.Rent(units);
            Span<float> max = rented is null ? stackalloc float[units] : rented.AsSpan(0, units);
            max.Fill(float.NegativeInfinity);
            int block = units * inner;
            var ys = data.AsSpan(offset + first * block, (last - first) * block);
            var (s, q) = x is null
                ? ActivationKernels.UnitMaxAndMoments(ys, last - first, units, inner, max)
                : ActivationKernels.UnaryWithUnitMax<TOp>(x.AsSpan(xOffset + first * block, (last - first) * block), ys, last - first, units, inner, max);
            partials[2 * index] = s;
            partials[2 * index + 1] = q;
            int at = 2 * chunks + index * units;
            for (int u = 0; u < units; u++) partials[at + u] = max[u];
            if (rented is not null) System.Buffers.ArrayPool<float>.Shared.Return(rented);
        }
    }
}
