namespace GradFlow.Diagnostics;

/// <summary>
/// Eigenvalues and eigenvectors of a small dense symmetric matrix by cyclic Jacobi rotations: slow (n^3 a sweep)
/// but accurate to a few ulps of the matrix norm, which the Lanczos tridiagonals (tens of rows) and the exact
/// reference Hessians of the tests need.
/// </summary>
internal static class SymmetricEigen
{
    /// <summary>Eigenvalues ascending; eigenvector k is column k of the matrix returned.</summary>
    public static (double[] Values, double[,] Vectors) Jacobi(double[,] matrix, int maxSweeps = 100)
    {
        int n = matrix.GetLength(0);
        if (matrix.GetLength(1) != n) throw new ArgumentException($"{nameof(SymmetricEigen)}: the matrix is {n}x{matrix.GetLength(1)}, not square.", nameof(matrix));
        var a = (double[,])matrix.Clone();
        var v = new double[n, n];
        double frob = 0;
        for (int i = 0; i < n; i++)
        {
            v[i, i] = 1;
            for (int j = 0; j < n; j++) frob += a[i, j] * a[i, j];
        }
        // Off-diagonal mass below (n * eps)^2 of the whole: the diagonal is then exact to rounding.
        double stop = frob * 1e-30;
        for (int sweep = 0; sweep < maxSweeps; sweep++)
        {
            double off = 0;
            for (int p = 0; p < n; p++)
                for (int q = p + 1; q < n; q++) off += a[p, q] * a[p, q];
            if (off <= stop) break;
            for (int p = 0; p < n; p++)
                for (int q = p + 1; q < n; q++)
                    if (a[p, q] != 0) Rotate(a, v, p, q, n);
        }
        var order = Enumerable.Range(0, n).OrderBy(i => a[i, i]).ToArray();
        var values = new double[n];
        var vectors = new double[n, n];
        for (int k = 0; k < n; k++)
        {
            values[k] = a[order[k], order[k]];
            for (int i = 0; i < n; i++) vectors[i, k] = v[i, order[k]];
        }
        return (values, vectors);
    }

    // The rotation that zeroes a[p, q] (Golub and Van Loan, Algorithm 8.5.1): t = tan(phi) is the smaller root of
    // t^2 + 2 theta t - 1 = 0, so the rotation angle stays below pi/4 and the sweep converges quadratically.
    private static void Rotate(double[,] a, double[,] v, int p, int q, int n)
    {
        double theta = (a[q, q] - a[p, p]) / (2 * a[p, q]);
        double t = Math.Abs(theta) > 1e150 ? 0.5 / theta : Math.Sign(theta == 0 ? 1 : theta) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
        double c = 1 / Math.Sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < n; k++)
        {
            double akp = a[k, p], akq = a[k, q];
            a[k, p] = c * akp - s * akq;
            a[k, q] = s * akp + c * akq;
        }
        for (int k = 0; k < n; k++)
        {
            double apk = a[p, k], aqk = a[q, k];
            a[p, k] = c * apk - s * aqk;
            a[q, k] = s * apk + c * aqk;
        }
        for (int k = 0; k < n; k++)
        {
            double vkp = v[k, p], vkq = v[k, q];
            v[k, p] = c * vkp - s * vkq;
            v[k, q] = s * vkp + c * vkq;
        }
        a[p, q] = a[q, p] = 0;
    }
}
