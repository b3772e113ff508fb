using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GradFlow.Kernels;

/// <summary>
/// Vectorised exp, log, tanh and sigmoid for every vector width and both precisions. Double exp and log are
/// the runtime's own (ported from AMD AOCL-LibM). Double tanh uses Cephes' rational below |x| = 0.625 and
/// exp above; double sigmoid is built on e^-|x| so it never overflows. Float exp, tanh and sigmoid are
/// float-native (VectorMath.Single.cs). Float log evaluates the double one on widened lanes and rounds once:
/// the runtime's float log measured 2 ulp near 0.65, the widened form gives the correctly rounded float on a
/// sweep over the whole range (the test allows 1 ulp for double rounding), at about half the float throughput.
/// </summary>
internal static partial class VectorMath
{
    // tanh(x) = x + x^3 P(x^2) / Q(x^2) for |x| < 0.625 (Cephes tanh.c; relative error ~2e-17 there).
    private const double TanhP0 = -9.64399179425052238628e-1;
    private const double TanhP1 = -9.92877231001918586564e1;
    private const double TanhP2 = -1.61468768441708447952e3;
    private const double TanhQ0 = 1.12811678491632931402e2;
    private const double TanhQ1 = 2.23548839060100448583e3;
    private const double TanhQ2 = 4.84406305325125486048e3;
    private const double TanhRationalLimit = 0.625;

    // tanh(|x|) rounds to 1 in double beyond 19.06; clamping keeps e^(2|x|) finite.
    private const double TanhSaturation = 20;

    /// <summary>e^x per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Exp(Vector512<double> x) => Vector512.Exp(x);

    /// <summary>Natural logarithm per lane (NaN below 0, -inf at 0), evaluated in double and rounded once.</summary>
    public static Vector512<float> Log(Vector512<float> x)
    {
        var (lo, hi) = Vector512.Widen(x);
        return Vector512.Narrow(Vector512.Log(lo), Vector512.Log(hi));
    }

    /// <summary>Natural logarithm per lane (NaN below 0, -inf at 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Log(Vector512<double> x) => Vector512.Log(x);

    /// <summary>Hyperbolic tangent per lane: exact sign, tanh(x) = x for tiny x, ±1 from |x| ≈ 19.1, NaN kept.</summary>
    public static Vector512<double> Tanh(Vector512<double> x)
    {
        // Both branches work on |x| and the sign is put back last, so tanh(-x) = -tanh(x) bit for bit
        // and tanh(-0) = -0.
        var ax = Vector512.Abs(x);
        var s = ax * ax;
        var p = (((s * Vector512.Create(TanhP0)) + Vector512.Create(TanhP1)) * s) + Vector512.Create(TanhP2);
        var q = ((((s + Vector512.Create(TanhQ0)) * s) + Vector512.Create(TanhQ1)) * s) + Vector512.Create(TanhQ2);
        var rational = ax + (ax * (s * (p / q)));

        // 1 - 2 / (e^(2|x|) + 1) loses nothing to cancellation once |x| >= 0.625 (the result is >= 0.55).
        var e = Vector512.Exp(Vector512.Min(ax, Vector512.Create(TanhSaturation)) * Vector512.Create(2.0));
        var viaExp = Vector512<double>.One - (Vector512.Create(2.0) / (e + Vector512<double>.One));
        var useRational = Vector512.LessThan(ax, Vector512.Create(TanhRationalLimit)) | ~Vector512.Equals(x, x);
        return Vector512.ConditionalSelect(useRational, rational, viaExp) | (x & Vector512.Create(-0.0));
    }

