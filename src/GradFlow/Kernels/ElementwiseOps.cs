using System.Numerics;
using System.Runtime.Intrinsics;

namespace GradFlow.Kernels;

/// <summary>An elementwise op on one floating-point operand, at every vector width.</summary>
internal interface IUnaryOp
{
    static abstract T Invoke<T>(T x) where T : unmanaged, IFloatingPointIeee754<T>;
    static abstract Vector512<T> Invoke<T>(Vector512<T> x) where T : unmanaged, IFloatingPointIeee754<T>;
    static abstract Vector256<T> Invoke<T>(Vector256<T> x) where T : unmanaged, IFloatingPointIeee754<T>;
    static abstract Vector128<T> Invoke<T>(Vector128<T> x) where T : unmanaged, IFloatingPointIeee754<T>;
}

/// <summary>An elementwise op on two numeric operands (float, double or long), at every vector width.</summary>
internal interface IBinaryOp
{
    static abstract T Invoke<T>(T a, T b) where T : unmanaged, INumber<T>;
    static abstract Vector512<T> Invoke<T>(Vector512<T> a, Vector512<T> b) where T : unmanaged, INumber<T>;
    static abstract Vector256<T> Invoke<T>(Vector256<T> a, Vector256<T> b) where T : unmanaged, INumber<T>;
    static abstract Vector128<T> Invoke<T>(Vector128<T> a, Vector128<T> b) where T : unmanaged, INumber<T>;
}

#pragma warning disable CS1591 // the op structs are named for what they compute
internal readonly struct NegOp : IUnaryOp
{
    public static T Invoke<T>(T x) where T : unmanaged, IFloatingPointIeee754<T> => -x;
    public static Vector512<T> Invoke<T>(Vector512<T> x) where T : unmanaged, IFloatingPointIeee754<T> => -x;
    public static Vector256<T> Invoke<T>(Vector256<T> x) where T : unmanaged, IFloatingPointIeee754<T> => -x;
    public static Vector128<T> Invoke<T>(Vector128<T> x) where T : unmanaged, IFloatingPointIeee754<T> => -x;
}

internal readonly struct AbsOp : IUnaryOp
{
    public static T Invoke<T>(T x) where T : unmanaged, IFloatingPointIeee754<T> => T.Abs(x);
    public static Vector512<T> Invoke<T>(Vector512<T> x) where T : unmanaged, IFloatingPointIeee754<T> => Vector512.Abs(x);
    public static Vector256<T> Invoke<T>(Vector256<T> x) where T : unmanaged, IFloatingPointIeee754<T> => Vector256.Abs(x);
    public static Vector128<T> Invoke<T>(Vector128<T> x) where T : unmanaged, IFloatingPointIeee754<T> => Vector128.Abs(x);
}

internal readonly struct SqrtOp : IUnaryOp
{
    public static T Invoke<T>(T x) where T : unmanaged, IFloatingPointIeee754<T> => T.Sqrt(x);
    public static Vector512<T> Invoke<T>(Vector512<T> x) where T : unmanaged, IFloatingPointIeee754<T> => Vector512.Sqrt(x);
    public static Vector256<T> Invoke<T>(Vector256<T> x) where T : unmanaged, IFloatingPointIeee754<T> => Vector256.Sqrt(x);
    public static Vector128<T> Invoke<T>(Vector128<T> x) where T : unmanaged, IFloatingPointIeee754<T> => Vector128.Sqrt(x);
}

// Float scalars (tails, strided loops) go through the vector kernel, so an element's result does not depend
// on where it sits in memory.
internal readonly struct ExpOp : IUnaryOp
{
    public static T Invoke<T>(T x) where T : unmanaged, IFloatingPointIeee754<T> =>
        typeof(T) == typeof(float) ? VecMath.Exp(Vector128.CreateScalar(x)).ToScalar() : T.Exp(x);
    public static Vector512<T> Invoke<T>(Vector512<T> x) where T : unmanaged, IFloatingPointIeee754<T> => VecMath.Exp(x);
    public static Vector256<T> Invoke<T>(Vector256<T> x) where T : unmanaged, IFloatingPointIeee754<T> => VecMath.Exp(x);
    public static Vector128<T> Invoke<T>(Vector128<T> x) where T : unmanaged, IFloatingPointIeee754<T> => VecMath.Exp(x);
}

