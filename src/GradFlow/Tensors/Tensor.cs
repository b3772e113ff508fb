using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using GradFlow.Kernels;

namespace GradFlow;

/// <summary>
/// A dense, row-major n-dimensional array with a shape, strides and an offset into a shared
/// <see cref="Storage"/>, so that views (Transpose, Narrow, Expand, ...) cost no copy. A tensor that
/// <see cref="RequiresGrad"/> takes part in reverse-mode autodiff: ops record a <see cref="Node"/>
/// in <see cref="GradFn"/>, and <see cref="Backward(Tensor?, bool, bool)"/> walks the graph.
/// The ops themselves live in the Ops folder, one concept per file, each beside its backward.
/// </summary>
public sealed partial class Tensor
{
    internal readonly Storage Storage;
    internal readonly int[] ShapeArray;
    internal readonly int[] StridesArray;
    internal readonly int Offset;

    internal Tensor(Storage storage, int[] shape, int[] strides, int offset)
    {
        Storage = storage;
        ShapeArray = shape;
        StridesArray = strides;
        Offset = offset;
        NumEl = Shapes.Count(shape);
    }

    internal Tensor(Storage storage, int[] shape) : this(storage, shape, Shapes.ContiguousStrides(shape), 0) { }

    /// <summary>The element type.</summary>
    public DType DType => Storage.DType;

    /// <summary>The size of each dimension; prints as <c>[64, 1, 28, 28]</c>, compares by value, and converts to <c>ReadOnlySpan&lt;int&gt;</c>.</summary>
    public Size Shape => new(ShapeArray, wrap: true);

    /// <summary>The step, in elements, between neighbours along each dimension.</summary>
    public ReadOnlySpan<int> Strides => StridesArray;

    /// <summary>The number of dimensions (0 for a scalar).</summary>
    public int Rank => ShapeArray.Length;

    /// <summary>The number of elements.</summary>
    public int NumEl { get; }

    /// <summary>The size of one dimension; negative dims count from the end.</summary>
    public int Size(int dim) => ShapeArray[Guard.IndexedDim(dim, this, nameof(Size))];

    /// <summary>True when the elements are laid out row-major with no gaps, from <see cref="Offset"/>.</summary>
    public bool IsContiguous => Shapes.IsContiguous(ShapeArray, StridesArray);

    /// <summary>How many in-place writes the underlying storage has seen.</summary>
    public int Version => Storage.Version;

    internal void BumpVersion() => Storage.Version++;

    /// <summary>The flat span of a contiguous tensor's elements (internal fast path).</summary>
    internal Span<T> Span<T>()
    {
        Debug.Assert(IsContiguous);
        return new Span<T>(Storage.As<T>(), Offset, NumEl);
    }

    /// <summary>The whole backing array, for strided kernels that take an offset.</summary>
    internal T[] Data<T>() => Storage.As<T>();

    /// <summary>Allocates an uninitialised contiguous tensor (every element is about to be written).</summary>
    internal static Tensor Empty(ReadOnlySpan<int> shape, DType dtype)
    {
        int[] s = shape.ToArray();
        return new Tensor(Storage.Allocate(dtype, Shapes.Count(s), zeroed: false), s);
    }

    internal static Tensor Empty(int[] shape, DType dtype) =>
        new(Storage.Allocate(dtype, Shapes.Count(shape), zeroed: false), shape);

    internal static Tensor EmptyZeroed(int[] shape, DType dtype) =>
        new(Storage.Allocate(dtype, Shapes.Count(shape), zeroed: true), shape);

    /// <summary>A view sharing this tensor's storage and version counter.</summary>
    internal Tensor AsStridedView(int[] shape, int[] strides, int offset) => new(Storage, shape, strides, offset);

    /// <summary>The single element of a one-element tensor, as a double.</summary>
    public double Item()
    {
        if (NumEl != 1)
            Guard.ThrowInvalid(nameof(Item), $"only a one-element tensor converts to a scalar, this one has shape {Guard.Shape(this)}.");
        return GetFlat(0);
    }

