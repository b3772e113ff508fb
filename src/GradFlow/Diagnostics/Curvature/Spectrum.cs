namespace GradFlow.Diagnostics;

/// <summary>
/// Eigenvalues, trace and spectral density of a <see cref="CurvatureOperator"/>, from products alone (PyHessian's
/// instruments). Lanczos with full reorthogonalisation finds both ends of the spectrum; power iteration is the
/// independent check; Hutchinson estimates the trace with an error bar; stochastic Lanczos quadrature the density.
/// Defaults follow PyHessian (100 iterations, relative tolerance 1e-3) and need no tuning; every result carries the
/// number of products it spent. Same seed, same operator: same bits.
/// </summary>
public static class Spectrum
{
    /// <summary>The default iteration budget (PyHessian's).</summary>
    public const int DefaultMaxIterations = 100;

    /// <summary>The default relative tolerance: residuals ||C v - lambda v|| at most this times the largest |lambda| found.</summary>
    public const double DefaultTolerance = 1e-3;

    /// <summary>
    /// The <paramref name="k"/> largest (algebraic) eigenvalues and their eigenvectors, by Lanczos. A Ritz pair is
    /// accepted when its residual is at most <paramref name="tolerance"/> times the largest |Ritz value|; the
    /// eigenvalue's error is then at most that (and usually its square over the gap).
    /// </summary>
    /// <param name="op">The curvature operator.</param>
    /// <param name="k">How many eigenpairs (1 to the dimension).</param>
    /// <param name="tolerance">Relative residual tolerance.</param>
    /// <param name="maxIterations">Lanczos steps at most (one product each); memory is one parameter-sized vector of doubles a step.</param>
    /// <param name="seed">Seed of the random start vector.</param>
    /// <param name="start">A start vector instead of a random one (a previous eigenvector warm-starts a probe).</param>
    public static EigenPairs TopEigenvalues(CurvatureOperator op, int k = 1, double tolerance = DefaultTolerance, int maxIterations = DefaultMaxIterations,
        ulong seed = 0, IReadOnlyList<double>? start = null) =>
        Ends(op, k, tolerance, maxIterations, seed, start, top: true, nameof(TopEigenvalues));

    /// <summary>The <paramref name="k"/> smallest (algebraic, so most negative) eigenvalues, by Lanczos; arguments as <see cref="TopEigenvalues"/>.</summary>
    public static EigenPairs SmallestEigenvalues(CurvatureOperator op, int k = 1, double tolerance = DefaultTolerance, int maxIterations = DefaultMaxIterations,
        ulong seed = 0, IReadOnlyList<double>? start = null) =>
        Ends(op, k, tolerance, maxIterations, seed, start, top: false, nameof(SmallestEigenvalues));

    /// <summary>The largest and the smallest eigenvalue from one Lanczos run (both ends converge together).</summary>
    public static SpectrumExtremes Extremes(CurvatureOperator op, double tolerance = DefaultTolerance, int maxIterations = DefaultMaxIterations,
        ulong seed = 0, IReadOnlyList<double>? start = null)
    {
        CheckCommon(op, tolerance, maxIterations, nameof(Extremes));
        long before = op.ProductCount;
        var (lz, values, y, converged) = Run(op, Start(op, seed, start, nameof(Extremes)), tolerance, maxIterations,
            m => m == 1 ? [0] : [0, m - 1], pool: null);
        int top = values.Length - 1;
        return new SpectrumExtremes(values[top], values[0], lz.RitzVector(y, top), lz.RitzVector(y, 0), lz.Residual(y, top), lz.Residual(y, 0),
            lz.Steps, op.ProductCount - before, converged);
    }

    /// <summary>
    /// The eigenvalue of largest magnitude by power iteration (PyHessian's method, a check on Lanczos): stops when
    /// the Rayleigh quotient changes by at most <paramref name="tolerance"/> relative.
    /// </summary>
    public static EigenPairs PowerIteration(CurvatureOperator op, double tolerance = DefaultTolerance, int maxIterations = DefaultMaxIterations,
        ulong seed = 0, IReadOnlyList<double>? start = null)
    {
        CheckCommon(op, tolerance, maxIterations, nameof(PowerIteration));
        long before = op.ProductCount;
        var (s0, n0) = Start(op, seed, start, nameof(PowerIteration));
        var v = (double[])s0.Clone(); // iterated in place; the caller's start stays as it was
        for (int i = 0; i < v.Length; i++) v[i] /= n0;
        double lambda = 0, residual = double.PositiveInfinity;
        bool converged = false;
        int it = 0;
        while (it < maxIterations)
        {
            var w = op.Apply(v);
            it++;
            double next = Lanczos.Dot(v, w);
            var r = (double[])w.Clone();
            Lanczos.Axpy(-next, v, r);
            residual = Lanczos.Norm(r);
            double norm = Lanczos.Norm(w);
            bool settled = it > 1 && Math.Abs(next - lambda) <= tolerance * Math.Abs(next);
            lambda = next;
            if (norm == 0) { converged = true; break; }
            for (int i = 0; i < v.Length; i++) v[i] = w[i] / norm;
            if (settled) { converged = true; break; }
        }
        return new EigenPairs([lambda], [v], [residual], it, op.ProductCount - before, converged);
    }