internal readonly struct LogOp : IUnaryOp
{
    public static T Invoke<T>(T x) where T : unmanaged, IFloatingPointIeee754<T> => T.Log(x);
    public static Vector512<T> Invoke<T>(Vector512<T> x) where T : unmanaged, IFloatingPointIeee754<T> => VecMath.Log(x);
    public static Vector256<T> Invoke<T>(Vector256<T> x) where T : unmanaged, IFloatingPointIeee754<T> => VecMath.Log(x);
    public static Vector128<T> Invoke<T>(Vector128<T> x) where T : unmanaged, IFloatingPointIeee754<T> => VecMath.Log(x);
}

internal readonly struct TanhOp : IUnaryOp
{
    public static T Invoke<T>(T x) where T : unmanaged, IFloatingPointIeee754<T> =>
        typeof(T) == typeof(float) ? VecMath.Tanh(Vector128.CreateScalar(x)).ToScalar() : T.Tanh(x);
    public static Vector512<T> Invoke<T>(Vector512<T> x) where T : unmanaged, IFloatingPointIeee754<T> => VecMath.Tanh(x);
    public static Vector256<T> Invoke<T>(Vector256<T> x) where T : unmanaged, IFloatingPointIeee754<T> => VecMath.Tanh(x);
    public static Vector128<T> Invoke<T>(Vector128<T> x) where T : unmanaged, IFloatingPointIeee754<T> => VecMath.Tanh(x);
}

internal readonly struct SigmoidOp : IUnaryOp
{
    public static T Invoke<T>(T x) where T : unmanaged, IFloatingPointIeee754<T> =>
        typeof(T) == typeof(float) ? VecMath.Sigmoid(Vector128.CreateScalar(x)).ToScalar() : T.One / (T.One + T.Exp(-x));
    public static Vector512<T> Invoke<T>(Vector512<T> x) where T : unmanaged, IFloatingPointIeee754<T> => VecMath.Sigmoid(x);
    public static Vector256<T> Invoke<T>(Vector256<T> x) where T : unmanaged, IFloatingPointIeee754<T> => VecMath.Sigmoid(x);
    public static Vector128<T> Invoke<T>(Vector128<T> x) where T : unmanaged, IFloatingPointIeee754<T> => VecMath.Sigmoid(x);
}

internal readonly struct SinOp : IUnaryOp
{
    public static T Invoke<T>(T x) where T : unmanaged, IFloatingPointIeee754<T> => T.Sin(x);
    public static Vector512<T> Invoke<T>(Vector512<T> x) where T : unmanaged, IFloatingPointIeee754<T> => VecMath.Sin(x);
    public static Vector256<T> Invoke<T>(Vector256<T> x) where T : unmanaged, IFloatingPointIeee754<T> => VecMath.Sin(x);
    public static Vector128<T> Invoke<T>(Vector128<T> x) where T : unmanaged, IFloatingPointIeee754<T> => VecMath.Sin(x);
}

internal readonly struct CosOp : IUnaryOp
{
    public static T Invoke<T>(T x) where T : unmanaged, IFloatingPointIeee754<T> => T.Cos(x);
    public static Vector512<T> Invoke<T>(Vector512<T> x) where T : unmanaged, IFloatingPointIeee754<T> => VecMath.Cos(x);
    public static Vector256<T> Invoke<T>(Vector256<T> x) where T : unmanaged, IFloatingPointIeee754<T> => VecMath.Cos(x);
    public static Vector128<T> Invoke<T>(Vector128<T> x) where T : unmanaged, IFloatingPointIeee754<T> => VecMath.Cos(x);
}

internal readonly struct ReluOp : IUnaryOp
{
    public static T Invoke<T>(T x) where T : unmanaged, IFloatingPointIeee754<T> => x > T.Zero ? x : (T.IsNaN(x) ? x : T.Zero);
    public static Vector512<T> Invoke<T>(Vector512<T> x) where T : unmanaged, IFloatingPointIeee754<T> => Vector512.ConditionalSelect(Vector512.LessThanOrEqual(x, Vector512<T>.Zero), Vector512<T>.Zero, x);
    public static Vector256<T> Invoke<T>(Vector256<T> x) where T : unmanaged, IFloatingPointIeee754<T> => Vector256.ConditionalSelect(Vector256.LessThanOrEqual(x, Vector256<T>.Zero), Vector256<T>.Zero, x);
    public static Vector128<T> Invoke<T>(Vector128<T> x) where T : unmanaged, IFloatingPointIeee754<T> => Vector128.ConditionalSelect(Vector128.LessThanOrEqual(x, Vector128<T>.Zero), Vector128<T>.Zero, x);
}

