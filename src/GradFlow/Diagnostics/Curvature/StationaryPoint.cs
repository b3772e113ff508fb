namespace GradFlow.Diagnostics;

/// <summary>What kind of point the weights are at, by the gradient and the two ends of the Hessian's spectrum.</summary>
public enum StationaryPointKind
{
    /// <summary>The gradient is above its tolerance: not a stationary point (the curvature is still reported).</summary>
    NotStationary,

    /// <summary>Near-zero gradient and no direction of negative curvature: a (possibly degenerate) minimum.</summary>
    Minimum,

    /// <summary>Near-zero gradient and a direction of clearly negative curvature: stepping along it lowers the loss.</summary>
    Saddle,

    /// <summary>Near-zero gradient and every eigenvalue near zero: a plateau, where neither gradient nor curvature points anywhere.</summary>
    Flat,
}

/// <summary>The verdict of <see cref="StationaryPoint.Classify"/> and the figures it rests on.</summary>
/// <param name="Kind">The verdict.</param>
/// <param name="Loss">The loss at the weights.</param>
/// <param name="GradientNorm">The gradient's Euclidean norm.</param>
/// <param name="MaxEigenvalue">The largest Hessian eigenvalue.</param>
/// <param name="MinEigenvalue">The smallest Hessian eigenvalue (negative at a saddle).</param>
/// <param name="MinResidual">||H v - lambda_min v||, which bounds the error of <paramref name="MinEigenvalue"/>.</param>
/// <param name="NegativeDirection">At a saddle (or a non-stationary point with negative curvature), the unit eigenvector of the smallest eigenvalue, flat; otherwise null.</param>
/// <param name="HvpCount">Hessian-vector products spent.</param>
/// <param name="Converged">Whether Lanczos met its tolerance at both ends.</param>
/// <param name="Evidence">The verdict in one sentence, with the numbers and thresholds used.</param>
public sealed record StationaryPointReport(StationaryPointKind Kind, double Loss, double GradientNorm, double MaxEigenvalue, double MinEigenvalue,
    double MinResidual, double[]? NegativeDirection, long HvpCount, bool Converged, string Evidence);

/// <summary>
/// Tells a minimum from a saddle from a plateau at a near-zero gradient: only the curvature can (the smallest
/// Hessian eigenvalue is negative at a saddle, every eigenvalue is near zero on a plateau).
/// </summary>
public static class StationaryPoint
{
    /// <summary>
    /// Classifies the point an exact-Hessian operator was made at, with one Lanczos run for both ends of the spectrum.
    /// </summary>
    /// <param name="op">A <see cref="CurvatureKind.Hessian"/> operator (the Gauss-Newton matrix cannot see saddles).</param>
    /// <param name="gradientTolerance">The gradient norm at or below which the point counts as stationary.</param>
    /// <param name="flatTolerance">The |eigenvalue| at or below which curvature counts as zero.</param>
    /// <param name="relativeTolerance">A negative eigenvalue counts only beyond this fraction of the largest |eigenvalue| (and beyond its own residual), so Lanczos's rounding never makes a minimum a saddle.</param>
    /// <param name="maxIterations">Lanczos steps at most.</param>
    /// <param name="seed">Seed of Lanczos's start vector.</param>
    /// <exception cref="ArgumentException">The operator is not a Hessian, or a tolerance is negative.</exception>
    public static StationaryPointReport Classify(CurvatureOperator op, double gradientTolerance = 1e-3, double flatTolerance = 1e-6,
        double relativeTolerance = 1e-3, int maxIterations = Spectrum.DefaultMaxIterations, ulong seed = 0)
    {
        const string Name = nameof(StationaryPoint) + "." + nameof(Classify);
        Guard.NotNull(op, Name, nameof(op));
        if (op.Kind != CurvatureKind.Hessian || op.Scale is not null)
            Guard.ThrowArg(Name, nameof(op), $"needs the unscaled exact Hessian; a {op.Kind} operator{(op.Scale is null ? "" : " with a scaling")} is positive semi-definite or changed, and hides saddles.");
        foreach (var (value, arg) in new[] { (gradientTolerance, nameof(gradientTolerance)), (flatTolerance, nameof(flatTolerance)), (relativeTolerance, nameof(relativeTolerance)) })
            if (!(value >= 0) || !double.IsFinite(value)) Guard.ThrowArg(Name, arg, $"must be non-negative and finite, got {value}.");

        var ends = Spectrum.Extremes(op, tolerance: Math.Min(Spectrum.DefaultTolerance, relativeTolerance), maxIterations: maxIterations, seed: seed);
        double scale = Math.Max(Math.Abs(ends.Max), Math.Abs(ends.Min));
        double negativeBeyond = Math.Max(flatTolerance, Math.Max(relativeTolerance * scale, ends.MinResidual));
        bool negative = ends.Min < -negativeBeyond;
        bool stationary = op.GradientNorm <= gradientTolerance;
        var kind = !stationary ? StationaryPointKind.NotStationary
            : scale <= flatTolerance ? StationaryPointKind.Flat
            : negative ? StationaryPointKind.Saddle
            : StationaryPointKind.Minimum;
        string gradient = $"gradient norm {op.GradientNorm:G3} ({(stationary ? "<=" : ">")} {gradientTolerance:G3})";
        string spectrum = $"eigenvalues from {ends.Min:G4} to {ends.Max:G4} ({ends.HvpCount} Hessian-vector products)";
        string evidence = kind switch
        {
            StationaryPointKind.NotStationary => $"Not stationary: {gradient}; {spectrum}.",
            StationaryPointKind.Flat => $"Flat region: {gradient}, and every eigenvalue within {flatTolerance:G3} of zero ({spectrum}).",
            StationaryPointKind.Saddle => $"Saddle: {gradient}, and a direction of negative curvature {ends.Min:G4} " +
                $"(beyond -{negativeBeyond:G3}; the largest eigenvalue is {ends.Max:G4}); stepping along it lowers the loss.",
            _ => $"Minimum: {gradient}, and no eigenvalue below -{negativeBeyond:G3} ({spectrum})" +
                (ends.Min <= flatTolerance ? "; some directions are flat (a degenerate minimum)." : "."),
        };
        return new StationaryPointReport(kind, op.Loss, op.GradientNorm, ends.Max, ends.Min, ends.MinResidual,
            negative ? ends.MinVector : null, ends.HvpCount, ends.Converged, evidence);
    }
}