    /// <summary>
    /// The trace by Hutchinson's estimator with Rademacher vectors: at least <paramref name="minSamples"/>, then until
    /// the standard error is at most <paramref name="relativeTolerance"/> times |trace|, at most <paramref name="maxSamples"/>.
    /// </summary>
    public static TraceEstimate Trace(CurvatureOperator op, int maxSamples = DefaultMaxIterations, double relativeTolerance = 1e-2, int minSamples = 10, ulong seed = 0)
    {
        Guard.NotNull(op, nameof(Trace), nameof(op));
        if (maxSamples < 1) Guard.ThrowArg(nameof(Trace), nameof(maxSamples), $"must be at least 1, got {maxSamples}.");
        if (minSamples < 1 || minSamples > maxSamples) Guard.ThrowArg(nameof(Trace), nameof(minSamples), $"must be 1 to maxSamples ({maxSamples}), got {minSamples}.");
        if (!(relativeTolerance >= 0)) Guard.ThrowArg(nameof(Trace), nameof(relativeTolerance), $"must be non-negative, got {relativeTolerance}.");
        var gen = new Generator(seed);
        var samples = new List<double>();
        long before = op.ProductCount;
        while (samples.Count < maxSamples)
        {
            var z = Rademacher(op.Dimension, gen);
            samples.Add(Lanczos.Dot(z, op.Apply(z)));
            if (samples.Count >= minSamples)
            {
                var (mean, se) = MeanAndError(samples);
                if (se <= relativeTolerance * Math.Abs(mean)) break;
            }
        }
        var (m, s) = MeanAndError(samples);
        return new TraceEstimate(m, s, samples.Count, op.ProductCount - before);
    }

    /// <summary>The Hutchinson trace over given probe vectors (e.g. the same Rademacher vectors as a reference computation).</summary>
    public static TraceEstimate Trace(CurvatureOperator op, IReadOnlyList<IReadOnlyList<double>> vectors)
    {
        Guard.NotNull(op, nameof(Trace), nameof(op));
        Guard.NotNull(vectors, nameof(Trace), nameof(vectors));
        if (vectors.Count == 0) Guard.ThrowArg(nameof(Trace), nameof(vectors), "no vectors were given.");
        long before = op.ProductCount;
        var samples = new List<double>();
        foreach (var v in vectors)
        {
            Guard.NotNull(v, nameof(Trace), nameof(vectors));
            var z = v.ToArray();
            if (z.Length != op.Dimension) Guard.ThrowArg(nameof(Trace), nameof(vectors), $"a vector has {z.Length} entries for {op.Dimension} parameters.");
            samples.Add(Lanczos.Dot(z, op.Apply(z)));
        }
        var (m, s) = MeanAndError(samples);
        return new TraceEstimate(m, s, samples.Count, op.ProductCount - before);
    }

    /// <summary>
    /// The spectral density by stochastic Lanczos quadrature: <paramref name="probes"/> Rademacher start vectors, each
    /// run for <paramref name="steps"/> Lanczos steps (PyHessian: 100 steps, one probe).
    /// </summary>
    public static SpectralDensity Density(CurvatureOperator op, int steps = DefaultMaxIterations, int probes = 1, ulong seed = 0)
    {
        Guard.NotNull(op, nameof(Density), nameof(op));
        if (steps < 1) Guard.ThrowArg(nameof(Density), nameof(steps), $"must be at least 1, got {steps}.");
        if (probes < 1) Guard.ThrowArg(nameof(Density), nameof(probes), $"must be at least 1, got {probes}.");
        var gen = new Generator(seed);
        long before = op.ProductCount;
        var nodes = new double[probes][];
        var weights = new double[probes][];
        int most = 0;
        for (int p = 0; p < probes; p++)
        {
            var lz = new Lanczos(op, Rademacher(op.Dimension, gen).AsSpan());
            while (!lz.Exhausted && lz.Steps < steps) lz.Step();
            var (values, y) = lz.Ritz();
            nodes[p] = values;
            weights[p] = new double[values.Length];
            for (int k = 0; k < values.Length; k++) weights[p][k] = y[0, k] * y[0, k];
            most = Math.Max(most, lz.Steps);
        }
        return new SpectralDensity(nodes, weights, most, op.ProductCount - before);
    }

    // The sharpness probe's rule: the top pair's residual at most tolerance times the top Ritz value itself (when
    // positive), so "within 1% of lambda_max" holds even where the negative end of the spectrum is the larger in
    // magnitude; TopEigenvalues measures against the largest |Ritz value|.
    // With a pool (the probe's), Lanczos's vectors are rented from it and given back, and the eigenvector is a rented one
    // the caller owns (and may return).
    internal static EigenPairs TopEigenvalue(CurvatureOperator op, double tolerance, int maxIterations, ulong seed, IReadOnlyList<double>? start,
        VectorPool? pool = null) =>
        Ends(op, 1, tolerance, maxIterations, seed, start, top: true, nameof(TopEigenvalues), relativeToTop: true, pool);

