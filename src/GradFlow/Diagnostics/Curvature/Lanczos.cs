using System.Numerics;

namespace GradFlow.Diagnostics;

/// <summary>
/// The Lanczos process with full reorthogonalisation: an orthonormal Krylov basis q_1..q_m of the curvature
/// operator from a start vector, and the tridiagonal T = Q^T C Q whose eigenvalues (Ritz values) approach C's
/// extreme eigenvalues first. Every new vector is orthogonalised twice against the whole basis (classical
/// Gram-Schmidt, "twice is enough"), so no ghost copies of converged eigenvalues appear; memory is one vector
/// of <see cref="CurvatureOperator.Dimension"/> doubles per step (the product's result becomes the next vector).
/// With a <see cref="VectorPool"/> the vectors are rented from it, and <see cref="Release"/> gives them back.
/// </summary>
internal sealed class Lanczos
{
    private readonly CurvatureOperator _op;
    private readonly VectorPool? _pool;
    private readonly List<double[]> _basis = [];
    private readonly List<double> _alpha = [], _beta = [];
    private double[]? _next;

    /// <param name="op">The operator.</param>
    /// <param name="start">The start vector (copied, normalised, into the first basis vector).</param>
    /// <param name="pool">Where the vectors are rented from, or null to allocate them.</param>
    /// <param name="startNorm">The start vector's norm when the caller has it already (its check took it), else null.</param>
    public Lanczos(CurvatureOperator op, ReadOnlySpan<double> start, VectorPool? pool = null, double? startNorm = null)
    {
        _op = op;
        _pool = pool;
        double norm = startNorm ?? Norm(start);
        if (!(norm > 0) || !double.IsFinite(norm)) throw new ArgumentException($"{nameof(Spectrum)}: the start vector is zero or not finite.", nameof(start));
        var q = Rent();
        ScaleInto(start, 1 / norm, q);
        _next = q;
    }

    /// <summary>Steps taken (the size of T).</summary>
    public int Steps => _alpha.Count;

    /// <summary>True once the basis spans an invariant subspace (or the whole space): T's eigenvalues are then exact.</summary>
    public bool Exhausted => _next is null;

    /// <summary>The last off-diagonal beta_m, which scales every Ritz pair's residual.</summary>
    public double LastBeta => _beta.Count == 0 ? 0 : _beta[^1];

    public IReadOnlyList<double[]> Basis => _basis;

    private double[] Rent() => _pool?.Rent() ?? GC.AllocateUninitializedArray<double>(_op.Dimension); // every entry is written before it is read

    /// <summary>One step: one product with the operator.</summary>
    public void Step()
    {
        var q = _next ?? throw new InvalidOperationException("Lanczos: the Krylov space is exhausted.");
        _basis.Add(q);
        _next = null;
        var w = Rent();
        try
        {
            _op.Apply(q, w);
        }
        catch
        {
            _pool?.Return(w);
            throw;
        }
        // Full reorthogonalisation stands in for the three-term recurrence: projecting w = C q off the whole basis
        // removes its q and previous-q parts too, and q's coefficient in the first projection is alpha = q^T C q.
        var (alpha, beta) = Orthogonalise(w);
        _alpha.Add(alpha);
        _beta.Add(beta);
        // An invariant subspace: beta is rounding noise against the operator's scale.
        double scale = 0;
        foreach (var a in _alpha) scale = Math.Max(scale, Math.Abs(a));
        foreach (var b in _beta) scale = Math.Max(scale, b);
        if (_basis.Count >= _op.Dimension || beta <= 1e-12 * scale || beta == 0)
        {
            _pool?.Return(w);
            return;
        }
        Scale(w, 1 / beta);
        _next = w;
    }

    // Elements of w per block: 16 KB, which stays in L1 while every basis vector's block streams past it.
    private const int OrthBlock = 2048;

    // Classical Gram-Schmidt twice ("twice is enough"; Giraud, Langou and Rozloznik 2005), in three sweeps over w and the
    // basis instead of one dot and one update per basis vector per pass (each reading all of w): the coefficients on every
    // basis vector; w minus their combination, block by block, each updated block's second coefficients taken while its
    // basis blocks are still in cache; w minus the second combination. The basis, not w, is most of the traffic: four
    // sweeps of it become three. On 1.86M doubles with 3-7 basis vectors (the mlp's sharpness probe) this took 0.68-0.75x
    // the time of the projection-per-vector loop (both loops alternated in a standalone harness, 35 rounds, loaded machine). Returns the first coefficient on the newest vector, q^T C q,
    // and the norm of the orthogonalised w, summed in the third sweep instead of a pass of its own.
    private (double Alpha, double Norm) Orthogonalise(double[] w)
    {
        int m = _basis.Count;
        var first = new double[m];
        var second = new double[m];
        for (int start = 0; start < w.Length; start += OrthBlock)
        {
            var wb = new ReadOnlySpan<double>(w, start, Math.Min(OrthBlock, w.Length - start));
            for (int j = 0; j < m; j++) first[j] += Dot(new ReadOnlySpan<double>(_basis[j], start, wb.Length), wb);
        }
        for (int start = 0; start < w.Length; start += OrthBlock)
        {
            var wb = new Span<double>(w, start, Math.Min(OrthBlock, w.Length - start));
            for (int j = 0; j < m; j++) Axpy(-first[j], new ReadOnlySpan<double>(_basis[j], start, wb.Length), wb);
            for (int j = 0; j < m; j++) second[j] += Dot(new ReadOnlySpan<double>(_basis[j], start, wb.Length), wb);
        }
        double squares = 0;
        for (int start = 0; start < w.Length; start += OrthBlock)
        {
            var wb = new Span<double>(w, start, Math.Min(OrthBlock, w.Length - start));
            for (int j = 0; j < m; j++) Axpy(-second[j], new ReadOnlySpan<double>(_basis[j], start, wb.Length), wb);
            squares += Dot(wb, wb);
        }
        return (first[m - 1], Math.Sqrt(squares));
    }

