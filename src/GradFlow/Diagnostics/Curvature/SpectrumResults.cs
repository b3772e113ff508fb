namespace GradFlow.Diagnostics;

/// <summary>
/// Eigenpairs of a curvature operator found by <see cref="Spectrum"/>. Vectors are flat and unit-norm, over the
/// operator's parameters in order (<see cref="CurvatureOperator.ToTensors"/> reshapes them); residuals are
/// ||C v - lambda v||, which bound each eigenvalue's error.
/// </summary>
/// <param name="Values">The eigenvalues, largest first for the top of the spectrum, smallest first for the bottom.</param>
/// <param name="Vectors">One unit eigenvector per value.</param>
/// <param name="Residuals">||C v - lambda v|| per pair.</param>
/// <param name="Iterations">Lanczos steps (or power iterations) taken.</param>
/// <param name="HvpCount">Curvature-vector products spent.</param>
/// <param name="Converged">Whether every residual met the tolerance within the iteration budget.</param>
public sealed record EigenPairs(double[] Values, double[][] Vectors, double[] Residuals, int Iterations, long HvpCount, bool Converged);

/// <summary>The two ends of a spectrum from one Lanczos run.</summary>
/// <param name="Max">The largest eigenvalue.</param>
/// <param name="Min">The smallest eigenvalue.</param>
/// <param name="MaxVector">Its unit eigenvector (flat).</param>
/// <param name="MinVector">The smallest eigenvalue's unit eigenvector (flat).</param>
/// <param name="MaxResidual">||C v - lambda v|| for the largest.</param>
/// <param name="MinResidual">||C v - lambda v|| for the smallest.</param>
/// <param name="Iterations">Lanczos steps taken.</param>
/// <param name="HvpCount">Curvature-vector products spent.</param>
/// <param name="Converged">Whether both residuals met the tolerance.</param>
public sealed record SpectrumExtremes(double Max, double Min, double[] MaxVector, double[] MinVector, double MaxResidual, double MinResidual,
    int Iterations, long HvpCount, bool Converged);

/// <summary>
/// A Hutchinson estimate of the trace, E[z^T C z] over Rademacher z, with its standard error (the sample
/// standard deviation over the square root of the sample count): the true trace lies within two standard
/// errors in about 95% of runs.
/// </summary>
/// <param name="Trace">The mean of z^T C z over the samples.</param>
/// <param name="StandardError">The standard error of that mean (0 for one sample or identical samples).</param>
/// <param name="Samples">The number of vectors used.</param>
/// <param name="HvpCount">Curvature-vector products spent (one per sample).</param>
public sealed record TraceEstimate(double Trace, double StandardError, int Samples, long HvpCount);

/// <summary>
/// A spectral density by stochastic Lanczos quadrature (Ubaru, Chen and Saad 2017; PyHessian): per random probe,
/// the Ritz values of a Lanczos run are the nodes of a Gauss quadrature of the spectral measure, and the squared
/// first components of T's eigenvectors its weights (each probe's weights sum to one).
/// </summary>
/// <param name="Nodes">Per probe, the quadrature nodes (Ritz values, ascending).</param>
/// <param name="Weights">Per probe, the weight of each node.</param>
/// <param name="Steps">Lanczos steps per probe (the largest taken).</param>
/// <param name="HvpCount">Curvature-vector products spent.</param>
public sealed record SpectralDensity(double[][] Nodes, double[][] Weights, int Steps, long HvpCount)
{
    /// <summary>The smallest node over all probes.</summary>
    public double Min => Nodes.Min(n => n.Length == 0 ? double.PositiveInfinity : n[0]);

    /// <summary>The largest node over all probes.</summary>
    public double Max => Nodes.Max(n => n.Length == 0 ? double.NegativeInfinity : n[^1]);

    /// <summary>
    /// The density at <paramref name="x"/>, each node smoothed by a Gaussian of width <paramref name="sigma"/> and
    /// the probes averaged (integrates to one).
    /// </summary>
    public double[] Evaluate(IReadOnlyList<double> x, double sigma)
    {
        Guard.NotNull(x, nameof(SpectralDensity), nameof(x));
        if (!(sigma > 0) || !double.IsFinite(sigma)) Guard.ThrowArg(nameof(SpectralDensity), nameof(sigma), $"must be positive and finite, got {sigma}.");
        var result = new double[x.Count];
        double norm = 1 / (Nodes.Length * sigma * Math.Sqrt(2 * Math.PI));
        for (int i = 0; i < x.Count; i++)
        {
            double s = 0;
            for (int p = 0; p < Nodes.Length; p++)
                for (int k = 0; k < Nodes[p].Length; k++)
                {
                    double z = (x[i] - Nodes[p][k]) / sigma;
                    s += Weights[p][k] * Math.Exp(-0.5 * z * z);
                }
            result[i] = s * norm;
        }
        return result;
    }

    /// <summary>
    /// The density on <paramref name="points"/> evenly spaced values from a little below <see cref="Min"/> to a little
    /// above <see cref="Max"/>, smoothed by sigma = <paramref name="relativeSigma"/> times that width.
    /// </summary>
    public (double[] X, double[] Density) OnGrid(int points = 1000, double relativeSigma = 0.01)
    {
        if (points < 2) Guard.ThrowArg(nameof(SpectralDensity), nameof(points), $"needs at least 2 points, got {points}.");
        if (!(relativeSigma > 0) || !double.IsFinite(relativeSigma)) Guard.ThrowArg(nameof(SpectralDensity), nameof(relativeSigma), $"must be positive and finite, got {relativeSigma}.");
        double width = Math.Max(Max - Min, 1e-12 * Math.Max(1, Math.Abs(Max)));
        double sigma = relativeSigma * width, lo = Min - 3 * sigma, hi = Max + 3 * sigma;
        var x = new double[points];
        for (int i = 0; i < points; i++) x[i] = lo + (hi - lo) * i / (points - 1);
        return (x, Evaluate(x, sigma));
    }
}