    private static EigenPairs Ends(CurvatureOperator op, int k, double tolerance, int maxIterations, ulong seed, IReadOnlyList<double>? start, bool top, string name,
        bool relativeToTop = false, VectorPool? pool = null)
    {
        CheckCommon(op, tolerance, maxIterations, name);
        if (k < 1 || k > op.Dimension) Guard.ThrowArg(name, nameof(k), $"must be 1 to the dimension ({op.Dimension}), got {k}.");
        if (k > maxIterations) Guard.ThrowArg(name, nameof(k), $"{k} eigenpairs need at least as many iterations; maxIterations is {maxIterations}.");
        long before = op.ProductCount;
        var (lz, values, y, converged) = Run(op, Start(op, seed, start, name), tolerance, maxIterations,
            m => m < k ? [] : [.. Enumerable.Range(0, k).Select(i => top ? m - 1 - i : i)], pool, relativeToTop);
        int count = Math.Min(k, values.Length);
        var idx = Enumerable.Range(0, count).Select(i => top ? values.Length - 1 - i : i).ToArray();
        var result = new EigenPairs([.. idx.Select(i => values[i])], [.. idx.Select(i => lz.RitzVector(y, i, pool?.Rent()))], [.. idx.Select(i => lz.Residual(y, i))],
            lz.Steps, op.ProductCount - before, converged && count == k);
        lz.Release();
        return result;
    }

    private static (Lanczos, double[], double[,], bool) Run(CurvatureOperator op, (double[] Vector, double Norm) start, double tolerance, int maxIterations,
        Func<int, int[]> wanted, VectorPool? pool, bool relativeToTop = false)
    {
        var lz = new Lanczos(op, start.Vector, pool, start.Norm);
        try
        {
            return Steps(lz, tolerance, maxIterations, wanted, relativeToTop);
        }
        catch
        {
            lz.Release();
            throw;
        }
    }

    private static (Lanczos, double[], double[,], bool) Steps(Lanczos lz, double tolerance, int maxIterations, Func<int, int[]> wanted, bool relativeToTop)
    {
        while (true)
        {
            lz.Step();
            var (values, y) = lz.Ritz();
            var idx = wanted(values.Length);
            double scale = relativeToTop && values[^1] > 0 ? values[^1] : Math.Max(Math.Abs(values[0]), Math.Abs(values[^1]));
            bool converged = idx.Length > 0 && idx.All(i => lz.Residual(y, i) <= tolerance * scale);
            if (converged || lz.Exhausted || lz.Steps >= maxIterations) return (lz, values, y, converged || (lz.Exhausted && idx.Length > 0));
        }
    }

    private static void CheckCommon(CurvatureOperator op, double tolerance, int maxIterations, string name)
    {
        Guard.NotNull(op, name, nameof(op));
        if (!(tolerance >= 0) || !double.IsFinite(tolerance)) Guard.ThrowArg(name, nameof(tolerance), $"must be non-negative and finite, got {tolerance}.");
        if (maxIterations < 1) Guard.ThrowArg(name, nameof(maxIterations), $"must be at least 1, got {maxIterations}.");
    }

    // The start vector as it is, with its norm (Lanczos copies it, normalised, into its first basis vector): an array is
    // read in place, and its norm, taken for the check, is not taken again.
    private static (double[] Vector, double Norm) Start(CurvatureOperator op, ulong seed, IReadOnlyList<double>? start, string name)
    {
        if (start is not null)
        {
            if (start.Count != op.Dimension) Guard.ThrowArg(name, nameof(start), $"has {start.Count} entries for {op.Dimension} parameters.");
            var s = start as double[] ?? start.ToArray();
            double n = Lanczos.Norm(s);
            if (!(n > 0) || !double.IsFinite(n)) Guard.ThrowArg(name, nameof(start), "is zero or not finite.");
            return (s, n);
        }
        var gen = new Generator(seed);
        var v = new double[op.Dimension];
        for (int i = 0; i < v.Length; i++) v[i] = gen.NextNormal();
        return (v, Lanczos.Norm(v));
    }

    internal static double[] Rademacher(int n, Generator gen)
    {
        var z = new double[n];
        ulong bits = 0;
        for (int i = 0; i < n; i++)
        {
            if ((i & 63) == 0) bits = gen.NextUInt64();
            z[i] = (bits & 1) == 0 ? 1 : -1;
            bits >>= 1;
        }
        return z;
    }

    private static (double Mean, double StandardError) MeanAndError(List<double> samples)
    {
        double mean = samples.Average();
        if (samples.Count < 2) return (mean, 0);
        double ss = 0;
        foreach (var s in samples) ss += (s - mean) * (s - mean);
        return (mean, Math.Sqrt(ss / (samples.Count - 1) / samples.Count));
    }
}
