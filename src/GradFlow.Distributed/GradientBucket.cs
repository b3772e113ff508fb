using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using GradFlow.Distributed.Native;
using GradFlow.Kernels;

namespace GradFlow.Distributed;

/// <summary>
/// A run of parameters whose gradients are averaged together, started when the last of them is ready. Small gradients
/// are copied into one flat buffer on the pinned object heap (MPI reads it while backward goes on), each at its offset,
/// and travel in one allreduce; a gradient of at least <see cref="DistributedDataParallelOptions.InPlaceBytes"/> is
/// reduced where it lies, pinned for the duration, in an allreduce of its own: no copy in, no copy out, and no second
/// buffer of its size competing for the cache. Parameters of one dtype only. Which parameter goes which way depends on
/// the layout alone, so every rank starts the same allreduces in the same order.
/// </summary>
internal sealed unsafe class GradientBucket
{
    private readonly nint[] _requests;   // in start order: each in-place gradient's, then the packed buffer's
    private readonly GCHandle[] _pins;   // per slot: the in-place gradient's storage while its allreduce runs
    private int _nextPoll;
    private double _sharedSquares; // the averaged gradients' squared norm, taken by the shared-memory reduction at start

    public GradientBucket(int index, DType dtype, int[] parameters, int[] offsets, bool[] inPlace, int count, SharedMemoryAllreduce? shared = null)
    {
        Shared = shared;
        Index = index;
        DType = dtype;
        Parameters = parameters;
        Offsets = offsets;
        InPlace = inPlace;
        Count = count;
        if (shared is not null) _requests = []; // packed into the shared segment: no buffer of its own, no MPI request
        else
        {
            if (dtype == DType.Float32) Floats = GC.AllocateArray<float>(count, pinned: true);
            else Doubles = GC.AllocateArray<double>(count, pinned: true);
            _requests = new nint[inPlace.Count(x => x) + (count > 0 ? 1 : 0)];
        }
        _pins = new GCHandle[parameters.Length];
    }

    public int Index { get; }

    /// <summary>The machine's shared window the bucket is reduced through, or null for MPI's allreduce.</summary>
    public SharedMemoryAllreduce? Shared { get; }
    public DType DType { get; }

    /// <summary>Indices into the DDP's parameter list, in the order they sit in the buffer.</summary>
    public int[] Parameters { get; }

    /// <summary>Each packed parameter's first element in the buffer (unused for those reduced in place).</summary>
    public int[] Offsets { get; }

    /// <summary>Per slot: reduced in its own storage rather than copied into the buffer.</summary>
    public bool[] InPlace { get; }

    /// <summary>Elements in the buffer (the packed parameters').</summary>
    public int Count { get; }

    public float[]? Floats { get; }
    public double[]? Doubles { get; }

    /// <summary>Parameters whose gradient this backward has not produced yet.</summary>
    public int Pending;

    public MpiType MpiType => DType == DType.Float32 ? MpiType.Float32 : MpiType.Float64;

    private int ElementSize => DType == DType.Float32 ? 4 : 8;

