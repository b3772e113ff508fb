using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GradFlow.Kernels;

// Float-native exp, tanh and sigmoid: Cody-Waite reduction, a minimax polynomial for e^r and exponent-field
// scaling, all in float lanes (twice the lanes of the widened double evaluation). Measured over every float
// (tests/GradFlow.Tests/Kernels/VectorMathTests.cs): see the bounds stated there.
internal static partial class VectorMath
{
    private const float Log2EF = 1.44269504f;
    private const float Ln2HiF = 0.693145751953125f; // 0x3F317200: 16 significant bits, so k * Ln2HiF is exact
    private const float Ln2LoF = 1.42860677e-6f;     // ln 2 - Ln2HiF
    private const float RoundShifter = 12582912f;    // 1.5 * 2^23: adding it rounds to an integer kept in the low bits
    private const int RoundShifterBits = 0x4B40_0000;

    // e^r = 1 + r + r^2 (ExpF2 + ExpF3 r + ... + ExpF6 r^4) on [-ln2/2, ln2/2] (fitted for this file, Lawson's
    // weighted minimax with coefficients rounded to float one at a time).
    private const float ExpF2 = 0.4999999403953552f;
    private const float ExpF3 = 0.1666652113199234f;
    private const float ExpF4 = 0.04166827350854874f;
    private const float ExpF5 = 0.00836868304759264f;
    private const float ExpF6 = 0.0013820049352943897f;

    // e^x rounds to +inf above 88.7228 and to 0 below -103.9721; beyond these bounds the reduction is not evaluated.
    private const float ExpOverflow = 89f;
    private const float ExpUnderflow = -104f;

    // tanh(x) = x + x^3 (TanhF0 + TanhF1 x^2 + ... + TanhF6 x^12) for |x| < 1 (relative error 5e-9, fitted as the
    // exp coefficients). At |x| >= 1, 1 - 2 / (e^(2|x|) + 1) loses little to cancellation: 2 / (e + 1) < 0.24,
    // so its rounding error is at most a quarter of an ulp of the result.
    private const float TanhF0 = -0.33333295583724976f;
    private const float TanhF1 = 0.13332346081733704f;
    private const float TanhF2 = -0.05387984588742256f;
    private const float TanhF3 = 0.021486671641469002f;
    private const float TanhF4 = -0.007945992052555084f;
    private const float TanhF5 = 0.002301195403560996f;
    private const float TanhF6 = -0.0003583814832381904f;

    // tanh(|x|) rounds to 1 in float from 9.011; the exp branch is evaluated below 9.5 (e^19 needs no wide scaling).
    private const float TanhSaturationF = 9.5f;

    // Below -80, 1 + e^-x rounds to e^-x and sigmoid(x) = e^x to float precision; e^x is used there, so e^-x never
    // overflows and denormal results come out right. Above it, 1 / (1 + e^-x) is monotonic by construction (each
    // step is a rounded monotonic function), unlike e / (1 + e) with e = e^-|x|, whose two roundings of e disagree.
    private const float SigmoidTail = -80f;

