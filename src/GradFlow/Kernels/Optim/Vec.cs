using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GradFlow.Kernels.Optim;

/// <summary>
/// A vector of T at one width, with the handful of operations the optimiser updates need. Each
/// update rule is written once, generic over this interface, and instantiated at 512 bits, 256 bits
/// and one lane for the tail, so the three paths cannot drift apart. (The BCL's ISimdVector plays
/// this role but is not public.) No operation an update rule uses fuses a multiply with an add: results are
/// rounded as the separate tensor ops of the reference implementation round them (MultiplyAdd is for the
/// measurements taken beside the update).
/// </summary>
internal interface IVec<TSelf, T>
    where TSelf : struct, IVec<TSelf, T>
    where T : unmanaged, IFloatingPointIeee754<T>
{
    static abstract int Count { get; }
    static abstract TSelf Create(T value);
    static abstract TSelf Load(ref T source, nuint index);
    static abstract void Store(TSelf value, ref T destination, nuint index);
    static abstract TSelf operator +(TSelf a, TSelf b);
    static abstract TSelf operator -(TSelf a, TSelf b);
    static abstract TSelf operator *(TSelf a, TSelf b);
    static abstract TSelf operator /(TSelf a, TSelf b);
    static abstract TSelf operator -(TSelf a);
    static abstract TSelf Sqrt(TSelf a);
    /// <summary>Elementwise maximum, NaN-propagating like torch.maximum.</summary>
    static abstract TSelf Max(TSelf a, TSelf b);
    static abstract T Sum(TSelf a);
    /// <summary>|a|.</summary>
    static abstract TSelf Abs(TSelf a);
    /// <summary>
    /// Elementwise maximum as the hardware computes it (one vmaxps; which operand wins when one is NaN is unspecified):
    /// for measurements whose NaN cases are handled apart, never for an update rule. (Max's NaN propagation costs a
    /// range and two fix-up instructions per call.)
    /// </summary>
    static abstract TSelf MaxNative(TSelf a, TSelf b);
    /// <summary>a * b + c, fused (one rounding): for measurements only, never for an update rule.</summary>
    static abstract TSelf MultiplyAdd(TSelf a, TSelf b, TSelf c);
    /// <summary>How many lanes of a are exactly zero.</summary>
    static abstract int CountZeros(TSelf a);
}

internal readonly struct V512<T>(Vector512<T> v) : IVec<V512<T>, T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Vector512<T> _v = v;
    public static int Count => Vector512<T>.Count;
    public static bool IsSupported => Vector512.IsHardwareAccelerated && Vector512<T>.IsSupported;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512<T> Create(T value) => new(Vector512.Create(value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512<T> Load(ref T source, nuint index) => new(Vector512.LoadUnsafe(ref source, index));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(V512<T> value, ref T destination, nuint index) => value._v.StoreUnsafe(ref destination, index);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512<T> operator +(V512<T> a, V512<T> b) => new(a._v + b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512<T> operator -(V512<T> a, V512<T> b) => new(a._v - b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512<T> operator *(V512<T> a, V512<T> b) => new(a._v * b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512<T> operator /(V512<T> a, V512<T> b) => new(a._v / b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512<T> operator -(V512<T> a) => new(-a._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512<T> Sqrt(V512<T> a) => new(Vector512.Sqrt(a._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512<T> Max(V512<T> a, V512<T> b) => new(Vector512.Max(a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static T Sum(V512<T> a) => Vector512.Sum(a._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512<T> Abs(V512<T> a) => new(Vector512.Abs(a._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V512<T> MultiplyAdd(V512<T> a, V512<T> b, V512<T> c) => new(typeof(T) == typeof(float)
        ? Vector512.FusedMultiplyAdd(a._v.AsSingle(), b._v.AsSingle(), c._v.AsSingle()).As<float, T>()
        : Vector512.FusedMultiplyAdd(a._v.AsDouble(), b._v.AsDouble(), c._v.AsDouble()).As<double, T>());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512<T> MaxNative(V512<T> a, V512<T> b) => new(Vector512.MaxNative(a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static int CountZeros(V512<T> a) => BitOperations.PopCount(Vector512.Equals(a._v, Vector512<T>.Zero).ExtractMostSignificantBits());
}

internal readonly struct V256<T>(Vector256<T> v) : IVec<V256<T>, T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Vector256<T> _v = v;
    public static int Count => Vector256<T>.Count;
    public static bool IsSupported => Vector256.IsHardwareAccelerated && Vector256<T>.IsSupported;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256<T> Create(T value) => new(Vector256.Create(value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256<T> Load(ref T source, nuint index) => new(Vector256.LoadUnsafe(ref source, index));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(V256<T> value, ref T destination, nuint index) => value._v.StoreUnsafe(ref destination, index);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256<T> operator +(V256<T> a, V256<T> b) => new(a._v + b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256<T> operator -(V256<T> a, V256<T> b) => new(a._v - b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256<T> operator *(V256<T> a, V256<T> b) => new(a._v * b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256<T> operator /(V256<T> a, V256<T> b) => new(a._v / b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256<T> operator -(V256<T> a) => new(-a._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256<T> Sqrt(V256<T> a) => new(Vector256.Sqrt(a._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256<T> Max(V256<T> a, V256<T> b) => new(Vector256.Max(a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static T Sum(V256<T> a) => Vector256.Sum(a._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256<T> Abs(V256<T> a) => new(Vector256.Abs(a._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V256<T> MultiplyAdd(V256<T> a, V256<T> b, V256<T> c) => new(typeof(T) == typeof(float)
        ? Vector256.FusedMultiplyAdd(a._v.AsSingle(), b._v.AsSingle(), c._v.AsSingle()).As<float, T>()
        : Vector256.FusedMultiplyAdd(a._v.AsDouble(), b._v.AsDouble(), c._v.AsDouble()).As<double, T>());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256<T> MaxNative(V256<T> a, V256<T> b) => new(Vector256.MaxNative(a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static int CountZeros(V256<T> a) => BitOperations.PopCount(Vector256.Equals(a._v, Vector256<T>.Zero).ExtractMostSignificantBits());
}

/// <summary>One lane: the scalar tail, computed by the same generic update code as the vector body.</summary>
internal readonly struct V1<T>(T v) : IVec<V1<T>, T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly T _v = v;
    public static int Count => 1;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V1<T> Create(T value) => new(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V1<T> Load(ref T source, nuint index) => new(Unsafe.Add(ref source, index));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(V1<T> value, ref T destination, nuint index) => Unsafe.Add(ref destination, index) = value._v;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V1<T> operator +(V1<T> a, V1<T> b) => new(a._v + b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V1<T> operator -(V1<T> a, V1<T> b) => new(a._v - b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V1<T> operator *(V1<T> a, V1<T> b) => new(a._v * b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V1<T> operator /(V1<T> a, V1<T> b) => new(a._v / b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V1<T> operator -(V1<T> a) => new(-a._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V1<T> Sqrt(V1<T> a) => new(T.Sqrt(a._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V1<T> Max(V1<T> a, V1<T> b) => new(T.Max(a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static T Sum(V1<T> a) => a._v;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V1<T> Abs(V1<T> a) => new(T.Abs(a._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V1<T> MultiplyAdd(V1<T> a, V1<T> b, V1<T> c) => new(T.FusedMultiplyAdd(a._v, b._v, c._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V1<T> MaxNative(V1<T> a, V1<T> b) => new(a._v > b._v ? a._v : b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static int CountZeros(V1<T> a) => a._v == T.Zero ? 1 : 0;
}