    /// <summary>Logistic sigmoid per lane, denormal results for x down to -745 included.</summary>
    public static Vector512<double> Sigmoid(Vector512<double> x)
    {
        // With e = e^-|x| (never overflows): 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0.
        var e = Vector512.Exp(-Vector512.Abs(x));
        var denominator = Vector512<double>.One + e;
        var numerator = Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<double>.Zero), e, Vector512<double>.One);
        return numerator / denominator;
    }

    /// <summary>e^x per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<double> Exp(Vector256<double> x) => Vector256.Exp(x);

    /// <summary>Natural logarithm per lane (NaN below 0, -inf at 0), evaluated in double and rounded once.</summary>
    public static Vector256<float> Log(Vector256<float> x)
    {
        var (lo, hi) = Vector256.Widen(x);
        return Vector256.Narrow(Vector256.Log(lo), Vector256.Log(hi));
    }

    /// <summary>Natural logarithm per lane (NaN below 0, -inf at 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<double> Log(Vector256<double> x) => Vector256.Log(x);

    /// <summary>Hyperbolic tangent per lane: exact sign, tanh(x) = x for tiny x, ±1 from |x| ≈ 19.1, NaN kept.</summary>
    public static Vector256<double> Tanh(Vector256<double> x)
    {
        // Both branches work on |x| and the sign is put back last, so tanh(-x) = -tanh(x) bit for bit
        // and tanh(-0) = -0.
        var ax = Vector256.Abs(x);
        var s = ax * ax;
        var p = (((s * Vector256.Create(TanhP0)) + Vector256.Create(TanhP1)) * s) + Vector256.Create(TanhP2);
        var q = ((((s + Vector256.Create(TanhQ0)) * s) + Vector256.Create(TanhQ1)) * s) + Vector256.Create(TanhQ2);
        var rational = ax + (ax * (s * (p / q)));

        // 1 - 2 / (e^(2|x|) + 1) loses nothing to cancellation once |x| >= 0.625 (the result is >= 0.55).
        var e = Vector256.Exp(Vector256.Min(ax, Vector256.Create(TanhSaturation)) * Vector256.Create(2.0));
        var viaExp = Vector256<double>.One - (Vector256.Create(2.0) / (e + Vector256<double>.One));
        var useRational = Vector256.LessThan(ax, Vector256.Create(TanhRationalLimit)) | ~Vector256.Equals(x, x);
        return Vector256.ConditionalSelect(useRational, rational, viaExp) | (x & Vector256.Create(-0.0));
    }

    /// <summary>Logistic sigmoid per lane, denormal results for x down to -745 included.</summary>
    public static Vector256<double> Sigmoid(Vector256<double> x)
    {
        // With e = e^-|x| (never overflows): 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0.
        var e = Vector256.Exp(-Vector256.Abs(x));
        var denominator = Vector256<double>.One + e;
        var numerator = Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256<double>.Zero), e, Vector256<double>.One);
        return numerator / denominator;
    }

    /// <summary>e^x per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<double> Exp(Vector128<double> x) => Vector128.Exp(x);

    /// <summary>Natural logarithm per lane (NaN below 0, -inf at 0), evaluated in double and rounded once.</summary>
    public static Vector128<float> Log(Vector128<float> x)
    {
        var (lo, hi) = Vector128.Widen(x);
        return Vector128.Narrow(Vector128.Log(lo), Vector128.Log(hi));
    }

    /// <summary>Natural logarithm per lane (NaN below 0, -inf at 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<double> Log(Vector128<double> x) => Vector128.Log(x);

    /// <summary>Hyperbolic tangent per lane: exact sign, tanh(x) = x for tiny x, ±1 from |x| ≈ 19.1, NaN kept.</summary>
    public static Vector128<double> Tanh(Vector128<double> x)
    {
        // Both branches work on |x| and the sign is put back last, so tanh(-x) = -tanh(x) bit for bit
        // and tanh(-0) = -0.
        var ax = Vector128.Abs(x);
        var s = ax * ax;
        var p = (((s * Vector128.Create(TanhP0)) + Vector128.Create(TanhP1)) * s) + Vector128.Create(TanhP2);
        var q = ((((s + Vector128.Create(TanhQ0)) * s) + Vector128.Create(TanhQ1)) * s) + Vector128.Create(TanhQ2);
        var rational = ax + (ax * (s * (p / q)));

        // 1 - 2 / (e^(2|x|) + 1) loses nothing to cancellation once |x| >= 0.625 (the result is >= 0.55).
        var e = Vector128.Exp(Vector128.Min(ax, Vector128.Create(TanhSaturation)) * Vector128.Create(2.0));
        var viaExp = Vector128<double>.One - (Vector128.Create(2.0) / (e + Vector128<double>.One));
        var useRational = Vector128.LessThan(ax, Vector128.Create(TanhRationalLimit)) | ~Vector128.Equals(x, x);
        return Vector128.ConditionalSelect(useRational, rational, viaExp) | (x & Vector128.Create(-0.0));
    }

    /// <summary>Logistic sigmoid per lane, denormal results for x down to -745 included.</summary>
    public static Vector128<double> Sigmoid(Vector128<double> x)
    {
        // With e = e^-|x| (never overflows): 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0.
        var e = Vector128.Exp(-Vector128.Abs(x));
        var denominator = Vector128<double>.One + e;
        var numerator = Vector128.ConditionalSelect(Vector128.LessThan(x, Vector128<double>.Zero), e, Vector128<double>.One);
        return numerator / denominator;
    }
}
