using System.Numerics;

namespace GradFlow.Kernels;

/// <summary>
/// Unpacked GEMM for problems where copying panels would cost as much as the arithmetic: tiny products,
/// and matrix-vector shapes (one of m, n at most <see cref="ThinLimit"/>) where each packed element would
/// be used only once or twice. Rows of C are built as axpys over rows of B (or dot products with rows of
/// B when it is transposed), vectorised with <see cref="Vector{T}"/>.
/// </summary>
internal static unsafe class GemmSmall
{
    /// <summary>Below this many multiply-adds packing overhead dominates (measured on Zen 4: ~24^3).</summary>
    public const long SizeLimit = 24 * 24 * 24;

    /// <summary>An m or n this small leaves too few tiles to amortise the other operand's packing.</summary>
    public const int ThinLimit = 2;

    public static bool Applies(int m, int n, int k) =>
        (long)m * n * k <= SizeLimit || m <= ThinLimit || n <= ThinLimit;

    public static void Run<T>(in GemmProblem<T> g) where T : unmanaged, INumber<T>
    {
        T* gathered = g.TransA ? PackBuffers<T>.ForA(g.K) : null;
        for (int i = 0; i < g.M; i++)
        {
            T* aRow = g.TransA ? Gather(g.A + i, g.Lda, g.K, gathered) : g.A + (i * g.Lda);
            T* cRow = g.C + (i * g.Ldc);
            if (g.TransB)
            {
                DotRows(g, aRow, cRow);
            }
            else
            {
                AxpyRows(g, aRow, cRow);
            }
        }
    }

    private static T* Gather<T>(T* src, nint stride, int count, T* dst) where T : unmanaged
    {
        for (int p = 0; p < count; p++, src += stride)
        {
            dst[p] = *src;
        }

        return dst;
    }

    // c[j] = alpha * sum_p a[p] * B[j, p] + beta * c[j], with B stored n x k.
    private static void DotRows<T>(in GemmProblem<T> g, T* a, T* c) where T : unmanaged, INumber<T>
    {
        for (int j = 0; j < g.N; j++)
        {
            T r = g.Alpha * Dot(a, g.B + (j * g.Ldb), g.K);
            c[j] = g.Beta == T.Zero ? r : r + (g.Beta * c[j]);
        }
    }

    // c = beta * c + sum_p (alpha * a[p]) * B[p, :], with B stored k x n.
    private static void AxpyRows<T>(in GemmProblem<T> g, T* a, T* c) where T : unmanaged, INumber<T>
    {
        var row = new Span<T>(c, g.N);
        if (g.Beta == T.Zero)
        {
            row.Clear();
        }
        else if (g.Beta != T.One)
        {
            Scale(c, g.N, g.Beta);
        }

        for (int p = 0; p < g.K; p++)
        {
            Axpy(g.Alpha * a[p], g.B + (p * g.Ldb), c, g.N);
        }
    }

    private static T Dot<T>(T* x, T* y, int n) where T : unmanaged, INumber<T>
    {
        int i = 0;
        var acc = Vector<T>.Zero;
        for (; i <= n - Vector<T>.Count; i += Vector<T>.Count)
        {
            acc += Vector.Load(x + i) * Vector.Load(y + i);
        }

        T sum = Vector.Sum(acc);
        for (; i < n; i++)
        {
            sum += x[i] * y[i];
        }

        return sum;
    }

    private static void Axpy<T>(T s, T* x, T* y, int n) where T : unmanaged, INumber<T>
    {
        int i = 0;
        var vs = new Vector<T>(s);
        for (; i <= n - Vector<T>.Count; i += Vector<T>.Count)
        {
            Vector.Store(Vector.Load(y + i) + (vs * Vector.Load(x + i)), y + i);
        }

        for (; i < n; i++)
        {
            y[i] += s * x[i];
        }
    }

    private static void Scale<T>(T* y, int n, T s) where T : unmanaged, INumber<T>
    {
        for (int i = 0; i < n; i++)
        {
            y[i] *= s;
        }
    }
}