    public void* Pointer => DType == DType.Float32
        ? Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(Floats!))
        : Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(Doubles!));

    /// <summary>
    /// Starts the bucket's allreduces (non-blocking with <paramref name="overlap"/>, else each completes before the next):
    /// each in-place gradient's as soon as it is measured, then the packed buffer's once every small gradient is copied in.
    /// With <paramref name="ranks"/>, each gradient's squared norm and NaN/Inf count are recorded before it is sent.
    /// Through the shared window the whole reduction runs now, its first meeting the step header's exchange when
    /// <paramref name="header"/> is given.
    /// </summary>
    public void Start(Communicator comm, Tensor[] parameters, RankComparison? ranks, bool overlap, StepAgreement? header = null)
    {
        if (Shared is not null)
        {
            _sharedSquares = DType == DType.Float32
                ? ReduceShared<float>(Shared, comm.Size, parameters, ranks, header)
                : ReduceShared<double>(Shared, comm.Size, parameters, ranks, header);
            return;
        }
        int r = 0;
        _nextPoll = 0;
        for (int s = 0; s < Parameters.Length; s++)
        {
            if (!InPlace[s]) continue;
            int p = Parameters[s];
            var grad = OwnGradient(parameters[p]);
            if (ranks is not null)
            {
                var (squares, nonFinite) = Measure(grad);
                ranks.Local(p, squares, nonFinite);
            }
            _pins[s] = GCHandle.Alloc(grad.Storage.RawData, GCHandleType.Pinned);
            void* address = (byte*)_pins[s].AddrOfPinnedObject() + (long)grad.Offset * ElementSize;
            Launch(comm, ref _requests[r++], address, grad.NumEl, overlap);
        }
        if (Count == 0) return;
        for (int s = 0; s < Parameters.Length; s++)
        {
            if (InPlace[s]) continue;
            var (squares, nonFinite) = Pack(s, parameters[Parameters[s]], ranks is not null);
            ranks?.Local(Parameters[s], squares, nonFinite);
        }
        Launch(comm, ref _requests[r], Pointer, Count, overlap);
    }

    private void Launch(Communicator comm, ref nint request, void* address, int count, bool overlap)
    {
        if (overlap) request = comm.StartAllreduce(address, count, MpiType);
        else
        {
            comm.Allreduce(address, count, MpiType);
            request = comm.RequestNull;
        }
    }

    /// <summary>Lets MPI progress the oldest allreduce still running (one MPI_Test); true once all have completed.</summary>
    public bool Poll(Communicator comm)
    {
        if (_nextPoll < _requests.Length && comm.Test(ref _requests[_nextPoll])) _nextPoll++;
        return _nextPoll == _requests.Length;
    }

    /// <summary>
    /// Waits for the bucket's allreduces and writes each sum over ranks divided by <paramref name="worldSize"/> into the
    /// gradients; returns the averaged gradients' squared norm when measured.
    /// </summary>
    public double Complete(Communicator comm, Tensor[] parameters, int worldSize, bool measure)
    {
        if (Shared is not null) return _sharedSquares;
        WaitAll(comm);
        double squares = 0;
        for (int s = 0; s < Parameters.Length; s++)
        {
            var parameter = parameters[Parameters[s]];
            if (!InPlace[s])
            {
                squares += Unpack(s, parameter, worldSize, measure);
                continue;
            }
            var grad = parameter.Grad!;
            squares += DType == DType.Float32
                ? AverageMeasured<float>(grad.Span<float>(), worldSize, grad.Span<float>(), measure)
                : AverageMeasured<double>(grad.Span<double>(), worldSize, grad.Span<double>(), measure);
            grad.BumpVersion();
        }
        return squares;
    }

    // A gradient (zeros when it has none) into its place in this rank's segment, its norm and NaN/Inf count taken on the way.
    private static void CopyIn<T>(SharedMemoryAllreduce shared, int offset, Tensor parameter, int p, RankComparison? ranks) where T : unmanaged, INumber<T>
    {
        var target = new Span<T>((T*)shared.Mine + offset, parameter.NumEl);
        var grad = parameter.Grad;
        if (grad is not null && !grad.IsContiguous) grad = grad.Detach().Contiguous();
        var (squares, nonFinite) = grad is null ? Zero(target) : CopyMeasured<T>(grad.Span<T>(), target, ranks is not null);
        ranks?.Local(p, squares, nonFinite);
    }

    /// <summary>
    /// The whole allreduce through the machine's shared window, done now: every gradient goes into this rank's segment
    /// (measured on the way), the ranks meet, and the average is written into the gradients: with two ranks on the
    /// machine each adds both segments straight into its gradients, else the ranks reduce a share each and each gradient
    /// is copied back from the shares' owners. The averaged norm is measured on the way, in the same chunks
    /// as <see cref="Complete"/>, so the same bits.
    /// </summary>
    private double ReduceShared<T>(SharedMemoryAllreduce shared, int worldSize, Tensor[] parameters, RankComparison? ranks, StepAgreement? header) where T : unmanaged, INumber<T>
    {
        // All at once when the bucket is complete: copying each gradient as backward produced it (still in cache) was not
        // clearly faster and its copy took longer (bench/RESULTS.md, "One meeting per bucket on the shared window").
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        for (int s = 0; s < Parameters.Length; s++) CopyIn<T>(shared, Offsets[s], parameters[Parameters[s]], Parameters[s], ranks);
        shared.CopyInTicks += System.Diagnostics.Stopwatch.GetTimestamp() - t0;
        shared.Publish(header);
        if (!shared.Fused) shared.ReduceShares<T>(Count, worldSize);
        long t1 = System.Diagnostics.Stopwatch.GetTimestamp();
        double total = 0;
        for (int s = 0; s < Parameters.Length; s++)
        {
            var parameter = parameters[Parameters[s]];
            var grad = parameter.Grad;
            // A contiguous gradient is what the segment was filled from: the pair sum reads this rank's values from it.
            bool holdsMine = grad is not null && grad.IsContiguous;
            if (!holdsMine)
            {
                using var _ = TensorArena.Suspend(); // a leaf's gradient outlives the step
                parameter.Grad = grad = Tensor.Empty(parameter.ShapeArray, DType);
            }
            var target = grad!.Span<T>();
            var acc = new StatsAccumulator();
            for (int start = 0; start < target.Length; start += Chunk)
            {
                var chunk = target.Slice(start, Math.Min(Chunk, target.Length - start));
                if (shared.Fused) shared.SumPair(Offsets[s] + start, chunk, holdsMine, worldSize);
                else shared.CopyAveraged(Offsets[s] + start, Count, chunk);
                if (ranks is not null) Accumulate<T>(chunk, ref acc);
            }
            grad.BumpVersion();
            total += acc.SumSquares;
        }
        long ticks = System.Diagnostics.Stopwatch.GetTimestamp() - t1;
        if (shared.Fused) shared.ReduceTicks += ticks; // the sum and the copy out are one pass
        else shared.CopyOutTicks += ticks;
        shared.Release();
        return total;
    }

    /// <summary>Waits for whatever is still running and unpins the gradients (also when a step is abandoned).</summary>
    public void WaitAll(Communicator comm)
    {
        for (int i = 0; i < _requests.Length; i++)
            if (_requests[i] != 0 && _requests[i] != comm.RequestNull) comm.Wait(ref _requests[i]);
        for (int s = 0; s < _pins.Length; s++)
            if (_pins[s].IsAllocated) _pins[s].Free();
    }

    // The gradient an in-place allreduce may write into: the parameter's own when it is contiguous, else a new one holding
    // its values (zeros when it has none), which becomes the parameter's gradient, as the average would make it anyway.
    private Tensor OwnGradient(Tensor parameter)
    {
        var grad = parameter.Grad;
        if (grad is not null && grad.IsContiguous) return grad;
        using var _ = TensorArena.Suspend(); // a leaf's gradient outlives the step
        var own = Tensor.Zeros(parameter.ShapeArray, DType);
        if (grad is not null)
            using (Autograd.NoGrad())
                own.CopyFrom(grad);
        parameter.Grad = own;
        return own;
    }

    private (double SumSquares, long NonFinite) Measure(Tensor grad)
    {
        var acc = new StatsAccumulator();
        if (DType == DType.Float32) Statistics.Accumulate(grad.Span<float>(), ref acc, default);
        else Statistics.Accumulate(grad.Span<double>(), ref acc, default);
        return (acc.SumSquares, acc.NaNs + acc.Infs);
    }

    /// <summary>
    /// Copies a parameter's gradient (zeros when it has none) into its slot; with <paramref name="measure"/>, returns its
    /// squared norm over the finite values and its NaN/Inf count, taken from the slot while it is in cache.
    /// </summary>
    private (double SumSquares, long NonFinite) Pack(int slot, Tensor parameter, bool measure)
    {
        int offset = Offsets[slot], n = parameter.NumEl;
        var grad = parameter.Grad;
        if (grad is not null && !grad.IsContiguous) grad = grad.Detach().Contiguous();
        if (DType == DType.Float32)
            return grad is null ? Zero(Floats.AsSpan(offset, n)) : CopyMeasured(grad.Span<float>(), Floats.AsSpan(offset, n), measure);
        return grad is null ? Zero(Doubles.AsSpan(offset, n)) : CopyMeasured(grad.Span<double>(), Doubles.AsSpan(offset, n), measure);
    }

    private static (double, long) Zero<T>(Span<T> slot) where T : unmanaged
    {
        slot.Clear();
        return default;
    }

    /// <summary>
    /// Writes the slot's sum over ranks divided by <paramref name="worldSize"/> into the parameter's gradient (allocating
    /// one the first time); returns the averaged gradient's squared norm when measured.
    /// </summary>
    private double Unpack(int slot, Tensor parameter, int worldSize, bool measure)
    {
        int offset = Offsets[slot], n = parameter.NumEl;
        var grad = parameter.Grad;
        if (grad is null || !grad.IsContiguous)
        {
            using var _ = TensorArena.Suspend(); // a leaf's gradient outlives the step
            parameter.Grad = grad = Tensor.Empty(parameter.ShapeArray, DType);
        }
        double squares = DType == DType.Float32
            ? AverageMeasured<float>(Floats.AsSpan(offset, n), worldSize, grad.Span<float>(), measure)
            : AverageMeasured<double>(Doubles.AsSpan(offset, n), worldSize, grad.Span<double>(), measure);
        grad.BumpVersion();
        return squares;
    }

    // Statistics.Accumulate sums float32 in blocks of this many values: chunks of the same size give the same bits as
    // one call over the whole span, and a chunk just written (16 KB of float32) is still in L1 when it is measured, so
    // the measure costs no second pass over memory (the gradient is megabytes; a separate pass read it all again).
    private const int Chunk = 4096;

    private static (double SumSquares, long NonFinite) CopyMeasured<T>(ReadOnlySpan<T> source, Span<T> slot, bool measure) where T : unmanaged
    {
        if (!measure)
        {
            source.CopyTo(slot);
            return default;
        }
        var acc = new StatsAccumulator();
        for (int start = 0; start < source.Length; start += Chunk)
        {
            int length = Math.Min(Chunk, source.Length - start);
            source.Slice(start, length).CopyTo(slot.Slice(start, length));
            Accumulate<T>(slot.Slice(start, length), ref acc);
        }
        return (acc.SumSquares, acc.NaNs + acc.Infs);
    }

    private static double AverageMeasured<T>(ReadOnlySpan<T> sum, int worldSize, Span<T> grad, bool measure) where T : unmanaged, INumber<T>
    {
        var acc = new StatsAccumulator();
        for (int start = 0; start < sum.Length; start += Chunk)
        {
            int length = Math.Min(Chunk, sum.Length - start);
            Average(sum.Slice(start, length), worldSize, grad.Slice(start, length));
            if (measure) Accumulate<T>(grad.Slice(start, length), ref acc);
        }
        return acc.SumSquares;
    }

    private static void Accumulate<T>(Span<T> x, ref StatsAccumulator acc) where T : unmanaged
    {
        if (typeof(T) == typeof(float)) Statistics.Accumulate(MemoryMarshal.Cast<T, float>(x), ref acc, default);
        else Statistics.Accumulate(MemoryMarshal.Cast<T, double>(x), ref acc, default);
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
