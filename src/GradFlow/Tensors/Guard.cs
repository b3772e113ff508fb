namespace GradFlow;

/// <summary>The tensor part of <see cref="Guard"/> (the rest, tensor-free, is Kernels/Guard.cs).</summary>
internal static partial class Guard
{
    public static string Shape(Tensor t) => Shape(t.Shape);

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
