using System.Diagnostics.CodeAnalysis;

namespace GradFlow;

/// <summary>
/// Argument checks whose messages name the op, the argument and the shapes. The throwing paths are
/// kept out of line so that the checks cost a compare and a branch on the hot path.
/// </summary>
internal static class Guard
{
    public static string Shape(ReadOnlySpan<int> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";

    public static string Shape(Tensor t) => Shape(t.Shape);

    [DoesNotReturn]
    public static void Throw(string op, string message) => throw new ArgumentException($"{op}: {message}");

    [DoesNotReturn]
    public static void ThrowArg(string op, string argument, string message) =>
        throw new ArgumentException($"{op}: {message}", argument);

    [DoesNotReturn]
    public static void ThrowInvalid(string op, string message) => throw new InvalidOperationException($"{op}: {message}");

    public static void NotNull([NotNull] object? value, string op, string argument)
    {
        if (value is null) throw new ArgumentNullException(argument, $"{op}: {argument} is null.");
    }

    /// <summary>Normalises a possibly negative dim against a rank, as PyTorch does.</summary>
    public static int Dim(int dim, int rank, string op, string argument = "dim")
    {
        int r = Math.Max(rank, 1);
        if (dim < -r || dim >= r)
            ThrowArg(op, argument, $"dim {dim} is out of range for a tensor of rank {rank} (expected {-r} to {r - 1}).");
        return dim < 0 ? dim + r : dim;
    }

    /// <summary>A dim that is indexed into (Slice, Select, Gather, ...): unlike reductions, a 0-d tensor has none.</summary>
    public static int IndexedDim(int dim, Tensor t, string op, string argument = "dim")
    {
        if (t.Rank == 0) ThrowArg(op, argument, $"a 0-d tensor (shape []) has no dim {dim} to index; Reshape(1) it first.");
        return Dim(dim, t.Rank, op, argument);
    }

    public static void Floating(Tensor t, string op, string argument = "input")
    {
        if (!t.DType.IsFloatingPoint())
            ThrowArg(op, argument, $"expects a floating-point tensor, got {t.DType.Name()} of shape {Shape(t)}.");
    }

    public static void SameDType(Tensor a, Tensor b, string op)
    {
        NotNull(a, op, "input");
        NotNull(b, op, "other");
        if (a.DType != b.DType)
            Throw(op, $"dtypes differ: {a.DType.Name()} {Shape(a)} and {b.DType.Name()} {Shape(b)}.");
    }

    public static void Rank(Tensor t, int rank, string op, string argument = "input")
    {
        if (t.Rank != rank)
            ThrowArg(op, argument, $"expects a {rank}-d tensor, got shape {Shape(t)}.");
    }
}
