using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace GradFlow.Kernels;

/// <summary>Span forms of the vector functions: y[i] = f(x[i]); y may be x itself.</summary>
internal static partial class VectorMath
{
    public static void Exp(ReadOnlySpan<float> x, Span<float> y) => Map<float, ExpOp>(x, y, nameof(Exp));

    public static void Exp(ReadOnlySpan<double> x, Span<double> y) => Map<double, ExpOp>(x, y, nameof(Exp));

    public static void Log(ReadOnlySpan<float> x, Span<float> y) => Map<float, LogOp>(x, y, nameof(Log));

    public static void Log(ReadOnlySpan<double> x, Span<double> y) => Map<double, LogOp>(x, y, nameof(Log));

    public static void Tanh(ReadOnlySpan<float> x, Span<float> y) => Map<float, TanhOp>(x, y, nameof(Tanh));

    public static void Tanh(ReadOnlySpan<double> x, Span<double> y) => Map<double, TanhOp>(x, y, nameof(Tanh));

    public static void Sigmoid(ReadOnlySpan<float> x, Span<float> y) => Map<float, SigmoidOp>(x, y, nameof(Sigmoid));

    public static void Sigmoid(ReadOnlySpan<double> x, Span<double> y) => Map<double, SigmoidOp>(x, y, nameof(Sigmoid));

    /// <summary>Whole vectors of the widest accelerated width, then the tail through one zero-padded vector.</summary>
    private static void Map<T, TOp>(ReadOnlySpan<T> x, Span<T> y, string name)
        where T : unmanaged
        where TOp : struct, IVectorFunction
    {
        if (x.Length != y.Length)
        {
            Guard.ThrowArg($"VectorMath.{name}", nameof(y), $"y has length {y.Length} but x has length {x.Length}.");
        }

        ref T src = ref MemoryMarshal.GetReference(x);
        ref T dst = ref MemoryMarshal.GetReference(y);
        nuint n = (nuint)x.Length, i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + (nuint)Vector512<T>.Count <= n; i += (nuint)Vector512<T>.Count)
            {
                TOp.Invoke(Vector512.LoadUnsafe(ref src, i)).StoreUnsafe(ref dst, i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i + (nuint)Vector256<T>.Count <= n; i += (nuint)Vector256<T>.Count)
            {
                TOp.Invoke(Vector256.LoadUnsafe(ref src, i)).StoreUnsafe(ref dst, i);
            }
        }

        for (; i + (nuint)Vector128<T>.Count <= n; i += (nuint)Vector128<T>.Count)
        {
            TOp.Invoke(Vector128.LoadUnsafe(ref src, i)).StoreUnsafe(ref dst, i);
        }

        if (i < n)
        {
            var tail = Vector128<T>.Zero;
            int rest = (int)(n - i);
            x.Slice((int)i, rest).CopyTo(MemoryMarshal.Cast<Vector128<T>, T>(
                MemoryMarshal.CreateSpan(ref tail, 1)));
            var result = TOp.Invoke(tail);
            MemoryMarshal.Cast<Vector128<T>, T>(
                MemoryMarshal.CreateSpan(ref result, 1))[..rest].CopyTo(y.Slice((int)i, rest));
        }
    }

    /// <summary>A vector function over float or double lanes; the typeof tests fold away per instantiation.</summary>
    private interface IVectorFunction
    {
        static abstract Vector512<T> Invoke<T>(Vector512<T> x) where T : unmanaged;

        static abstract Vector256<T> Invoke<T>(Vector256<T> x) where T : unmanaged;

        static abstract Vector128<T> Invoke<T>(Vector128<T> x) where T : unmanaged;
    }

    private readonly struct ExpOp : IVectorFunction
    {
        public static Vector512<T> Invoke<T>(Vector512<T> x) where T : unmanaged =>
            typeof(T) == typeof(float) ? Exp(x.AsSingle()).As<float, T>() : Exp(x.AsDouble()).As<double, T>();

        public static Vector256<T> Invoke<T>(Vector256<T> x) where T : unmanaged =>
            typeof(T) == typeof(float) ? Exp(x.AsSingle()).As<float, T>() : Exp(x.AsDouble()).As<double, T>();

        public static Vector128<T> Invoke<T>(Vector128<T> x) where T : unmanaged =>
            typeof(T) == typeof(float) ? Exp(x.AsSingle()).As<float, T>() : Exp(x.AsDouble()).As<double, T>();
    }

    private readonly struct LogOp : IVectorFunction
    {
        public static Vector512<T> Invoke<T>(Vector512<T> x) where T : unmanaged =>
            typeof(T) == typeof(float) ? Log(x.AsSingle()).As<float, T>() : Log(x.AsDouble()).As<double, T>();

        public static Vector256<T> Invoke<T>(Vector256<T> x) where T : unmanaged =>
            typeof(T) == typeof(float) ? Log(x.AsSingle()).As<float, T>() : Log(x.AsDouble()).As<double, T>();

        public static Vector128<T> Invoke<T>(Vector128<T> x) where T : unmanaged =>
            typeof(T) == typeof(float) ? Log(x.AsSingle()).As<float, T>() : Log(x.AsDouble()).As<double, T>();
    }

    private readonly struct TanhOp : IVectorFunction
    {
        public static Vector512<T> Invoke<T>(Vector512<T> x) where T : unmanaged =>
            typeof(T) == typeof(float) ? Tanh(x.AsSingle()).As<float, T>() : Tanh(x.AsDouble()).As<double, T>();

        public static Vector256<T> Invoke<T>(Vector256<T> x) where T : unmanaged =>
            typeof(T) == typeof(float) ? Tanh(x.AsSingle()).As<float, T>() : Tanh(x.AsDouble()).As<double, T>();

        public static Vector128<T> Invoke<T>(Vector128<T> x) where T : unmanaged =>
            typeof(T) == typeof(float) ? Tanh(x.AsSingle()).As<float, T>() : Tanh(x.AsDouble()).As<double, T>();
    }

    private readonly struct SigmoidOp : IVectorFunction
    {
        public static Vector512<T> Invoke<T>(Vector512<T> x) where T : unmanaged =>
            typeof(T) == typeof(float) ? Sigmoid(x.AsSingle()).As<float, T>() : Sigmoid(x.AsDouble()).As<double, T>();

        public static Vector256<T> Invoke<T>(Vector256<T> x) where T : unmanaged =>
            typeof(T) == typeof(float) ? Sigmoid(x.AsSingle()).As<float, T>() : Sigmoid(x.AsDouble()).As<double, T>();

        public static Vector128<T> Invoke<T>(Vector128<T> x) where T : unmanaged =>
            typeof(T) == typeof(float) ? Sigmoid(x.AsSingle()).As<float, T>() : Sigmoid(x.AsDouble()).As<double, T>();
    }
}
