using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GradFlow.Kernels;

/// <summary>
/// Generic front for the transcendental vector functions: the JIT folds the typeof tests, so
/// Exp&lt;float&gt; compiles straight to the float kernel in <see cref="VectorMath"/>.
/// </summary>
internal static class VecMath
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Exp<T>(Vector512<T> x) => typeof(T) == typeof(float)
        ? VectorMath.Exp(x.AsSingle()).As<float, T>() : VectorMath.Exp(x.AsDouble()).As<double, T>();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Exp<T>(Vector256<T> x) => typeof(T) == typeof(float)
        ? VectorMath.Exp(x.AsSingle()).As<float, T>() : VectorMath.Exp(x.AsDouble()).As<double, T>();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> Exp<T>(Vector128<T> x) => typeof(T) == typeof(float)
        ? VectorMath.Exp(x.AsSingle()).As<float, T>() : VectorMath.Exp(x.AsDouble()).As<double, T>();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Log<T>(Vector512<T> x) => typeof(T) == typeof(float)
        ? VectorMath.Log(x.AsSingle()).As<float, T>() : VectorMath.Log(x.AsDouble()).As<double, T>();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Log<T>(Vector256<T> x) => typeof(T) == typeof(float)
        ? VectorMath.Log(x.AsSingle()).As<float, T>() : VectorMath.Log(x.AsDouble()).As<double, T>();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> Log<T>(Vector128<T> x) => typeof(T) == typeof(float)
        ? VectorMath.Log(x.AsSingle()).As<float, T>() : VectorMath.Log(x.AsDouble()).As<double, T>();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Tanh<T>(Vector512<T> x) => typeof(T) == typeof(float)
        ? VectorMath.Tanh(x.AsSingle()).As<float, T>() : VectorMath.Tanh(x.AsDouble()).As<double, T>();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Tanh<T>(Vector256<T> x) => typeof(T) == typeof(float)
        ? VectorMath.Tanh(x.AsSingle()).As<float, T>() : VectorMath.Tanh(x.AsDouble()).As<double, T>();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> Tanh<T>(Vector128<T> x) => typeof(T) == typeof(float)
        ? VectorMath.Tanh(x.AsSingle()).As<float, T>() : VectorMath.Tanh(x.AsDouble()).As<double, T>();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Sigmoid<T>(Vector512<T> x) => typeof(T) == typeof(float)
        ? VectorMath.Sigmoid(x.AsSingle()).As<float, T>() : VectorMath.Sigmoid(x.AsDouble()).As<double, T>();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Sigmoid<T>(Vector256<T> x) => typeof(T) == typeof(float)
        ? VectorMath.Sigmoid(x.AsSingle()).As<float, T>() : VectorMath.Sigmoid(x.AsDouble()).As<double, T>();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> Sigmoid<T>(Vector128<T> x) => typeof(T) == typeof(float)
        ? VectorMath.Sigmoid(x.AsSingle()).As<float, T>() : VectorMath.Sigmoid(x.AsDouble()).As<double, T>();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Sin<T>(Vector512<T> x) => typeof(T) == typeof(float)
        ? Vector512.Sin(x.AsSingle()).As<float, T>() : Vector512.Sin(x.AsDouble()).As<double, T>();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Sin<T>(Vector256<T> x) => typeof(T) == typeof(float)
        ? Vector256.Sin(x.AsSingle()).As<float, T>() : Vector256.Sin(x.AsDouble()).As<double, T>();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> Sin<T>(Vector128<T> x) => typeof(T) == typeof(float)
        ? Vector128.Sin(x.AsSingle()).As<float, T>() : Vector128.Sin(x.AsDouble()).As<double, T>();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Cos<T>(Vector512<T> x) => typeof(T) == typeof(float)
        ? Vector512.Cos(x.AsSingle()).As<float, T>() : Vector512.Cos(x.AsDouble()).As<double, T>();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Cos<T>(Vector256<T> x) => typeof(T) == typeof(float)
        ? Vector256.Cos(x.AsSingle()).As<float, T>() : Vector256.Cos(x.AsDouble()).As<double, T>();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> Cos<T>(Vector128<T> x) => typeof(T) == typeof(float)
        ? Vector128.Cos(x.AsSingle()).As<float, T>() : Vector128.Cos(x.AsDouble()).As<double, T>();
}
