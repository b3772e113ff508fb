using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GradFlow.Kernels;

/// <summary>
/// The BLIS loop nest around a micro-kernel: for each NC-wide column block of C, for each KC-deep slice,
/// pack the KC x NC block of op(B); for each MC-tall row block, pack the MC x KC block of op(A); then
/// sweep the MR x NR tiles, the B micro-panel staying in L1 while the A micro-panels stream from L2.
/// Large problems are cut into per-thread column (or row) slices that each run this nest independently.
/// </summary>
internal static unsafe class GemmDriver<T, TKernel>
    where T : unmanaged, INumber<T>
    where TKernel : struct, IGemmMicroKernel<T>
{
    // Below ~2 MFLOP a thread hand-off (a few microseconds) costs more than the second core saves.
    private const long ParallelThreshold = 1L << 20;

    // Per-core L2 of the tuning machine (Zen 4); only steers the row/column split.
    private const long L2Bytes = 1L << 20;

    public static void Run(in GemmProblem<T> g)
    {
        int threads = Parallelism.NumThreads;
        if (threads < 2 || (long)g.M * g.N * g.K < ParallelThreshold || Parallelism.IsInsideParallelRegion)
        {
            RunSerial(g);
            return;
        }

        var slices = new Slices(g, threads);
        if (slices.Count < 2)
        {
            RunSerial(g);
            return;
        }

        Parallelism.For(slices.Count, ref slices);
    }

    /// <summary>
    /// Splits C into one slice per thread, aligned to the register tile. Each slice packs its own panels,
    /// so a column split repacks all of op(A) per thread and a row split all of op(B). Rows win while op(B)
    /// fits L2 and its repacking is the cheaper one (a transposing pack counted twice a contiguous one):
    /// gemm256 on 2 threads, 143 -> 171 GFLOPS. Past that, every row slice streams a whole packed B
    /// from L3 and columns win: gemm1024, 196 GFLOPS by columns against 142 by rows.
    /// </summary>
    private struct Slices : IParallelBody
    {
        private readonly GemmProblem<T> problem;
        private readonly bool byColumns;
        private readonly int width;

        public Slices(in GemmProblem<T> g, int threads)
        {
            problem = g;
            byColumns = PreferColumns(g, threads);
            int extent = byColumns ? g.N : g.M;
            int tile = byColumns ? TKernel.NR : TKernel.MR;
            width = RoundUp((extent + threads - 1) / threads, tile);
            Count = (extent + width - 1) / width;
        }

        public int Count { get; }

        private static bool PreferColumns(in GemmProblem<T> g, int threads)
        {
            bool rowsSplit = g.M >= threads * TKernel.MR, columnsSplit = g.N >= threads * TKernel.NR;
            if (rowsSplit != columnsSplit)
            {
                return columnsSplit;
            }

            if (!rowsSplit)
            {
                return g.N >= g.M;
            }

            long repackA = (long)g.M * g.K * (g.TransA ? 1 : 2);
            long repackB = (long)g.K * g.N * (g.TransB ? 2 : 1);
            bool bFitsL2 = (long)g.K * g.N * sizeof(T) <= L2Bytes;
            if (!(bFitsL2 && repackB <= repackA))
            {
                return true;
            }

            // Rows are preferred, unless whole register tiles leave the largest row slice well above its share
            // while columns divide evenly: M = 128 rows in 12-row tiles splits 72/56 (the caller waits on 56% of
            // the work), 256 columns in 32-column tiles 128/128. Deep_sigmoid's input-gradient GEMMs.
            double rowShare = (double)LargestSlice(g.M, threads, TKernel.MR) / g.M;
            double columnShare = (double)LargestSlice(g.N, threads, TKernel.NR) / g.N;
            return rowShare > 1.05 * columnShare;
        }

        private static int LargestSlice(int extent, int threads, int tile) =>
            Math.Min(extent, RoundUp((extent + threads - 1) / threads, tile));

        public readonly void Invoke(int index)
        {
            int start = index * width;
            if (byColumns)
            {
                RunSerial(problem.Columns(start, Math.Min(width, problem.N - start)));
            }
            else
            {
                RunSerial(problem.Rows(start, Math.Min(width, problem.M - start)));
            }
        }
    }

    [SkipLocalsInit]
    public static void RunSerial(in GemmProblem<T> g)
    {
        int mr = TKernel.MR, nr = TKernel.NR;
        int kcMax = Math.Min(TKernel.KC, g.K);
        int mcMax = Math.Min(TKernel.MC, RoundUp(g.M, mr));
        int ncMax = Math.Min(TKernel.NC, RoundUp(g.N, nr));
        T* packedA = PackBuffers<T>.ForA(mcMax * kcMax);
        T* packedB = PackBuffers<T>.ForB(kcMax * ncMax);
        T* edgeTile = stackalloc T[mr * nr];

        for (int jc = 0; jc < g.N; jc += ncMax)
        {
            int nc = Math.Min(ncMax, g.N - jc);
            for (int pc = 0; pc < g.K; pc += kcMax)
            {
                int kc = Math.Min(kcMax, g.K - pc);
                T beta = pc == 0 ? g.Beta : T.One;
                GemmPacking.PackB(g, pc, kc, jc, nc, nr, packedB);
                for (int ic = 0; ic < g.M; ic += mcMax)
                {
                    int mc = Math.Min(mcMax, g.M - ic);
                    GemmPacking.PackA(g, ic, mc, pc, kc, mr, packedA);
                    var block = new Block(g.C + (ic * g.Ldc) + jc, g.Ldc, mc, nc, kc);
                    MacroKernel(block, packedA, packedB, g.Alpha, beta, edgeTile);
                }
            }
        }
    }

    internal readonly struct Block(T* c, nint ldc, int rows, int cols, int depth)
    {
        public readonly T* C = c;
        public readonly nint Ldc = ldc;
        public readonly int Rows = rows;
        public readonly int Cols = cols;
        public readonly int Depth = depth;
    }

    internal static void MacroKernel(in Block blk, T* packedA, T* packedB, T alpha, T beta, T* edgeTile)
    {
        int mr = TKernel.MR, nr = TKernel.NR;
        for (int jr = 0; jr < blk.Cols; jr += nr)
        {
            int cols = Math.Min(nr, blk.Cols - jr);
            T* b = packedB + (jr * blk.Depth);
            for (int ir = 0; ir < blk.Rows; ir += mr)
            {
                int rows = Math.Min(mr, blk.Rows - ir);
                T* a = packedA + (ir * blk.Depth);
                T* c = blk.C + (ir * blk.Ldc) + jr;
                if (rows == mr && cols == nr)
                {
                    TKernel.Run(blk.Depth, a, b, c, blk.Ldc, alpha, beta);
                }
                else
                {
                    TKernel.Run(blk.Depth, a, b, edgeTile, nr, T.One, T.Zero);
                    MergeEdge(edgeTile, nr, c, blk.Ldc, rows, cols, alpha, beta);
                }
            }
        }
    }

    // A partial tile is computed in full into scratch, then only its valid part is written to C, a row at a time
    // in 256-bit, 128-bit, then scalar steps (same operations as the scalar loop: alpha t, then + beta c).
    // Convolutions hit this on every image (conv2 of the cnn bench: 64 x 121 outputs, edges in both directions).
    private static void MergeEdge(T* tile, int nr, T* c, nint ldc, int rows, int cols, T alpha, T beta)
    {
        bool readC = beta != T.Zero;
        for (int i = 0; i < rows; i++, tile += nr, c += ldc)
        {
            int j = 0;
            if (Vector256.IsHardwareAccelerated && Vector256<T>.IsSupported)
            {
                var va = Vector256.Create(alpha);
                var vb = Vector256.Create(beta);
                for (; j <= cols - Vector256<T>.Count; j += Vector256<T>.Count)
                {
                    var r = va * Vector256.Load(tile + j);
                    (readC ? r + (vb * Vector256.Load(c + j)) : r).Store(c + j);
                }
            }

            if (Vector128.IsHardwareAccelerated && Vector128<T>.IsSupported)
            {
                var va = Vector128.Create(alpha);
                var vb = Vector128.Create(beta);
                for (; j <= cols - Vector128<T>.Count; j += Vector128<T>.Count)
                {
                    var r = va * Vector128.Load(tile + j);
                    (readC ? r + (vb * Vector128.Load(c + j)) : r).Store(c + j);
                }
            }

            for (; j < cols; j++)
            {
                T r = alpha * tile[j];
                c[j] = readC ? r + (beta * c[j]) : r;
            }
        }
    }

    private static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;
}
