using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace GradFlow;

/// <summary>
/// The one guard style of GradFlow: argument checks whose messages name the op, the argument and the shapes or
/// sizes. A check is a compare and a branch, inlined; the throwing paths are <c>[DoesNotReturn]</c> and never
/// inlined, so the message formatting stays out of the caller's code. This part knows nothing of tensors, so the
/// span kernels use it too; the tensor checks (dtypes, ranks, shapes of a <see cref="Tensor"/>) are the part in
/// Tensors/Guard.cs.
/// </summary>
internal static partial class Guard
{
    /// <summary>A shape or size list as PyTorch prints it: [2, 3].</summary>
    public static string Shape(ReadOnlySpan<int> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";

    /// <summary>ArgumentException "op: message" with no argument name (a relation between several).</summary>
    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void Throw(string op, string message) => throw new ArgumentException($"{op}: {message}");

    /// <summary>ArgumentException "op: message" naming <paramref name="argument"/>.</summary>
    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowArg(string op, string argument, string message) =>
        throw new ArgumentException($"{op}: {message}", argument);

    /// <summary>ArgumentOutOfRangeException "op: message" naming <paramref name="argument"/> (an index or a count).</summary>
    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowOutOfRange(string op, string argument, string message) =>
        throw new ArgumentOutOfRangeException(argument, $"{op}: {message}");

    /// <summary>InvalidOperationException "op: message": the arguments are fine, the object's state is not.</summary>
    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowInvalid(string op, string message) => throw new InvalidOperationException($"{op}: {message}");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowNull(string op, string argument) =>
        throw new ArgumentNullException(argument, $"{op}: {argument} is null.");

    /// <summary>Throws ArgumentNullException naming the op if <paramref name="value"/> is null; returns it otherwise.</summary>
    public static T NotNull<T>([NotNull] T? value, string op, string argument)
    {
        if (value is null) ThrowNull(op, argument);
        return value;
    }

    /// <summary>A path, tag or name: null gives ArgumentNullException, empty ArgumentException, both naming the op.</summary>
    public static string NotEmpty([NotNull] string? value, string op, string argument)
    {
        if (value is null) ThrowNull(op, argument);
        if (value.Length == 0) ThrowArg(op, argument, $"{argument} is empty.");
        return value;
    }

    /// <summary>As <see cref="NotEmpty"/>, and white space alone is empty too.</summary>
    public static string NotBlank([NotNull] string? value, string op, string argument)
    {
        if (value is null) ThrowNull(op, argument);
        if (string.IsNullOrWhiteSpace(value)) ThrowArg(op, argument, $"{argument} is empty or white space.");
        return value;
    }

    /// <summary>Normalises a possibly negative dim against a rank, as PyTorch does.</summary>
    public static int Dim(int dim, int rank, string op, string argument = "dim")
    {
        int r = Math.Max(rank, 1);
        if (dim < -r || dim >= r)
            ThrowArg(op, argument, $"dim {dim} is out of range for a tensor of rank {rank} (expected {-r} to {r - 1}).");
        return dim < 0 ? dim + r : dim;
    }

    /// <summary>
    /// The operands of C = op(A) op(B) (+ C) for <see cref="Kernels.Gemm"/>: sizes non-negative, each leading dimension
    /// at least its row's length, each span long enough for its matrix.
    /// </summary>
    public static void Gemm(bool transA, bool transB, int m, int n, int k,
        int aLength, int lda, int bLength, int ldb, int cLength, int ldc)
    {
        if (m < 0 || n < 0 || k < 0)
            ThrowArg("Gemm", m < 0 ? "m" : n < 0 ? "n" : "k", $"sizes must be non-negative, got m={m}, n={n}, k={k}.");
        GemmOperand("a", "lda", transA ? k : m, transA ? m : k, aLength, lda, m, n, k);
        GemmOperand("b", "ldb", transB ? n : k, transB ? k : n, bLength, ldb, m, n, k);
        GemmOperand("c", "ldc", m, n, cLength, ldc, m, n, k);
    }

    private static void GemmOperand(string name, string ldName, int rows, int cols, int length, int ld, int m, int n, int k)
    {
        if (ld < Math.Max(1, cols))
            ThrowArg("Gemm", ldName, $"{ldName}={ld} is smaller than the {cols} columns of {name} ({rows} x {cols}; m={m}, n={n}, k={k}).");
        long needed = rows == 0 || cols == 0 ? 0 : ((long)(rows - 1) * ld) + cols;
        if (length < needed)
            ThrowArg("Gemm", name, $"{name} has length {length} but a {rows} x {cols} matrix with {ldName}={ld} needs {needed} (m={m}, n={n}, k={k}).");
    }
}
