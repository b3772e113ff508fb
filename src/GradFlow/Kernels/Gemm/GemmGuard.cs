namespace GradFlow.Kernels;

/// <summary>Argument checks for <see cref="Gemm"/>; messages name the op, the argument and the sizes.</summary>
internal static class GemmGuard
{
    public static void Check(bool transA, bool transB, int m, int n, int k,
        int aLength, int lda, int bLength, int ldb, int cLength, int ldc)
    {
        if (m < 0 || n < 0 || k < 0)
        {
            throw new ArgumentException($"Gemm: sizes must be non-negative, got m={m}, n={n}, k={k}.",
                m < 0 ? "m" : n < 0 ? "n" : "k");
        }

        CheckOperand("a", "lda", transA ? k : m, transA ? m : k, aLength, lda, m, n, k);
        CheckOperand("b", "ldb", transB ? n : k, transB ? k : n, bLength, ldb, m, n, k);
        CheckOperand("c", "ldc", m, n, cLength, ldc, m, n, k);
    }

    private static void CheckOperand(string name, string ldName, int rows, int cols, int length, int ld,
        int m, int n, int k)
    {
        if (ld < Math.Max(1, cols))
        {
            throw new ArgumentException(
                $"Gemm: {ldName}={ld} is smaller than the {cols} columns of {name} ({rows} x {cols}; m={m}, n={n}, k={k}).",
                ldName);
        }

        long needed = rows == 0 || cols == 0 ? 0 : ((long)(rows - 1) * ld) + cols;
        if (length < needed)
        {
            throw new ArgumentException(
                $"Gemm: {name} has length {length} but a {rows} x {cols} matrix with {ldName}={ld} needs {needed} (m={m}, n={n}, k={k}).",
                name);
        }
    }
}
