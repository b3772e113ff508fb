using System.Runtime.Intrinsics;

namespace GradFlow.Kernels;

/// <summary>
/// Vectorised transcendental functions. Exp and Log come from the runtime's own vector math;
/// tanh and sigmoid are built on exp with their saturation handled explicitly.
/// </summary>
internal static class VectorMath
{
    public static Vector512<float> Exp(Vector512<float> x) => Vector512.Exp(x);
    public static Vector256<float> Exp(Vector256<float> x) => Vector256.Exp(x);
    public static Vector128<float> Exp(Vector128<float> x) => Vector128.Exp(x);
    public static Vector512<double> Exp(Vector512<double> x) => Vector512.Exp(x);
    public static Vector256<double> Exp(Vector256<double> x) => Vector256.Exp(x);
    public static Vector128<double> Exp(Vector128<double> x) => Vector128.Exp(x);

    public static Vector512<float> Log(Vector512<float> x) => Vector512.Log(x);
    public static Vector256<float> Log(Vector256<float> x) => Vector256.Log(x);
    public static Vector128<float> Log(Vector128<float> x) => Vector128.Log(x);
    public static Vector512<double> Log(Vector512<double> x) => Vector512.Log(x);
    public static Vector256<double> Log(Vector256<double> x) => Vector256.Log(x);
    public static Vector128<double> Log(Vector128<double> x) => Vector128.Log(x);

    // sigmoid(x) = 1 / (1 + e^-x): e^-x overflows to +inf for x < -88 and the quotient is then 0, as it should be.
    public static Vector512<float> Sigmoid(Vector512<float> x) => Vector512<float>.One / (Vector512<float>.One + Vector512.Exp(-x));
    public static Vector256<float> Sigmoid(Vector256<float> x) => Vector256<float>.One / (Vector256<float>.One + Vector256.Exp(-x));
    public static Vector128<float> Sigmoid(Vector128<float> x) => Vector128<float>.One / (Vector128<float>.One + Vector128.Exp(-x));
    public static Vector512<double> Sigmoid(Vector512<double> x) => Vector512<double>.One / (Vector512<double>.One + Vector512.Exp(-x));
    public static Vector256<double> Sigmoid(Vector256<double> x) => Vector256<double>.One / (Vector256<double>.One + Vector256.Exp(-x));
    public static Vector128<double> Sigmoid(Vector128<double> x) => Vector128<double>.One / (Vector128<double>.One + Vector128.Exp(-x));

    // tanh(x) = sign(x) (1 - e) / (1 + e) with e = e^(-2|x|), which never overflows; for |x| < 2^-12
    // tanh(x) = x to within float rounding, which also avoids the cancellation in 1 - e.
    public static Vector512<float> Tanh(Vector512<float> x)
    {
        var ax = Vector512.Abs(x);
        var e = Vector512.Exp(ax * Vector512.Create(-2f));
        var t = (Vector512<float>.One - e) / (Vector512<float>.One + e);
        t = Vector512.ConditionalSelect(Vector512.LessThan(ax, Vector512.Create(2.44140625e-4f)), ax, t);
        return Vector512.CopySign(t, x);
    }

    public static Vector256<float> Tanh(Vector256<float> x)
    {
        var ax = Vector256.Abs(x);
        var e = Vector256.Exp(ax * Vector256.Create(-2f));
        var t = (Vector256<float>.One - e) / (Vector256<float>.One + e);
        t = Vector256.ConditionalSelect(Vector256.LessThan(ax, Vector256.Create(2.44140625e-4f)), ax, t);
        return Vector256.CopySign(t, x);
    }

    public static Vector128<float> Tanh(Vector128<float> x)
    {
        var ax = Vector128.Abs(x);
        var e = Vector128.Exp(ax * Vector128.Create(-2f));
        var t = (Vector128<float>.One - e) / (Vector128<float>.One + e);
        t = Vector128.ConditionalSelect(Vector128.LessThan(ax, Vector128.Create(2.44140625e-4f)), ax, t);
        return Vector128.CopySign(t, x);
    }

    public static Vector512<double> Tanh(Vector512<double> x)
    {
        var ax = Vector512.Abs(x);
        var e = Vector512.Exp(ax * Vector512.Create(-2.0));
        var t = (Vector512<double>.One - e) / (Vector512<double>.One + e);
        t = Vector512.ConditionalSelect(Vector512.LessThan(ax, Vector512.Create(1e-8)), ax, t);
        return Vector512.CopySign(t, x);
    }

    public static Vector256<double> Tanh(Vector256<double> x)
    {
        var ax = Vector256.Abs(x);
        var e = Vector256.Exp(ax * Vector256.Create(-2.0));
        var t = (Vector256<double>.One - e) / (Vector256<double>.One + e);
        t = Vector256.ConditionalSelect(Vector256.LessThan(ax, Vector256.Create(1e-8)), ax, t);
        return Vector256.CopySign(t, x);
    }

    public static Vector128<double> Tanh(Vector128<double> x)
    {
        var ax = Vector128.Abs(x);
        var e = Vector128.Exp(ax * Vector128.Create(-2.0));
        var t = (Vector128<double>.One - e) / (Vector128<double>.One + e);
        t = Vector128.ConditionalSelect(Vector128.LessThan(ax, Vector128.Create(1e-8)), ax, t);
        return Vector128.CopySign(t, x);
    }
}
