using System.Buffers;
using System.Numerics;

namespace GradFlow.Kernels;

/// <summary>
/// When <see cref="Conv2dCore{T}"/> runs a chunk of images as one GEMM (<see cref="Conv2dBatched{T}"/>) rather than
/// one GEMM per image.
/// </summary>
internal static class Conv2dBatching
{
    /// <summary>
    /// Output pixels per image below which images are batched. Measured (thread CPU, batch 64, 3x3 kernels, new/old):
    /// 8x8 outputs 0.81 forward, 0.89 input gradient; 11x11 (the cnn's conv2) 0.995, 0.935; 16x16 to 32x32 1.00-1.06:
    /// there a plane fills whole 16-wide tiles and the GEMM per image already runs at full speed.
    /// </summary>
    public const int MaxColCols = 255;

    /// <summary>
    /// Unfolded rows from which images are batched: a shallow GEMM is bound by writing its output, which the batched
    /// path writes twice (the cnn's conv1, 9 rows and 26x26 outputs: 1.33 forward).
    /// </summary>
    public const int MinColRows = 64;

    /// <summary>Off to run the per-image path everywhere (the bench's A/B of the two paths in one process).</summary>
    internal static bool Enabled { get; set; } = true;

    /// <summary>Several images, an unfold to do (a pointwise layer multiplies the input in place), small planes, deep columns.</summary>
    public static bool Applies(in Conv2dGeometry g) =>
        Enabled && g.N > 1 && !g.IsPointwise && g.ColCols <= MaxColCols && g.ColRows >= MinColRows;
}

/// <summary>
/// Conv2d forward and backward-input with several images' unfolded columns side by side: col [ColRows, B L] with
/// L = OH OW and image i at columns [i L, (i + 1) L), so a chunk of B images is one GEMM instead of B GEMMs of L
/// columns. Per image a small layer pays for its GEMM's fixed costs every time (conv2 of the cnn bench, 64 x 121 x
/// 288: W repacked per image, 121 columns = 7 full 16-wide tiles and a 9-wide edge computed in full and merged);
/// over the batch they are paid per 2048-column block. The forward's product comes out as [OutC/G, B L] and is
/// copied to NCHW; the input gradient first gathers dy into that layout and folds the product with row stride B L.
/// Each output is the same dot product, in the same order, as on the per-image path (same micro-kernel, same KC
/// split; the bias is the GEMM's C as there), so the bits do not depend on the chunking or the thread count.
/// A chunk's two buffers come from ArrayPool and hold at most <see cref="MaxChunkElements"/> elements each.
/// </summary>
internal static unsafe class Conv2dBatched<T> where T : unmanaged, INumber<T>
{
    /// <summary>
    /// Elements per chunk buffer (col or product): 256 K, 1 MB of floats, the L2 of the tuning machine, so the unfolded
    /// chunk is still cached when the GEMM packs it; conv2 of the cnn bench: 10 chunks of 6 or 7 images. Measured
    /// (thread CPU, conv2): 8-image chunks 0.93 (forward) and 0.89 (input gradient) of the per-image time, 22-image
    /// chunks (4 MB) 1.43 and 1.03.
    /// </summary>
    internal static int MaxChunkElements { get; set; } = 1 << 18;

    /// <summary>Chunks the batch is cut into: as few as the buffers allow.</summary>
    internal static int Chunks(in Conv2dGeometry g)
    {
        long perImage = (long)Math.Max(g.ColRows, g.OutPerGroup) * g.ColCols;
        int cap = (int)Math.Clamp(MaxChunkElements / perImage, 1, Math.Max(g.N, 1));
        return Math.Max(1, (g.N + cap - 1) / cap);
    }

    /// <summary>First image of chunk <paramref name="chunk"/>: the images spread evenly, chunks differ by one image at most.</summary>
    internal static int ChunkStart(in Conv2dGeometry g, int chunks, int chunk) => (int)((long)chunk * g.N / chunks);

    /// <summary>Images in the largest chunk (what the buffers hold).</summary>
    internal static int ImagesPerChunk(in Conv2dGeometry g)
    {
        int chunks = Chunks(g);
        return (g.N + chunks - 1) / chunks;
    }

