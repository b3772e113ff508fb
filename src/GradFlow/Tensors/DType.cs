namespace GradFlow;

/// <summary>The element type of a tensor.</summary>
public enum DType
{
    /// <summary>32-bit IEEE float, the default for data and parameters.</summary>
    Float32,
    /// <summary>64-bit IEEE float, used by the gradient checker.</summary>
    Float64,
    /// <summary>64-bit signed integer, for indices and class labels.</summary>
    Int64,
    /// <summary>
    /// True or false: what comparisons give, and what masks are (<c>MaskedFill</c>, attention masks). Stored as
    /// 0/1 in 64-bit words, so every integer kernel handles it; <c>Sum</c> counts the true elements as int64.
    /// </summary>
    Bool,
}

/// <summary>Helpers on <see cref="DType"/>.</summary>
public static class DTypeExtensions
{
    /// <summary>True for Float32 and Float64.</summary>
    public static bool IsFloatingPoint(this DType dtype) => dtype is DType.Float32 or DType.Float64;

    /// <summary>The size of one stored element in bytes (Bool is stored in 64-bit words).</summary>
    public static int ElementSize(this DType dtype) => dtype switch
    {
        DType.Float32 => 4,
        _ => 8,
    };

    /// <summary>The PyTorch-style name, as printed by ToString.</summary>
    public static string Name(this DType dtype) => dtype switch
    {
        DType.Float32 => "float32",
        DType.Float64 => "float64",
        DType.Bool => "bool",
        _ => "int64",
    };

    internal static DType Of<T>()
    {
        if (typeof(T) == typeof(float)) return DType.Float32;
        if (typeof(T) == typeof(double)) return DType.Float64;
        if (typeof(T) == typeof(long)) return DType.Int64;
        throw new NotSupportedException($"GradFlow has no dtype for element type {typeof(T).Name}.");
    }
}
