using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GradFlow.Kernels;

/// <summary>
/// op(B) packed once into the micro-kernel's panels, for many products with the same B: an RNN multiplies its
/// hidden-to-hidden weights (1024 x 256 for an LSTM of 256 units) by a 32-row state at every time step, where a
/// plain GEMM would repack the whole weight for 8 MFLOP of work each time. Reuse an instance across calls to
/// keep its buffer; it holds the panels of the last <see cref="GemmPacked.PackB{T}"/> only.
/// </summary>
internal sealed class PackedMatrix<T> where T : unmanaged
{
    private T[] _buffer = [];

    /// <summary>Depth (rows of op(B)).</summary>
    public int K { get; private set; }

    /// <summary>Columns of op(B).</summary>
    public int N { get; private set; }

    internal int Kernel { get; private set; }

    internal int PaddedN { get; private set; }

    internal void Reset(int k, int n, int kernel, int paddedN)
    {
        (K, N, Kernel, PaddedN) = (k, n, kernel, paddedN);
        int padded = (k * paddedN) + (64 / Unsafe.SizeOf<T>());
        if (_buffer.Length < padded) _buffer = GC.AllocateUninitializedArray<T>(padded, pinned: true);
    }

    // Pinned at allocation; 64-byte aligned so panel loads never split a cache line.
    internal unsafe T* Panels
    {
        get
        {
            nint address = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_buffer));
            return (T*)((address + 63) & ~(nint)63);
        }
    }
}

/// <summary>
/// GEMM with a pre-packed B operand: <see cref="PackB{T}"/> lays op(B) out as the driver's KC-deep blocks of
/// NR-wide panels over all N columns (no NC blocking: the whole packed B is reused for every row block), and
/// <see cref="Run{T}"/> computes C = alpha * op(A) * B + beta * C packing only A. Results equal <see cref="Gemm"/>'s
/// to rounding (same micro-kernels, same KC split).
/// </summary>
internal static unsafe class GemmPacked
{
    private const int K512 = 1, K256 = 2, K128 = 3, KScalar = 4;

    // As GemmDriver: below ~2 MFLOP a thread hand-off costs more than the second core saves.
    private const long ParallelThreshold = 1L << 20;

    /// <summary>Packs op(B) (k x n; B stored n x k when <paramref name="transB"/>, row stride <paramref name="ldb"/>) into <paramref name="into"/>.</summary>
    public static void PackB<T>(bool transB, int k, int n, ReadOnlySpan<T> b, int ldb, PackedMatrix<T> into)
        where T : unmanaged, INumber<T>
    {
        Guard.Gemm(false, transB, 0, n, k, 0, Math.Max(k, 1), b.Length, ldb, 0, Math.Max(n, 1));
        if (Vector512.IsHardwareAccelerated) Packer<T, Kernel512<T>>.Pack(transB, k, n, b, ldb, into, K512);
        else if (Vector256.IsHardwareAccelerated && Fma.IsSupported) Packer<T, Kernel256<T>>.Pack(transB, k, n, b, ldb, into, K256);
        else if (Vector128.IsHardwareAccelerated) Packer<T, Kernel128<T>>.Pack(transB, k, n, b, ldb, into, K128);
        else Packer<T, ScalarKernel<T>>.Pack(transB, k, n, b, ldb, into, KScalar);
    }

    /// <summary>C[m, n] = alpha * op(A) * B + beta * C with B packed by <see cref="PackB{T}"/>; A is m x k (k x m when <paramref name="transA"/>).</summary>
    public static void Run<T>(bool transA, int m, T alpha, ReadOnlySpan<T> a, int lda, PackedMatrix<T> b, T beta, Span<T> c, int ldc)
        where T : unmanaged, INumber<T>
    {
        Guard.Gemm(transA, false, m, b.N, b.K, a.Length, lda, int.MaxValue, Math.Max(b.N, 1), c.Length, ldc); // B was checked when packed
        if (m == 0 || b.N == 0) return;
        if (b.K == 0)
        {
            for (int i = 0; i < m; i++)
                foreach (ref T x in c.Slice(i * ldc, b.N)) x = beta == T.Zero ? T.Zero : x * beta;
            return;
        }
        fixed (T* pa = a, pc = c)
        {
            var g = new GemmProblem<T> { A = pa, C = pc, Lda = lda, Ldc = ldc, TransA = transA, M = m, N = b.N, K = b.K, Alpha = alpha, Beta = beta };
            switch (b.Kernel)
            {
                case K512: Packer<T, Kernel512<T>>.Run(g, b); break;
                case K256: Packer<T, Kernel256<T>>.Run(g, b); break;
                case K128: Packer<T, Kernel128<T>>.Run(g, b); break;
                default: Packer<T, ScalarKernel<T>>.Run(g, b); break;
            }
        }
    }