    public static void Forward(in Conv2dGeometry g, T* input, T* weight, T* bias, T* output)
    {
        int per = ImagesPerChunk(g), l = g.ColCols, m = g.OutPerGroup, k = g.ColRows;
        T[] colArray = ArrayPool<T>.Shared.Rent(k * per * l);
        T[] productArray = ArrayPool<T>.Shared.Rent(m * per * l);
        try
        {
            fixed (T* col = colArray, product = productArray)
            {
                for (int c = 0, chunks = Chunks(g); c < chunks; c++)
                {
                    int b0 = ChunkStart(g, chunks, c), count = ChunkStart(g, chunks, c + 1) - b0, ld = count * l;
                    for (int grp = 0; grp < g.Groups; grp++)
                    {
                        var unfold = new UnfoldBody(g, input, b0, grp, col, ld);
                        Parallelism.For(count, ref unfold);
                        if (bias != null)
                        {
                            for (int j = 0; j < m; j++)
                            {
                                new Span<T>(product + (j * ld), ld).Fill(bias[(grp * m) + j]);
                            }
                        }

                        GemmOf<T>.Run(false, false, m, ld, k, T.One, new ReadOnlySpan<T>(weight + (grp * m * k), m * k), k,
                            new ReadOnlySpan<T>(col, k * ld), ld, bias != null ? T.One : T.Zero, new Span<T>(product, m * ld), ld);
                        var scatter = new PlanesBody(g, output, b0, grp, product, ld, toBatch: false);
                        Parallelism.For(count, ref scatter);
                    }
                }
            }
        }
        finally
        {
            ArrayPool<T>.Shared.Return(productArray);
            ArrayPool<T>.Shared.Return(colArray);
        }
    }

    public static void BackwardInput(in Conv2dGeometry g, T* gradOutput, T* weight, T* gradInput)
    {
        int per = ImagesPerChunk(g), l = g.ColCols, m = g.OutPerGroup, k = g.ColRows;
        bool narrow = typeof(T) == typeof(float) && Im2Col.FoldsNarrowRows(g);
        int slack = narrow ? Im2Col.NarrowSlack : 0;
        T[] colArray = ArrayPool<T>.Shared.Rent((k * per * l) + (2 * slack));
        T[] gatheredArray = ArrayPool<T>.Shared.Rent(m * per * l);
        try
        {
            fixed (T* colBuffer = colArray, gathered = gatheredArray)
            {
                T* dcol = colBuffer + slack;
                for (int c = 0, chunks = Chunks(g); c < chunks; c++)
                {
                    int b0 = ChunkStart(g, chunks, c), count = ChunkStart(g, chunks, c + 1) - b0, ld = count * l;
                    for (int grp = 0; grp < g.Groups; grp++)
                    {
                        var gather = new PlanesBody(g, gradOutput, b0, grp, gathered, ld, toBatch: true);
                        Parallelism.For(count, ref gather);
                        GemmOf<T>.Run(true, false, k, ld, m, T.One, new ReadOnlySpan<T>(weight + (grp * m * k), m * k), k,
                            new ReadOnlySpan<T>(gathered, m * ld), ld, T.Zero, new Span<T>(dcol, k * ld), ld);
                        var fold = new FoldBody(g, dcol, ld, gradInput, b0, grp, narrow);
                        Parallelism.For(count, ref fold);
                    }
                }
            }
        }
        finally
        {
            ArrayPool<T>.Shared.Return(gatheredArray);
            ArrayPool<T>.Shared.Return(colArray);
        }
    }

    private static T* GroupPlanes(in Conv2dGeometry g, T* images, int b, int grp) =>
        images + (((b * g.C) + (grp * g.InPerGroup)) * g.H * g.W);

    private readonly struct UnfoldBody(Conv2dGeometry g, T* input, int b0, int grp, T* col, int ld) : IParallelBody
    {
        public void Invoke(int i) => Im2Col.Unfold(g, GroupPlanes(g, input, b0 + i, grp), col + (i * g.ColCols), ld);
    }

    // The group's output planes of image b0 + i <-> columns [i L, (i + 1) L) of the [OutC/G, B L] matrix.
    private readonly struct PlanesBody(Conv2dGeometry g, T* images, int b0, int grp, T* batch, int ld, bool toBatch) : IParallelBody
    {
        public void Invoke(int i)
        {
            int l = g.ColCols;
            T* plane = images + ((((b0 + i) * g.OutC) + (grp * g.OutPerGroup)) * l);
            T* column = batch + (i * l);
            for (int j = 0; j < g.OutPerGroup; j++, plane += l, column += ld)
            {
                if (toBatch)
                {
                    new ReadOnlySpan<T>(plane, l).CopyTo(new Span<T>(column, l));
                }
                else
                {
                    new ReadOnlySpan<T>(column, l).CopyTo(new Span<T>(plane, l));
                }
            }
        }
    }

    private readonly struct FoldBody(Conv2dGeometry g, T* dcol, int ld, T* gradInput, int b0, int grp, bool narrow) : IParallelBody
    {
        public void Invoke(int i)
        {
            int b = b0 + i;
            T* dx = GroupPlanes(g, gradInput, b, grp);
            T* columns = dcol + (i * g.ColCols);
            if (narrow)
            {
                Im2Col.FoldNarrow(g, (float*)columns, ld, (float*)dx, (float*)(gradInput + ((b + 1) * g.C * g.H * g.W)));
                return;
            }

            new Span<T>(dx, g.InPerGroup * g.H * g.W).Clear();
            Im2Col.FoldAdd(g, columns, ld, dx);
        }
    }
}
