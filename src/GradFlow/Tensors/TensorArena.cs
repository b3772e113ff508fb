namespace GradFlow;

/// <summary>
/// A caching allocator for training steps. Inside <see cref="Step"/>, the memory of tensors made by
/// ops that record autograd (forward activations, backward gradients) is rented from this arena and
/// returned when the step ends, so a steady-state step reuses the same buffers instead of allocating
/// (large arrays are otherwise allocated on .NET's large-object heap, which only a full GC frees).
/// Tensors made under NoGrad (optimiser updates), parameters and optimiser state are not rented in a training step;
/// an <see cref="InferenceStep"/> (evaluation under NoGrad) rents everything it makes.
/// A parameter's <c>Grad</c> outlives the step; when the optimiser's or module's <c>ZeroGrad()</c> later drops it
/// (sets it to null), a gradient the backward allocated in a step goes back to this arena for the next step.
/// Reading a rented tensor after its step (or a dropped gradient after <c>ZeroGrad()</c>) throws
/// <see cref="ObjectDisposedException"/>, never returns recycled values; keep a result with <see cref="Keep"/>.
/// <code>
/// var arena = new TensorArena();
/// for (...) { using (arena.Step()) { var loss = ...; loss.Backward(); optimizer.Step(); total += loss.Item(); } }
/// using (Autograd.NoGrad()) foreach (var (x, y) in testLoader) { using (arena.InferenceStep()) correct += ...Item(); }
/// </code>
/// </summary>
public sealed class TensorArena
{
    [ThreadStatic] private static TensorArena? t_current;
    [ThreadStatic] private static int t_suspended;

    private readonly Dictionary<(DType, int), Stack<Array>> _free = [];
    private readonly List<Storage> _rented = [];
    private bool _inStep;
    private bool _inference;

    internal static TensorArena? Current => t_current;

    /// <summary>Bytes held by the arena's free lists between steps.</summary>
    public long PooledBytes { get; private set; }

    /// <summary>Buffers handed out in the last or current step.</summary>
    public int RentedCount => _rented.Count;

    internal bool ShouldPool => t_suspended == 0 && (_inference || AllocationContext.StepScoped);

    /// <summary>Begins a step on this thread; disposing the result returns the step's buffers to the arena.</summary>
    public StepScope Step() => Begin(inference: false, "TensorArena.Step");

    /// <summary>
    /// Begins an evaluation step: every tensor made on this thread until it ends is rented, under NoGrad too, so a
    /// loop of forward passes without a graph (a test-set evaluation) reuses one set of buffers instead of leaving each
    /// batch's activations to the garbage collector (large arrays, which only a full collection frees). A training
    /// <see cref="Step"/> does not rent NoGrad tensors, because optimisers and user code make state there that outlives
    /// the step; here, keep what must outlive it with <see cref="Keep"/> or make it under <see cref="Suspend"/>.
    /// </summary>
    public StepScope InferenceStep() => Begin(inference: true, "TensorArena.InferenceStep");

    private StepScope Begin(bool inference, string op)
    {
        if (_inStep) Guard.ThrowInvalid(op, "this arena is already in a step; steps do not nest.");
        _inStep = true;
        _inference = inference;
        var previous = t_current;
        t_current = this;
        return new StepScope(this, previous);
    }

    /// <summary>A scope in which nothing is rented from the current arena (for state that must outlive the step).</summary>
    public static SuspendScope Suspend()
    {
        t_suspended++;
        return new SuspendScope();
    }

    /// <summary>Keeps a tensor's memory beyond the step (it is then never recycled). Returns the tensor.</summary>
    public static Tensor Keep(Tensor tensor)
    {
        Guard.NotNull(tensor, "TensorArena.Keep", nameof(tensor));
        tensor.Storage.Kept = true;
        return tensor;
    }

    internal Storage Allocate(DType dtype, int length, bool zeroed)
    {
        Storage storage;
        if (_free.TryGetValue((dtype, length), out var stack) && stack.Count > 0)
        {
            var array = stack.Pop();
            PooledBytes -= (long)length * dtype.ElementSize();
            if (zeroed) Array.Clear(array);
            storage = new Storage(array, dtype);
        }
        else storage = new Storage(Storage.NewArray(dtype, length, zeroed), dtype);
        storage.Arena = this;
        _rented.Add(storage);
        return storage;
    }

    /// <summary>
    /// Keeps every buffer rented so far in the current step beyond its end (as <see cref="Keep"/> does) and returns
    /// them, so that a graph recorded in a step can outlive it (a curvature operator's) and still go back to this
    /// arena later, through <see cref="Recycle"/>. Buffers the user kept already are left out.
    /// </summary>
    internal Storage[] KeepRented()
    {
        var kept = new List<Storage>(_rented.Count);
        foreach (var s in _rented)
        {
            if (s.Kept) continue;
            s.Kept = true;
            kept.Add(s);
        }
        return [.. kept];
    }

    /// <summary>Gives buffers from <see cref="KeepRented"/> back to this arena's free lists; tensors on them throw when read.</summary>
    internal void Recycle(Storage[] storages)
    {
        foreach (var s in storages)
        {
            if (s.Released || !ReferenceEquals(s.Arena, this)) continue;
            s.Kept = false;
            s.Released = true;
            Push(s);
        }
    }

    /// <summary>
    /// Takes back the buffer of a leaf gradient that ZeroGrad drops, if the engine adopted it from an arena step
    /// (a gradient the user kept, set or cloned is left alone). Without this every step's weight gradients would
    /// be new large-object arrays: first-touch page faults were 11% of the deep_sigmoid profile.
    /// </summary>
    internal static void ReclaimGradient(Tensor? grad)
    {
        var s = grad?.Storage;
        if (s is null || !s.AdoptedGrad || s.Released || s.Arena is not { } arena) return;
        s.Released = true;
        arena.Push(s);
    }

    private void Push(Storage s)
    {
        var key = (s.DType, s.Length);
        if (!_free.TryGetValue(key, out var stack)) _free[key] = stack = new Stack<Array>();
        stack.Push(s.RawData);
        PooledBytes += (long)s.Length * s.DType.ElementSize();
    }

    private void EndStep(TensorArena? previous)
    {
        foreach (var s in _rented)
        {
            if (s.Kept) continue;
            s.Released = true;
            Push(s);
        }
        _rented.Clear();
        t_current = previous;
        _inStep = false;
        _inference = false;
    }

    /// <summary>Drops every pooled buffer (they become garbage for the GC).</summary>
    public void Trim()
    {
        _free.Clear();
        PooledBytes = 0;
    }

    /// <summary>Ends a <see cref="Step"/>.</summary>
    public readonly struct StepScope : IDisposable
    {
        private readonly TensorArena _arena;
        private readonly TensorArena? _previous;

        internal StepScope(TensorArena arena, TensorArena? previous) => (_arena, _previous) = (arena, previous);

        /// <summary>Returns the step's buffers to the arena.</summary>
        public void Dispose() => _arena?.EndStep(_previous);
    }

    /// <summary>Ends a <see cref="Suspend"/>.</summary>
    public readonly struct SuspendScope : IDisposable
    {
        /// <summary>Resumes renting.</summary>
        public void Dispose() => t_suspended--;
    }
}