    /// <summary>The Ritz values (ascending) and the eigenvectors of T (columns).</summary>
    public (double[] Values, double[,] Vectors) Ritz()
    {
        int m = _alpha.Count;
        var t = new double[m, m];
        for (int i = 0; i < m; i++)
        {
            t[i, i] = _alpha[i];
            if (i + 1 < m) t[i, i + 1] = t[i + 1, i] = _beta[i];
        }
        return SymmetricEigen.Jacobi(t);
    }

    /// <summary>The residual norm ||C x - theta x|| of Ritz pair k: beta_m times the last entry of T's eigenvector.</summary>
    public double Residual(double[,] y, int k) => Exhausted ? 0 : Math.Abs(LastBeta * y[Steps - 1, k]);

    /// <summary>
    /// The Ritz vector Q y_k, normalised (into <paramref name="into"/>, or a new array): one blocked pass that sums the
    /// basis vectors' blocks while they are in cache, and a scaling pass only when rounding left the norm off 1.
    /// </summary>
    public double[] RitzVector(double[,] y, int k, double[]? into = null)
    {
        var x = into ?? GC.AllocateUninitializedArray<double>(_op.Dimension); // every entry is written
        if (x.Length != _op.Dimension) throw new ArgumentException($"{nameof(Lanczos)}: the output has {x.Length} entries for {_op.Dimension}.", nameof(into));
        double squares = 0;
        for (int start = 0; start < x.Length; start += OrthBlock)
        {
            var xb = new Span<double>(x, start, Math.Min(OrthBlock, x.Length - start));
            ScaleInto(new ReadOnlySpan<double>(_basis[0], start, xb.Length), y[0, k], xb);
            for (int l = 1; l < _basis.Count; l++) Axpy(y[l, k], new ReadOnlySpan<double>(_basis[l], start, xb.Length), xb);
            squares += Dot(xb, xb);
        }
        double norm = Math.Sqrt(squares);
        if (Math.Abs(norm - 1) > 1e-14) Scale(x, 1 / norm);
        return x;
    }

    /// <summary>Gives the basis (and a pending next vector) back to the pool; the process can take no more steps.</summary>
    public void Release()
    {
        if (_pool is null) return;
        foreach (var q in _basis) _pool.Return(q);
        _basis.Clear();
        if (_next is { } next) _pool.Return(next);
        _next = null;
    }

    // Reorthogonalisation is m dot products and m updates of full-length vectors a step: vectorised.
    internal static double Dot(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        int n = a.Length, w = Vector<double>.Count, i = 0;
        var acc = Vector<double>.Zero;
        for (; i <= n - w; i += w) acc += new Vector<double>(a.Slice(i)) * new Vector<double>(b.Slice(i));
        double s = Vector.Sum(acc);
        for (; i < n; i++) s += a[i] * b[i];
        return s;
    }

    internal static double Norm(ReadOnlySpan<double> a) => Math.Sqrt(Dot(a, a));

    internal static void Axpy(double alpha, ReadOnlySpan<double> x, Span<double> y)
    {
        int n = y.Length, w = Vector<double>.Count, i = 0;
        var va = new Vector<double>(alpha);
        for (; i <= n - w; i += w) (new Vector<double>(y.Slice(i)) + va * new Vector<double>(x.Slice(i))).CopyTo(y.Slice(i));
        for (; i < n; i++) y[i] += alpha * x[i];
    }

    private static void ScaleInto(ReadOnlySpan<double> x, double s, Span<double> result)
    {
        int n = x.Length, w = Vector<double>.Count, i = 0;
        var vs = new Vector<double>(s);
        for (; i <= n - w; i += w) (new Vector<double>(x.Slice(i)) * vs).CopyTo(result.Slice(i));
        for (; i < n; i++) result[i] = x[i] * s;
    }

    private static void Scale(Span<double> x, double s)
    {
        int n = x.Length, w = Vector<double>.Count, i = 0;
        var vs = new Vector<double>(s);
        for (; i <= n - w; i += w) (new Vector<double>(x.Slice(i)) * vs).CopyTo(x.Slice(i));
        for (; i < n; i++) x[i] *= s;
    }
}