    private static class Packer<T, TKernel>
        where T : unmanaged, INumber<T>
        where TKernel : struct, IGemmMicroKernel<T>
    {
        public static void Pack(bool transB, int k, int n, ReadOnlySpan<T> b, int ldb, PackedMatrix<T> into, int kernel)
        {
            int nr = TKernel.NR, kcMax = TKernel.KC, paddedN = (n + nr - 1) / nr * nr;
            into.Reset(k, n, kernel, paddedN);
            fixed (T* pb = b)
            {
                var g = new GemmProblem<T> { B = pb, Ldb = ldb, TransB = transB, N = n, K = k };
                T* dst = into.Panels;
                for (int pc = 0; pc < k; pc += kcMax)
                {
                    int kc = Math.Min(kcMax, k - pc);
                    GemmPacking.PackB(g, pc, kc, 0, n, nr, dst + ((nint)pc * paddedN));
                }
            }
        }

        public static void Run(in GemmProblem<T> g, PackedMatrix<T> b)
        {
            int threads = Parallelism.NumThreads, nr = TKernel.NR;
            if (threads < 2 || (long)g.M * g.N * g.K < ParallelThreshold || Parallelism.IsInsideParallelRegion)
            {
                RunColumns(g, b.Panels, b.PaddedN, 0, g.N);
                return;
            }
            var slices = new Slices(g, b, threads);
            Parallelism.For(slices.Count, ref slices);
        }

        // Columns [j0, j0 + cols) of C, j0 a multiple of NR: for each KC block, pack A's row blocks and sweep the panels.
        [SkipLocalsInit]
        private static void RunColumns(in GemmProblem<T> g, T* panels, int paddedN, int j0, int cols)
        {
            int mr = TKernel.MR, kcMax = Math.Min(TKernel.KC, g.K), mcMax = Math.Min(TKernel.MC, (g.M + mr - 1) / mr * mr);
            T* packedA = PackBuffers<T>.ForA(mcMax * kcMax);
            T* edgeTile = stackalloc T[mr * TKernel.NR];
            for (int pc = 0; pc < g.K; pc += kcMax)
            {
                int kc = Math.Min(kcMax, g.K - pc);
                T beta = pc == 0 ? g.Beta : T.One;
                T* bBlock = panels + ((nint)pc * paddedN) + ((nint)j0 * kc);
                for (int ic = 0; ic < g.M; ic += mcMax)
                {
                    int mc = Math.Min(mcMax, g.M - ic);
                    GemmPacking.PackA(g, ic, mc, pc, kc, mr, packedA);
                    var block = new GemmDriver<T, TKernel>.Block(g.C + (ic * g.Ldc) + j0, g.Ldc, mc, cols, kc);
                    GemmDriver<T, TKernel>.MacroKernel(block, packedA, bBlock, g.Alpha, beta, edgeTile);
                }
            }
        }

        private readonly struct Slices : IParallelBody
        {
            private readonly GemmProblem<T> _g;
            private readonly nint _panels;
            private readonly int _paddedN, _width;

            public Slices(in GemmProblem<T> g, PackedMatrix<T> b, int threads)
            {
                (_g, _panels, _paddedN) = (g, (nint)b.Panels, b.PaddedN);
                int nr = TKernel.NR;
                _width = ((g.N + threads - 1) / threads + nr - 1) / nr * nr;
                Count = (g.N + _width - 1) / _width;
            }

            public int Count { get; }

            public void Invoke(int index)
            {
                int j0 = index * _width;
                RunColumns(_g, (T*)_panels, _paddedN, j0, Math.Min(_width, _g.N - j0));
            }
        }
    }
}