    /// <summary>e^x per lane: 1 ulp; +inf above 88.72, correctly scaled denormals down to -103.97, then 0; NaN kept.</summary>
    public static Vector512<float> Exp(Vector512<float> x)
    {
        var (u, k) = ExpReduced(x);
        var y = ScaleWide(u, k);
        y = Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512.Create(ExpOverflow)), Vector512.Create(float.PositiveInfinity), y);
        return Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512.Create(ExpUnderflow)), Vector512<float>.Zero, y);
    }

    /// <summary>Hyperbolic tangent per lane: exact sign (tanh(-0) = -0), x itself for tiny x, ±1 from |x| = 9.01; NaN kept.</summary>
    public static Vector512<float> Tanh(Vector512<float> x)
    {
        var ax = Vector512.Abs(x);
        var z = ax * ax;
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(TanhF6), z, Vector512.Create(TanhF5));
        p = Vector512.FusedMultiplyAdd(p, z, Vector512.Create(TanhF4));
        p = Vector512.FusedMultiplyAdd(p, z, Vector512.Create(TanhF3));
        p = Vector512.FusedMultiplyAdd(p, z, Vector512.Create(TanhF2));
        p = Vector512.FusedMultiplyAdd(p, z, Vector512.Create(TanhF1));
        p = Vector512.FusedMultiplyAdd(p, z, Vector512.Create(TanhF0));
        var small = Vector512.FusedMultiplyAdd(ax * z, p, ax);

        // e^(2|x|) needs one scaling step below |x| = 9.5; above it the result is 1 (and e^(2|x|) is not computed).
        var (u, k) = ExpReduced(ax + ax);
        var e = ScaleNarrow(u, k);
        var large = Vector512<float>.One - (Vector512.Create(2f) / (e + Vector512<float>.One));
        large = Vector512.ConditionalSelect(Vector512.GreaterThan(ax, Vector512.Create(TanhSaturationF)), Vector512<float>.One, large);
        var y = Vector512.ConditionalSelect(Vector512.LessThan(ax, Vector512<float>.One), small, large);
        return y | (x & Vector512.Create(-0f));
    }

    /// <summary>Logistic sigmoid per lane, monotonic: 1 / (1 + e^-x), and e^x below x = -80 (denormals down to -103.97); NaN kept.</summary>
    public static Vector512<float> Sigmoid(Vector512<float> x)
    {
        var tail = Vector512.LessThan(x, Vector512.Create(SigmoidTail));
        var a = Vector512.ConditionalSelect(tail, x, -x);
        var (u, k) = ExpReduced(a);
        var e = Vector512.ConditionalSelect(Vector512.LessThan(a, Vector512.Create(ExpUnderflow)), Vector512<float>.Zero, ScaleWide(u, k));
        return Vector512.ConditionalSelect(tail, e, Vector512<float>.One / (Vector512<float>.One + e));
    }

    // x = k ln2 + r with |r| <= ln2/2: k rounded to nearest by the 1.5 * 2^23 shifter (valid for |x| < 2^21, which
    // covers every finite result), r by a two-constant Cody-Waite step (k Ln2Hi is exact for |k| < 2^8 with FMA or
    // not); e^r = 1 + r + r^2 P(r), P a degree-4 minimax fit of relative error 3e-9 (0.05 ulp) on [-ln2/2, ln2/2].
    // The last two operations round: |error| <= 0.5 ulp + 0.5 ulp of |r + r^2 P| <= 0.42, about 0.7 ulp.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float> ExpR, Vector512<int> K) ExpReduced(Vector512<float> x)
    {
        var shifted = Vector512.FusedMultiplyAdd(x, Vector512.Create(Log2EF), Vector512.Create(RoundShifter));
        var n = shifted - Vector512.Create(RoundShifter);
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2HiF), x);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2LoF), r);
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(ExpF6), r, Vector512.Create(ExpF5));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(ExpF4));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(ExpF3));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(ExpF2));
        var expR = Vector512.FusedMultiplyAdd(p, r * r, r) + Vector512<float>.One;
        return (expR, shifted.AsInt32() - Vector512.Create(RoundShifterBits));
    }

    // u 2^k for k in [-150, 128] as (u 2^(k>>1)) 2^(k - (k>>1)): both factors are normal floats and the first
    // product is exact, so a denormal result is rounded once and k = 128 overflows to +inf as it should.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> ScaleWide(Vector512<float> u, Vector512<int> k)
    {
        var k1 = Vector512.ShiftRightArithmetic(k, 1);
        var s1 = Vector512.ShiftLeft(k1 + Vector512.Create(127), 23).AsSingle();
        var s2 = Vector512.ShiftLeft(k - k1 + Vector512.Create(127), 23).AsSingle();
        return u * s1 * s2;
    }

    // u 2^k for k in [-126, 127] (one exponent-field multiply).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> ScaleNarrow(Vector512<float> u, Vector512<int> k) =>
        u * Vector512.ShiftLeft(k + Vector512.Create(127), 23).AsSingle();

    /// <summary>e^x per lane: 1 ulp; +inf above 88.72, correctly scaled denormals down to -103.97, then 0; NaN kept.</summary>
    public static Vector256<float> Exp(Vector256<float> x)
    {
        var (u, k) = ExpReduced(x);
        var y = ScaleWide(u, k);
        y = Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256.Create(ExpOverflow)), Vector256.Create(float.PositiveInfinity), y);
        return Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256.Create(ExpUnderflow)), Vector256<float>.Zero, y);
    }

    /// <summary>Hyperbolic tangent per lane: exact sign (tanh(-0) = -0), x itself for tiny x, ±1 from |x| = 9.01; NaN kept.</summary>
    public static Vector256<float> Tanh(Vector256<float> x)
    {
        var ax = Vector256.Abs(x);
        var z = ax * ax;
        var p = Vector256.FusedMultiplyAdd(Vector256.Create(TanhF6), z, Vector256.Create(TanhF5));
        p = Vector256.FusedMultiplyAdd(p, z, Vector256.Create(TanhF4));
        p = Vector256.FusedMultiplyAdd(p, z, Vector256.Create(TanhF3));
        p = Vector256.FusedMultiplyAdd(p, z, Vector256.Create(TanhF2));
        p = Vector256.FusedMultiplyAdd(p, z, Vector256.Create(TanhF1));
        p = Vector256.FusedMultiplyAdd(p, z, Vector256.Create(TanhF0));
        var small = Vector256.FusedMultiplyAdd(ax * z, p, ax);

        // e^(2|x|) needs one scaling step below |x| = 9.5; above it the result is 1 (and e^(2|x|) is not computed).
        var (u, k) = ExpReduced(ax + ax);
        var e = ScaleNarrow(u, k);
        var large = Vector256<float>.One - (Vector256.Create(2f) / (e + Vector256<float>.One));
        large = Vector256.ConditionalSelect(Vector256.GreaterThan(ax, Vector256.Create(TanhSaturationF)), Vector256<float>.One, large);
        var y = Vector256.ConditionalSelect(Vector256.LessThan(ax, Vector256<float>.One), small, large);
        return y | (x & Vector256.Create(-0f));
    }

    /// <summary>Logistic sigmoid per lane, monotonic: 1 / (1 + e^-x), and e^x below x = -80 (denormals down to -103.97); NaN kept.</summary>
    public static Vector256<float> Sigmoid(Vector256<float> x)
    {
        var tail = Vector256.LessThan(x, Vector256.Create(SigmoidTail));
        var a = Vector256.ConditionalSelect(tail, x, -x);
        var (u, k) = ExpReduced(a);
        var e = Vector256.ConditionalSelect(Vector256.LessThan(a, Vector256.Create(ExpUnderflow)), Vector256<float>.Zero, ScaleWide(u, k));
        return Vector256.ConditionalSelect(tail, e, Vector256<float>.One / (Vector256<float>.One + e));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<float> ExpR, Vector256<int> K) ExpReduced(Vector256<float> x)
    {
        var shifted = Vector256.FusedMultiplyAdd(x, Vector256.Create(Log2EF), Vector256.Create(RoundShifter));
        var n = shifted - Vector256.Create(RoundShifter);
        var r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2HiF), x);
        r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2LoF), r);
        var p = Vector256.FusedMultiplyAdd(Vector256.Create(ExpF6), r, Vector256.Create(ExpF5));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(ExpF4));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(ExpF3));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(ExpF2));
        var expR = Vector256.FusedMultiplyAdd(p, r * r, r) + Vector256<float>.One;
        return (expR, shifted.AsInt32() - Vector256.Create(RoundShifterBits));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> ScaleWide(Vector256<float> u, Vector256<int> k)
    {
        var k1 = Vector256.ShiftRightArithmetic(k, 1);
        var s1 = Vector256.ShiftLeft(k1 + Vector256.Create(127), 23).AsSingle();
        var s2 = Vector256.ShiftLeft(k - k1 + Vector256.Create(127), 23).AsSingle();
        return u * s1 * s2;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> ScaleNarrow(Vector256<float> u, Vector256<int> k) =>
        u * Vector256.ShiftLeft(k + Vector256.Create(127), 23).AsSingle();

    /// <summary>e^x per lane: 1 ulp; +inf above 88.72, correctly scaled denormals down to -103.97, then 0; NaN kept.</summary>
    public static Vector128<float> Exp(Vector128<float> x)
    {
        var (u, k) = ExpReduced(x);
        var y = ScaleWide(u, k);
        y = Vector128.ConditionalSelect(Vector128.GreaterThan(x, Vector128.Create(ExpOverflow)), Vector128.Create(float.PositiveInfinity), y);
        return Vector128.ConditionalSelect(Vector128.LessThan(x, Vector128.Create(ExpUnderflow)), Vector128<float>.Zero, y);
    }

    /// <summary>Hyperbolic tangent per lane: exact sign (tanh(-0) = -0), x itself for tiny x, ±1 from |x| = 9.01; NaN kept.</summary>
    public static Vector128<float> Tanh(Vector128<float> x)
    {
        var ax = Vector128.Abs(x);
        var z = ax * ax;
        var p = Vector128.FusedMultiplyAdd(Vector128.Create(TanhF6), z, Vector128.Create(TanhF5));
        p = Vector128.FusedMultiplyAdd(p, z, Vector128.Create(TanhF4));
        p = Vector128.FusedMultiplyAdd(p, z, Vector128.Create(TanhF3));
        p = Vector128.FusedMultiplyAdd(p, z, Vector128.Create(TanhF2));
        p = Vector128.FusedMultiplyAdd(p, z, Vector128.Create(TanhF1));
        p = Vector128.FusedMultiplyAdd(p, z, Vector128.Create(TanhF0));
        var small = Vector128.FusedMultiplyAdd(ax * z, p, ax);

        // e^(2|x|) needs one scaling step below |x| = 9.5; above it the result is 1 (and e^(2|x|) is not computed).
        var (u, k) = ExpReduced(ax + ax);
        var e = ScaleNarrow(u, k);
        var large = Vector128<float>.One - (Vector128.Create(2f) / (e + Vector128<float>.One));
        large = Vector128.ConditionalSelect(Vector128.GreaterThan(ax, Vector128.Create(TanhSaturationF)), Vector128<float>.One, large);
        var y = Vector128.ConditionalSelect(Vector128.LessThan(ax, Vector128<float>.One), small, large);
        return y | (x & Vector128.Create(-0f));
    }

    /// <summary>Logistic sigmoid per lane, monotonic: 1 / (1 + e^-x), and e^x below x = -80 (denormals down to -103.97); NaN kept.</summary>
    public static Vector128<float> Sigmoid(Vector128<float> x)
    {
        var tail = Vector128.LessThan(x, Vector128.Create(SigmoidTail));
        var a = Vector128.ConditionalSelect(tail, x, -x);
        var (u, k) = ExpReduced(a);
        var e = Vector128.ConditionalSelect(Vector128.LessThan(a, Vector128.Create(ExpUnderflow)), Vector128<float>.Zero, ScaleWide(u, k));
        return Vector128.ConditionalSelect(tail, e, Vector128<float>.One / (Vector128<float>.One + e));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector128<float> ExpR, Vector128<int> K) ExpReduced(Vector128<float> x)
    {
        var shifted = Vector128.FusedMultiplyAdd(x, Vector128.Create(Log2EF), Vector128.Create(RoundShifter));
        var n = shifted - Vector128.Create(RoundShifter);
        var r = Vector128.FusedMultiplyAdd(n, Vector128.Create(-Ln2HiF), x);
        r = Vector128.FusedMultiplyAdd(n, Vector128.Create(-Ln2LoF), r);
        var p = Vector128.FusedMultiplyAdd(Vector128.Create(ExpF6), r, Vector128.Create(ExpF5));
        p = Vector128.FusedMultiplyAdd(p, r, Vector128.Create(ExpF4));
        p = Vector128.FusedMultiplyAdd(p, r, Vector128.Create(ExpF3));
        p = Vector128.FusedMultiplyAdd(p, r, Vector128.Create(ExpF2));
        var expR = Vector128.FusedMultiplyAdd(p, r * r, r) + Vector128<float>.One;
        return (expR, shifted.AsInt32() - Vector128.Create(RoundShifterBits));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> ScaleWide(Vector128<float> u, Vector128<int> k)
    {
        var k1 = Vector128.ShiftRightArithmetic(k, 1);
        var s1 = Vector128.ShiftLeft(k1 + Vector128.Create(127), 23).AsSingle();
        var s2 = Vector128.ShiftLeft(k - k1 + Vector128.Create(127), 23).AsSingle();
        return u * s1 * s2;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> ScaleNarrow(Vector128<float> u, Vector128<int> k) =>
        u * Vector128.ShiftLeft(k + Vector128.Create(127), 23).AsSingle();
}
