namespace GradFlow.Kernels;

/// <summary>
/// One row-major GEMM, C = alpha * op(A) * op(B) + beta * C, with its operands as raw pointers so it
/// can be sliced per thread and copied into a parallel-loop body. Pointers stay valid because the
/// public entry point keeps the spans pinned until every slice has finished.
/// </summary>
internal unsafe struct GemmProblem<T> where T : unmanaged
{
    public T* A;
    public T* B;
    public T* C;
    public nint Lda;
    public nint Ldb;
    public nint Ldc;
    public bool TransA;
    public bool TransB;
    public int M;
    public int N;
    public int K;
    public T Alpha;
    public T Beta;

    /// <summary>The sub-problem producing rows [row, row + rows) of C.</summary>
    public readonly GemmProblem<T> Rows(int row, int rows)
    {
        var s = this;
        s.A += TransA ? row : row * Lda;
        s.C += row * Ldc;
        s.M = rows;
        return s;
    }

    /// <summary>The sub-problem producing columns [col, col + cols) of C.</summary>
    public readonly GemmProblem<T> Columns(int col, int cols)
    {
        var s = this;
        s.B += TransB ? col * Ldb : col;
        s.C += col;
        s.N = cols;
        return s;
    }
}
