using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using GradFlow.Distributed.Native;
using GradFlow.Kernels;

namespace GradFlow.Distributed;

/// <summary>
/// A run of parameters whose gradients travel together in one allreduce: a flat buffer on the pinned object heap (MPI
/// reads it while backward goes on), each parameter at its offset. Parameters of one dtype only.
/// </summary>
internal sealed unsafe class GradientBucket
{
    public GradientBucket(int index, DType dtype, int[] parameters, int[] offsets, int count)
    {
        Index = index;
        DType = dtype;
        Parameters = parameters;
        Offsets = offsets;
        Count = count;
        if (dtype == DType.Float32) Floats = GC.AllocateArray<float>(count, pinned: true);
        else Doubles = GC.AllocateArray<double>(count, pinned: true);
    }

    public int Index { get; }
    public DType DType { get; }

    /// <summary>Indices into the DDP's parameter list, in the order they sit in the buffer.</summary>
    public int[] Parameters { get; }

    /// <summary>Each parameter's first element in the buffer.</summary>
    public int[] Offsets { get; }

    /// <summary>Elements in the buffer.</summary>
    public int Count { get; }

    public float[]? Floats { get; }
    public double[]? Doubles { get; }

    /// <summary>Parameters whose gradient this backward has not produced yet.</summary>
    public int Pending;

    /// <summary>The allreduce in flight (MPI_REQUEST_NULL when none).</summary>
    public nint Request;

    public MpiType MpiType => DType == DType.Float32 ? MpiType.Float32 : MpiType.Float64;

    public void* Pointer => DType == DType.Float32
        ? Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(Floats!))
        : Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(Doubles!));

    /// <summary>
    /// Copies a parameter's gradient (zeros when it has none) into its slot; with <paramref name="measure"/>, returns its
    /// squared norm over the finite values and its NaN/Inf count, taken from the slot while it is in cache.
    /// </summary>
    public (double SumSquares, long NonFinite) Pack(int slot, Tensor parameter, bool measure)
    {
        int offset = Offsets[slot], n = parameter.NumEl;
        var grad = parameter.Grad;
        if (DType == DType.Float32)
        {
            var dst = Floats.AsSpan(offset, n);
            if (grad is null) dst.Clear();
            else if (grad.IsContiguous) grad.Span<float>().CopyTo(dst);
            else grad.Detach().Contiguous().Span<float>().CopyTo(dst);
            return measure ? Measure(dst) : default;
        }
        else
        {
            var dst = Doubles.AsSpan(offset, n);
            if (grad is null) dst.Clear();
            else if (grad.IsContiguous) grad.Span<double>().CopyTo(dst);
            else grad.Detach().Contiguous().Span<double>().CopyTo(dst);
            return measure ? Measure(dst) : default;
        }
    }

    /// <summary>
    /// Writes the slot's sum over ranks divided by <paramref name="worldSize"/> into the parameter's gradient (allocating
    /// one the first time); returns the averaged gradient's squared norm when measured.
    /// </summary>
    public double Unpack(int slot, Tensor parameter, int worldSize, bool measure)
    {
        int offset = Offsets[slot], n = parameter.NumEl;
        var grad = parameter.Grad;
        if (grad is null || !grad.IsContiguous)
        {
            using var _ = TensorArena.Suspend(); // a leaf's gradient outlives the step
            parameter.Grad = grad = Tensor.Empty(parameter.ShapeArray, DType);
        }
        if (DType == DType.Float32)
        {
            var dst = grad.Span<float>();
            Average(Floats.AsSpan(offset, n), worldSize, dst);
            grad.BumpVersion();
            return measure ? Measure(dst).SumSquares : 0;
        }
        else
        {
            var dst = grad.Span<double>();
            Average(Doubles.AsSpan(offset, n), worldSize, dst);
            grad.BumpVersion();
            return measure ? Measure(dst).SumSquares : 0;
        }
    }

    private static (double SumSquares, long NonFinite) Measure(ReadOnlySpan<float> x)
    {
        var acc = new StatsAccumulator();
        Statistics.Accumulate(x, ref acc, default);
        return (acc.SumSquares, acc.NaNs + acc.Infs);
    }

    private static (double SumSquares, long NonFinite) Measure(ReadOnlySpan<double> x)
    {
        var acc = new StatsAccumulator();
        Statistics.Accumulate(x, ref acc, default);
        return (acc.SumSquares, acc.NaNs + acc.Infs);
    }

    // sum / N, the mean over ranks of their mean-over-batch gradients: with equal batches, the gradient of the mean
    // over the union of the batches. A division (not a multiply by 1/N) so that N = 3 rounds like one mean would.
    private static void Average<T>(ReadOnlySpan<T> sum, int worldSize, Span<T> dst) where T : unmanaged, INumber<T>
    {
        T n = T.CreateChecked(worldSize);
        var vn = new Vector<T>(n);
        int i = 0;
        if (Vector.IsHardwareAccelerated)
            for (; i <= sum.Length - Vector<T>.Count; i += Vector<T>.Count)
                (new Vector<T>(sum[i..]) / vn).CopyTo(dst[i..]);
        for (; i < sum.Length; i++) dst[i] = sum[i] / n;
    }
}