internal readonly struct AddOp : IBinaryOp
{
    public static T Invoke<T>(T a, T b) where T : unmanaged, INumber<T> => a + b;
    public static Vector512<T> Invoke<T>(Vector512<T> a, Vector512<T> b) where T : unmanaged, INumber<T> => a + b;
    public static Vector256<T> Invoke<T>(Vector256<T> a, Vector256<T> b) where T : unmanaged, INumber<T> => a + b;
    public static Vector128<T> Invoke<T>(Vector128<T> a, Vector128<T> b) where T : unmanaged, INumber<T> => a + b;
}

internal readonly struct SubOp : IBinaryOp
{
    public static T Invoke<T>(T a, T b) where T : unmanaged, INumber<T> => a - b;
    public static Vector512<T> Invoke<T>(Vector512<T> a, Vector512<T> b) where T : unmanaged, INumber<T> => a - b;
    public static Vector256<T> Invoke<T>(Vector256<T> a, Vector256<T> b) where T : unmanaged, INumber<T> => a - b;
    public static Vector128<T> Invoke<T>(Vector128<T> a, Vector128<T> b) where T : unmanaged, INumber<T> => a - b;
}

internal readonly struct MulOp : IBinaryOp
{
    public static T Invoke<T>(T a, T b) where T : unmanaged, INumber<T> => a * b;
    public static Vector512<T> Invoke<T>(Vector512<T> a, Vector512<T> b) where T : unmanaged, INumber<T> => a * b;
    public static Vector256<T> Invoke<T>(Vector256<T> a, Vector256<T> b) where T : unmanaged, INumber<T> => a * b;
    public static Vector128<T> Invoke<T>(Vector128<T> a, Vector128<T> b) where T : unmanaged, INumber<T> => a * b;
}

internal readonly struct DivOp : IBinaryOp
{
    public static T Invoke<T>(T a, T b) where T : unmanaged, INumber<T> => a / b;
    public static Vector512<T> Invoke<T>(Vector512<T> a, Vector512<T> b) where T : unmanaged, INumber<T> => a / b;
    public static Vector256<T> Invoke<T>(Vector256<T> a, Vector256<T> b) where T : unmanaged, INumber<T> => a / b;
    public static Vector128<T> Invoke<T>(Vector128<T> a, Vector128<T> b) where T : unmanaged, INumber<T> => a / b;
}

/// <summary>Maximum that propagates NaN, as torch.maximum does.</summary>
internal readonly struct MaxOp : IBinaryOp
{
    public static T Invoke<T>(T a, T b) where T : unmanaged, INumber<T> => a > b || T.IsNaN(a) ? a : b;
    public static Vector512<T> Invoke<T>(Vector512<T> a, Vector512<T> b) where T : unmanaged, INumber<T> => Vector512.ConditionalSelect(Vector512.GreaterThan(a, b) | ~Vector512.Equals(a, a), a, b);
    public static Vector256<T> Invoke<T>(Vector256<T> a, Vector256<T> b) where T : unmanaged, INumber<T> => Vector256.ConditionalSelect(Vector256.GreaterThan(a, b) | ~Vector256.Equals(a, a), a, b);
    public static Vector128<T> Invoke<T>(Vector128<T> a, Vector128<T> b) where T : unmanaged, INumber<T> => Vector128.ConditionalSelect(Vector128.GreaterThan(a, b) | ~Vector128.Equals(a, a), a, b);
}

/// <summary>Minimum that propagates NaN, as torch.minimum does.</summary>
internal readonly struct MinOp : IBinaryOp
{
    public static T Invoke<T>(T a, T b) where T : unmanaged, INumber<T> => a < b || T.IsNaN(a) ? a : b;
    public static Vector512<T> Invoke<T>(Vector512<T> a, Vector512<T> b) where T : unmanaged, INumber<T> => Vector512.ConditionalSelect(Vector512.LessThan(a, b) | ~Vector512.Equals(a, a), a, b);
    public static Vector256<T> Invoke<T>(Vector256<T> a, Vector256<T> b) where T : unmanaged, INumber<T> => Vector256.ConditionalSelect(Vector256.LessThan(a, b) | ~Vector256.Equals(a, a), a, b);
    public static Vector128<T> Invoke<T>(Vector128<T> a, Vector128<T> b) where T : unmanaged, INumber<T> => Vector128.ConditionalSelect(Vector128.LessThan(a, b) | ~Vector128.Equals(a, a), a, b);
}

