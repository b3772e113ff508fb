using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GradFlow.Kernels;

// The backward of pointwise activations from their saved output y, as one pass over (g, y). Each computes
// exactly what the composed tensor formula computes, in the same order of roundings (no fused multiply-add),
// so the fused and the composed paths give bit-identical gradients.
#pragma warning disable CS1591 // the op structs are named for what they compute

/// <summary>g (1 - y^2): tanh's derivative from its output.</summary>
internal readonly struct TanhGradOp : IBinaryOp
{
    public static T Invoke<T>(T g, T y) where T : unmanaged, INumber<T> => g * (T.One - (y * y));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Invoke<T>(Vector512<T> g, Vector512<T> y) where T : unmanaged, INumber<T> => g * (Vector512<T>.One - (y * y));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Invoke<T>(Vector256<T> g, Vector256<T> y) where T : unmanaged, INumber<T> => g * (Vector256<T>.One - (y * y));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> Invoke<T>(Vector128<T> g, Vector128<T> y) where T : unmanaged, INumber<T> => g * (Vector128<T>.One - (y * y));
}

/// <summary>(g y)(1 - y): the sigmoid's derivative from its output.</summary>
internal readonly struct SigmoidGradOp : IBinaryOp
{
    public static T Invoke<T>(T g, T y) where T : unmanaged, INumber<T> => g * y * (T.One - y);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Invoke<T>(Vector512<T> g, Vector512<T> y) where T : unmanaged, INumber<T> => g * y * (Vector512<T>.One - y);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Invoke<T>(Vector256<T> g, Vector256<T> y) where T : unmanaged, INumber<T> => g * y * (Vector256<T>.One - y);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> Invoke<T>(Vector128<T> g, Vector128<T> y) where T : unmanaged, INumber<T> => g * y * (Vector128<T>.One - y);
}

/// <summary>g [y &gt; 0] as a product with the 0/1 mask (so an infinite g times a closed unit gives NaN, as the composed form).</summary>
internal readonly struct ReluGradOp : IBinaryOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Invoke<T>(T g, T y) where T : unmanaged, INumber<T> => g * (y > T.Zero ? T.One : T.Zero);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Invoke<T>(Vector512<T> g, Vector512<T> y) where T : unmanaged, INumber<T> => g * Vector512.ConditionalSelect(Vector512.GreaterThan(y, Vector512<T>.Zero), Vector512<T>.One, Vector512<T>.Zero);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Invoke<T>(Vector256<T> g, Vector256<T> y) where T : unmanaged, INumber<T> => g * Vector256.ConditionalSelect(Vector256.GreaterThan(y, Vector256<T>.Zero), Vector256<T>.One, Vector256<T>.Zero);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> Invoke<T>(Vector128<T> g, Vector128<T> y) where T : unmanaged, INumber<T> => g * Vector128.ConditionalSelect(Vector128.GreaterThan(y, Vector128<T>.Zero), Vector128<T>.One, Vector128<T>.Zero);
}