    /// <summary>The single element of a one-element tensor, as T (float, double or long).</summary>
    public T Item<T>() where T : unmanaged
    {
        if (NumEl != 1)
            Guard.ThrowInvalid(nameof(Item), $"only a one-element tensor converts to a scalar, this one has shape {Guard.Shape(this)}.");
        if (DTypeExtensions.Of<T>() != DType)
            Guard.ThrowInvalid(nameof(Item), $"asked for {typeof(T).Name} from a {DType.Name()} tensor.");
        return Storage.As<T>()[Offset];
    }

    /// <summary>Element number <paramref name="flat"/> in row-major order, as a double (slow; for inspection and tests).</summary>
    public double GetFlat(int flat)
    {
        if ((uint)flat >= (uint)NumEl)
            Guard.ThrowArg(nameof(GetFlat), nameof(flat), $"element {flat} is out of range for shape {Guard.Shape(this)} ({NumEl} elements).");
        return ReadAt(Shapes.StorageIndex(flat, ShapeArray, StridesArray, Offset));
    }

    private double ReadAt(int pos) => DType switch
    {
        DType.Float32 => Storage.As<float>()[pos],
        DType.Float64 => Storage.As<double>()[pos],
        _ => Storage.As<long>()[pos],
    };

    /// <summary>Copies the elements, row-major, into a new array of T (float, double or long).</summary>
    public T[] ToArray<T>() where T : unmanaged
    {
        if (DTypeExtensions.Of<T>() != DType)
            Guard.ThrowInvalid(nameof(ToArray), $"asked for {typeof(T).Name}[] from a {DType.Name()} tensor of shape {Guard.Shape(this)}.");
        return CopyElements<T>();
    }

    /// <summary>The elements as doubles, row-major, whatever the dtype.</summary>
    public double[] ToDoubleArray() => DType switch
    {
        DType.Float32 => Array.ConvertAll(CopyElements<float>(), x => (double)x),
        DType.Float64 => CopyElements<double>(),
        _ => Array.ConvertAll(CopyElements<long>(), x => (double)x),
    };

    /// <summary>
    /// The elements as doubles, row-major, written into <paramref name="destination"/> (of exactly <see cref="NumEl"/>
    /// entries); true when every element is finite (the conversion's own pass says so, no second scan).
    /// </summary>
    internal bool CopyToDoubles(Span<double> destination)
    {
        Debug.Assert(destination.Length == NumEl);
        if (IsContiguous && DType == DType.Float32) return PrecisionConversion.Widen(Span<float>(), destination);
        if (IsContiguous && DType == DType.Float64) return PrecisionConversion.Copy(Span<double>(), destination);
        ToDoubleArray().CopyTo(destination);
        return PrecisionConversion.AllFinite(destination);
    }

    /// <summary>
    /// A new contiguous floating tensor holding <paramref name="source"/> (rounded to float32 for a float32 one);
    /// <paramref name="finite"/> says whether every source value was finite.
    /// </summary>
    internal static Tensor FromDoubles(ReadOnlySpan<double> source, int[] shape, DType dtype, out bool finite)
    {
        Debug.Assert(dtype.IsFloatingPoint() && source.Length == Shapes.Count(shape));
        var t = Empty(shape, dtype);
        finite = dtype == DType.Float64 ? PrecisionConversion.Copy(source, t.Span<double>()) : PrecisionConversion.Narrow(source, t.Span<float>());
        return t;
    }

    /// <summary>
    /// The elements row-major in a new array, copied by the strided kernel rather than by an op: reading a
    /// tensor (printing it, saving it) records nothing and no observer sees it.
    /// </summary>
    internal T[] CopyElements<T>() where T : unmanaged
    {
        if (IsContiguous) return Span<T>().ToArray();
        var result = GC.AllocateUninitializedArray<T>(NumEl);
        Elementwise.Copy(ShapeArray, result, Shapes.ContiguousStrides(ShapeArray), 0, Data<T>(), StridesArray, Offset);
        return result;
    }
}

internal static class Debug
{
    [System.Diagnostics.Conditional("DEBUG")]
    public static void Assert([DoesNotReturnIf(false)] bool condition, [CallerArgumentExpression(nameof(condition))] string? expr = null)
    {
        if (!condition) throw new InvalidOperationException("Internal assertion failed: " + expr);
    }
}