/// <summary>The comparisons: 1 where the relation holds, else 0.</summary>
internal readonly struct EqOp : IBinaryOp
{
    public static T Invoke<T>(T a, T b) where T : unmanaged, INumber<T> => a == b ? T.One : T.Zero;
    public static Vector512<T> Invoke<T>(Vector512<T> a, Vector512<T> b) where T : unmanaged, INumber<T> => Vector512.Equals(a, b) & Vector512<T>.One;
    public static Vector256<T> Invoke<T>(Vector256<T> a, Vector256<T> b) where T : unmanaged, INumber<T> => Vector256.Equals(a, b) & Vector256<T>.One;
    public static Vector128<T> Invoke<T>(Vector128<T> a, Vector128<T> b) where T : unmanaged, INumber<T> => Vector128.Equals(a, b) & Vector128<T>.One;
}

internal readonly struct NeOp : IBinaryOp
{
    public static T Invoke<T>(T a, T b) where T : unmanaged, INumber<T> => a != b ? T.One : T.Zero;
    public static Vector512<T> Invoke<T>(Vector512<T> a, Vector512<T> b) where T : unmanaged, INumber<T> => ~Vector512.Equals(a, b) & Vector512<T>.One;
    public static Vector256<T> Invoke<T>(Vector256<T> a, Vector256<T> b) where T : unmanaged, INumber<T> => ~Vector256.Equals(a, b) & Vector256<T>.One;
    public static Vector128<T> Invoke<T>(Vector128<T> a, Vector128<T> b) where T : unmanaged, INumber<T> => ~Vector128.Equals(a, b) & Vector128<T>.One;
}

internal readonly struct LtOp : IBinaryOp
{
    public static T Invoke<T>(T a, T b) where T : unmanaged, INumber<T> => a < b ? T.One : T.Zero;
    public static Vector512<T> Invoke<T>(Vector512<T> a, Vector512<T> b) where T : unmanaged, INumber<T> => Vector512.LessThan(a, b) & Vector512<T>.One;
    public static Vector256<T> Invoke<T>(Vector256<T> a, Vector256<T> b) where T : unmanaged, INumber<T> => Vector256.LessThan(a, b) & Vector256<T>.One;
    public static Vector128<T> Invoke<T>(Vector128<T> a, Vector128<T> b) where T : unmanaged, INumber<T> => Vector128.LessThan(a, b) & Vector128<T>.One;
}

internal readonly struct LeOp : IBinaryOp
{
    public static T Invoke<T>(T a, T b) where T : unmanaged, INumber<T> => a <= b ? T.One : T.Zero;
    public static Vector512<T> Invoke<T>(Vector512<T> a, Vector512<T> b) where T : unmanaged, INumber<T> => Vector512.LessThanOrEqual(a, b) & Vector512<T>.One;
    public static Vector256<T> Invoke<T>(Vector256<T> a, Vector256<T> b) where T : unmanaged, INumber<T> => Vector256.LessThanOrEqual(a, b) & Vector256<T>.One;
    public static Vector128<T> Invoke<T>(Vector128<T> a, Vector128<T> b) where T : unmanaged, INumber<T> => Vector128.LessThanOrEqual(a, b) & Vector128<T>.One;
}

internal readonly struct GtOp : IBinaryOp
{
    public static T Invoke<T>(T a, T b) where T : unmanaged, INumber<T> => a > b ? T.One : T.Zero;
    public static Vector512<T> Invoke<T>(Vector512<T> a, Vector512<T> b) where T : unmanaged, INumber<T> => Vector512.GreaterThan(a, b) & Vector512<T>.One;
    public static Vector256<T> Invoke<T>(Vector256<T> a, Vector256<T> b) where T : unmanaged, INumber<T> => Vector256.GreaterThan(a, b) & Vector256<T>.One;
    public static Vector128<T> Invoke<T>(Vector128<T> a, Vector128<T> b) where T : unmanaged, INumber<T> => Vector128.GreaterThan(a, b) & Vector128<T>.One;
}

internal readonly struct GeOp : IBinaryOp
{
    public static T Invoke<T>(T a, T b) where T : unmanaged, INumber<T> => a >= b ? T.One : T.Zero;
    public static Vector512<T> Invoke<T>(Vector512<T> a, Vector512<T> b) where T : unmanaged, INumber<T> => Vector512.GreaterThanOrEqual(a, b) & Vector512<T>.One;
    public static Vector256<T> Invoke<T>(Vector256<T> a, Vector256<T> b) where T : unmanaged, INumber<T> => Vector256.GreaterThanOrEqual(a, b) & Vector256<T>.One;
    public static Vector128<T> Invoke<T>(Vector128<T> a, Vector128<T> b) where T : unmanaged, INumber<T> => Vector128.GreaterThanOrEqual(a, b) & Vector128<T>.One;
}
#pragma warning restore CS1591
