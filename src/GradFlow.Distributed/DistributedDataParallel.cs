using System.Diagnostics;
using GradFlow.Diagnostics;
using GradFlow.NN;

namespace GradFlow.Distributed;

/// <summary>
/// Data-parallel training over MPI (torch.nn.parallel.DistributedDataParallel): every rank holds the same model, runs
/// forward and backward on its own share of the batch, and ends backward with the gradients averaged over all ranks, so
/// every rank's optimiser takes the same step. At the start rank 0's parameters and buffers are copied to every rank,
/// after checking that all ranks hold the same model. In backward, gradients travel in buckets of about
/// <see cref="DistributedDataParallelOptions.BucketBytes"/>, filled in reverse registration order (the order backward
/// produces them); each bucket's allreduce starts as soon as its last gradient is accumulated, while backward goes on,
/// and buckets start in the same order on every rank, as MPI requires.
/// <para>
/// Each synchronised backward checks that every rank is at the same one before any gradient is averaged
/// (<see cref="NoSync"/> scopes that differ across ranks are an error on every rank, not a hang); at its start it brings
/// the buffers (BatchNorm's running statistics) into agreement as <see cref="DistributedDataParallelOptions.Buffers"/>
/// says: by default every rank takes rank 0's, as PyTorch's broadcast_buffers does before each forward. Done after the forward that updated them rather than before the
/// next, it also leaves every rank with the same buffers at the end of each step (for evaluation and checkpoints).
/// </para>
/// <para>
/// It listens to the engine like the gradient monitor does (an <see cref="IAutogradObserver"/>, of every thread: it acts
/// on a backward that reaches its parameters, on the thread that runs it): a leaf's gradient is final for this backward
/// when its AccumulateGrad node has run. No wrapper module is needed; call the model as usual and <c>loss.Backward()</c>. Parameters the backward cannot
/// reach (unused in this forward) count as ready from the start, with their gradient as it stands (zeros if none).
/// Inside <see cref="NoSync"/> gradients only accumulate locally (gradient accumulation); the next synchronised
/// backward averages the accumulated sum.
/// </para>
/// <para>
/// With <see cref="DistributedDataParallelOptions.WatchRanks"/> every synchronised step also compares the ranks:
/// each rank's gradient norms and NaN/Inf counts before the allreduce, the averaged gradient's norm after, the first
/// rank that produced a non-finite gradient, and ranks whose gradient norm strays from the others'
/// (<see cref="Latest"/>, <see cref="RanksCompared"/>, and a watched monitor's <see cref="StepRecord.Distributed"/>).
/// </para>
/// </summary>
public sealed class DistributedDataParallel : IAutogradObserver, IDisposable
{
    private readonly Tensor[] _params;
    private readonly string[] _names;
    private readonly Dictionary<Node, int> _accumulators = new(ReferenceEqualityComparer.Instance);
    private readonly GradientBucket[] _buckets;
    private readonly int[] _bucketOf, _slotOf;
    private readonly bool[] _ready, _unreached;
    private readonly Lock _reachLock = new(); // other threads' backward passes are seen too (and ignored)
    private readonly RankComparison? _ranks;
    private readonly StepAgreement _agreement;
    private readonly BufferSynchronizer _bufferSync;
    private readonly HashSet<string> _ownBuffers; // checkpoint entries that differ across ranks on purpose (BufferSync.None)
    private readonly HashSet<Node> _seen = new(ReferenceEqualityComparer.Instance);
    private readonly Stack<Node> _stack = new();
    private IDisposable? _registration;
    private GradientMonitor? _monitor;
    private int _noSync;
    private long _localPasses; // backward passes under NoSync since the last synchronised one
    private volatile bool _stopAsked;
    private bool _armed;     // a synchronised backward that reaches the parameters began
    private bool _started;   // ... and produced its first parameter gradient
    private int _nextLaunch; // buckets start in index order on every rank
    private int _nextPoll;
    private int _overlapped;
    private int _completedEarly;
    private int _thread;     // the thread running the armed backward: only it calls MPI (serialized)
    private readonly SharedMemoryAllreduce? _shared;
    private readonly bool _headerInWindow; // the step header is the shared reduction's first meeting (one machine)
    private long _timedSteps, _tHeader, _tImbalance, _tLaunch, _tWait, _tAverage, _tCompare; // Stopwatch ticks

    /// <summary>
    /// Wraps <paramref name="module"/> for data-parallel training on <paramref name="communicator"/> (the MPI world by
    /// default). Collective: every rank must construct it at the same point with the same model and options; a model
    /// that differs across ranks throws <see cref="MpiException"/> on every rank naming the parameter.
    /// </summary>
    public DistributedDataParallel(Module module, Communicator? communicator = null, DistributedDataParallelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        Module = module;
        Communicator = communicator ?? Communicator.World;
        Options = options ?? new DistributedDataParallelOptions();
        Options.Validate();
        var named = module.NamedParameters().Where(p => p.Parameter.RequiresGrad).ToArray();
        _params = named.Select(p => p.Parameter).ToArray();
        _names = named.Select(p => p.Name).ToArray();
        foreach (var (name, p) in named)
            if (p.DType is not (DType.Float32 or DType.Float64) || !p.IsContiguous)
                throw new ArgumentException($"DistributedDataParallel: parameter '{name}' is {p.DType.Name()} {p.Shape}{(p.IsContiguous ? "" : " (not contiguous)")}; only contiguous float32 and float64 parameters are averaged.", nameof(module));
        for (int i = 0; i < _params.Length; i++) _accumulators[_params[i].GradAccumulator()] = i;

        var buffers = module.NamedBuffers().ToArray();
        var entries = new List<string> { Options.Describe() };
        entries.AddRange(named.Select(p => ModelAgreement.Entry("parameter", p.Name, p.Parameter)));
        if (Options.BroadcastParameters || Options.Buffers != BufferSync.None) entries.AddRange(buffers.Select(b => ModelAgreement.Entry("buffer", b.Name, b.Buffer)));
        ModelAgreement.Check(Communicator, entries);

        if (Options.Reduction == GradientReduction.SharedMemory && Communicator.Size > 1)
            _shared = SharedMemoryAllreduce.TryCreate(Communicator, BucketLayout.LargestPackedBucket(_params, Options.BucketBytes));
        (_buckets, _bucketOf, _slotOf) = BucketLayout.Build(_params, Options.BucketBytes, Options.InPlaceBytes, _shared);
        _ready = new bool[_params.Length];
        _unreached = new bool[_params.Length];
        _agreement = new StepAgreement(Communicator, _buckets);
        _headerInWindow = _shared is { Hierarchical: false };
        _ownBuffers = Options.Buffers == BufferSync.None ? buffers.Select(b => "model." + b.Name).ToHashSet() : [];
        _bufferSync = new BufferSynchronizer(Communicator, Options.Buffers, Options.Buffers == BufferSync.None ? [] : buffers);
        if (Options.WatchRanks) _ranks = new RankComparison(Communicator, _names, Options.DivergenceFactor);
        if (Options.BroadcastParameters)
        {
            foreach (var p in _params) Broadcast(p);
            foreach (var (_, b) in buffers) Broadcast(b);
        }
        _registration = Autograd.AddObserver(this, allThreads: true);
    }

    /// <summary>The model being trained.</summary>
    public Module Module { get; }

    /// <summary>The ranks it trains on.</summary>
    public Communicator Communicator { get; }

    /// <summary>The options in force.</summary>
    public DistributedDataParallelOptions Options { get; }

    /// <summary>The buckets' parameter names, in the order their allreduces start.</summary>
    public IReadOnlyList<IReadOnlyList<string>> Buckets => _buckets.Select(b => (IReadOnlyList<string>)b.Parameters.Select(i => _names[i]).ToArray()).ToArray();

    /// <summary>
    /// Bytes of gradient each synchronised step copies into bucket buffers (and the average back out): the gradients
    /// smaller than <see cref="DistributedDataParallelOptions.InPlaceBytes"/>; the others are reduced where they lie.
    /// </summary>
    public long CopiedGradientBytes => _buckets.Sum(b => (long)b.Count * (b.DType == DType.Float32 ? 4 : 8));

    /// <summary>
    /// Whether the gradients are reduced through a shared-memory window (<see cref="GradientReduction.SharedMemory"/> and
    /// more than one rank, with the same number of ranks on every machine) rather than by MPI's allreduce.
    /// </summary>
    public bool SharedMemoryReduction => _shared is not null;

    /// <summary>Time this rank spent in each data-parallel phase of the synchronised steps so far (always counted; the
    /// imbalance only with <see cref="DistributedDataParallelOptions.Profile"/>).</summary>
    public DistributedStepTimes StepTimes
    {
        get
        {
            double f = 1.0 / Stopwatch.Frequency;
            if (_shared is not { } sh) return new(_timedSteps, _tHeader * f, _tImbalance * f, _tLaunch * f, _tWait * f, 0, _tAverage * f, _tCompare * f);
            // The shared-memory reduction runs whole when a bucket starts: its phases are told apart inside it.
            return new(_timedSteps, _tHeader * f, _tImbalance * f, sh.CopyInTicks * f, (_tWait + sh.MeetTicks) * f, sh.ReduceTicks * f,
                (_tAverage + sh.CopyOutTicks) * f, _tCompare * f);
        }
    }

    /// <summary>Synchronised backward passes completed so far (the steps of <see cref="DistributedGradientStats"/>).</summary>
    public long SyncCount { get; private set; }

    /// <summary>
    /// Buckets whose allreduce started while backward was still producing other parameters' gradients, in the latest
    /// synchronised step: 0 when the whole model fits one bucket or without <see cref="DistributedDataParallelOptions.Overlap"/>.
    /// </summary>
    public int BucketsOverlapped { get; private set; }

    /// <summary>
    /// Buckets whose allreduce had completed before backward ended, in the latest synchronised step: MPI progressed them
    /// during backward through the MPI_Test each later node makes (<see cref="Communicator.Counts"/> counts them), the rest
    /// completed in the final wait. At most <see cref="BucketsOverlapped"/>.
    /// </summary>
    public int BucketsCompletedDuringBackward { get; private set; }

    /// <summary>The latest comparison of the ranks' gradients, or null before the first (or without <see cref="DistributedDataParallelOptions.WatchRanks"/>).</summary>
    public DistributedGradientStats? Latest { get; private set; }

    /// <summary>Raised on every rank after each synchronised backward with the comparison of the ranks' gradients.</summary>
    public event Action<DistributedGradientStats>? RanksCompared;

    /// <summary>Gives each comparison of the ranks' gradients to <paramref name="monitor"/>, whose step record then carries it (<see cref="StepRecord.Distributed"/>).</summary>
    public void Watch(GradientMonitor monitor)
    {
        ArgumentNullException.ThrowIfNull(monitor);
        if (!Options.WatchRanks) throw new InvalidOperationException("DistributedDataParallel.Watch: the ranks are compared only with DistributedDataParallelOptions.WatchRanks.");
        _monitor = monitor;
    }

    /// <summary>
    /// Backward passes inside the scope only accumulate gradients locally (gradient accumulation over micro-batches);
    /// the first backward after it averages the sum. Every rank must use the same scopes.
    /// </summary>
    public NoSyncScope NoSync()
    {
        ObjectDisposedException.ThrowIf(_registration is null, this);
        _noSync++;
        return new NoSyncScope(this);
    }

    /// <summary>Ends a <see cref="NoSync"/> scope.</summary>
    public readonly struct NoSyncScope : IDisposable
    {
        private readonly DistributedDataParallel _owner;

        internal NoSyncScope(DistributedDataParallel owner) => _owner = owner;

        /// <summary>Leaves the scope.</summary>
        public void Dispose()
        {
            if (_owner is not null && _owner._noSync > 0) _owner._noSync--;
        }
    }

    /// <summary>
    /// Asks every rank to stop: safe to call from any thread, a signal handler included (SIGUSR1, which mpirun forwards
    /// to every rank). The request travels with the next synchronised backward's header, after which
    /// <see cref="StopRequested"/> is true on every rank alike, so all stop after the same step.
    /// </summary>
    public void RequestStop() => _stopAsked = true;

    /// <summary>
    /// True on every rank from the first synchronised backward after any rank called <see cref="RequestStop"/>: check it
    /// after the optimiser step, then save (<see cref="SaveCheckpoint"/>) and leave the loop; every rank does the same.
    /// </summary>
    public bool StopRequested => _agreement.AnyStop;

    /// <summary>
    /// Completes a synchronised backward in which some parameters the backward reached received no gradient (their
    /// buckets are still waiting): they are sent as they stand. Call it on every rank, after that backward.
    /// </summary>
    public void FinishGradientSync()
    {
        if (!_started) return;
        for (int i = 0; i < _params.Length; i++)
            if (!_ready[i]) MarkReady(i);
        LaunchReady();
        Finish();
    }

    /// <summary>
    /// Writes a checkpoint of the model (and whatever else <paramref name="capture"/> adds: the optimiser, the step) from
    /// rank 0 only and confirms it on every rank. Collective: every rank calls it at the same point and runs
    /// <paramref name="capture"/> on its own state; rank 0 writes the file and reads it back, and every rank compares a
    /// digest of its own state (a CRC-32C of each tensor and setting) with the file's. Every rank returns once the file
    /// exists and holds every rank's state; otherwise every rank throws the same <see cref="MpiException"/>
    /// (<see cref="MpiException.AllRanks"/>), naming the rank that failed to write or capture, or the ranks whose state
    /// differs and the first tensor where it does. The file stays: it is rank 0's state, which a resumed run broadcasts.
    /// Under <see cref="BufferSync.None"/> the buffers differ across ranks by design: the file holds rank 0's, unchecked.
    /// </summary>
    public void SaveCheckpoint(string path, Func<Module, GradFlow.Training.Checkpoint>? capture = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var take = capture ?? (m => GradFlow.Training.Checkpoint.Capture(m));
        CheckpointAgreement.Save(Communicator, path, () => take(Module), _ownBuffers);
    }

    private void Broadcast(Tensor t)
    {
        if (!t.IsContiguous) throw new ArgumentException($"DistributedDataParallel: a tensor of shape {t.Shape} is not contiguous and cannot be broadcast.");
        switch (t.DType)
        {
            case DType.Float32: Communicator.Broadcast(t.Span<float>()); break;
            case DType.Float64: Communicator.Broadcast(t.Span<double>()); break;
            case DType.Int64: Communicator.Broadcast(t.Span<long>()); break;
            default: Communicator.Broadcast(t.Span<long>()); break; // bool is stored as 0/1 words
        }
        t.BumpVersion();
    }

    void IAutogradObserver.OnForward(string op, ReadOnlySpan<Tensor> inputs, Tensor output, Node? node) { }

    void IAutogradObserver.OnBackwardBegin(ReadOnlySpan<Tensor> roots)
    {
        if (Instrumentation.BackwardRunning) return; // a hook's backward inside ours
        lock (_reachLock)
        {
            if (!Reach(roots)) return; // another model's backward, on this thread or another
        }
        if (_started)
            throw new InvalidOperationException(
                "DistributedDataParallel: a backward began while the previous one's gradients were still being averaged: "
                + $"parameters {string.Join(", ", Missing())} received no gradient. Call FinishGradientSync() after a backward that leaves parameters without one.");
        if (_noSync > 0)
        {
            _localPasses++;
            _armed = false;
            return;
        }
        long t0 = Stopwatch.GetTimestamp();
        // On one machine with the shared window the header travels with the first bucket's meeting, a synchronisation
        // the step needs anyway (and which also waits for the rank whose backward ends last); elsewhere it is sent now.
        if (_headerInWindow) _agreement.Prepare(SyncCount + 1, _localPasses, _stopAsked);
        else _agreement.Check(SyncCount + 1, _localPasses, _stopAsked);
        _localPasses = 0;
        _bufferSync.Synchronize();
        _tHeader += Stopwatch.GetTimestamp() - t0;
        _thread = Environment.CurrentManagedThreadId;
        Array.Copy(_unreached, _ready, _ready.Length);
        for (int b = 0; b < _buckets.Length; b++) _buckets[b].Pending = 0;
        for (int i = 0; i < _params.Length; i++)
            if (!_ready[i]) _buckets[_bucketOf[i]].Pending++;
        _nextLaunch = _nextPoll = _overlapped = _completedEarly = 0;
        _armed = true;
    }

    void IAutogradObserver.OnBackward(Node node, ReadOnlySpan<Tensor?> gradOutputs, ReadOnlySpan<Tensor?> gradInputs)
    {
        if (!_armed || Environment.CurrentManagedThreadId != _thread) return;
        if (node is AccumulateGrad && _accumulators.TryGetValue(node, out int i))
        {
            if (_ready[i]) return;
            _started = true;
            MarkReady(i);
            if (Options.Overlap) LaunchReady();
            else if (AllReady()) LaunchReady();
            if (_nextLaunch == _buckets.Length) Finish();
        }
        else if (_nextPoll < _nextLaunch)
        {
            // Non-blocking collectives advance only inside MPI calls: nudge the oldest one at every node.
            if (_buckets[_nextPoll].Poll(Communicator))
            {
                _nextPoll++;
                _completedEarly++;
            }
        }
    }

    // Marks in _unreached the parameters this backward cannot reach (ready from the start); false if it reaches none.
    private bool Reach(ReadOnlySpan<Tensor> roots)
    {
        _seen.Clear();
        _stack.Clear();
        foreach (var root in roots)
            if (root.GradientEdge().Function is { } f && _seen.Add(f)) _stack.Push(f);
        bool any = false;
        Array.Fill(_unreached, true);
        while (_stack.Count > 0)
        {
            var node = _stack.Pop();
            if (node is AccumulateGrad && _accumulators.TryGetValue(node, out int i))
            {
                _unreached[i] = false;
                any = true;
            }
            foreach (var e in node.Next)
                if (e.Function is { } next && _seen.Add(next)) _stack.Push(next);
        }
        _seen.Clear();
        return any;
    }

    private void MarkReady(int i)
    {
        _ready[i] = true;
        _buckets[_bucketOf[i]].Pending--;
    }

    private bool AllReady()
    {
        foreach (var b in _buckets)
            if (b.Pending > 0) return false;
        return true;
    }

    private void LaunchReady()
    {
        while (_nextLaunch < _buckets.Length && _buckets[_nextLaunch].Pending == 0)
        {
            if (_nextLaunch == 0 && Options.Profile)
            {
                long t = Stopwatch.GetTimestamp();
                Communicator.Barrier();
                _tImbalance += Stopwatch.GetTimestamp() - t;
            }
            var bucket = _buckets[_nextLaunch++];
            if (!AllReady()) _overlapped++;
            long t0 = Stopwatch.GetTimestamp();
            bucket.Start(Communicator, _params, _ranks, Options.Overlap, _headerInWindow ? _agreement : null);
            _tLaunch += Stopwatch.GetTimestamp() - t0;
        }
    }

    private void Finish()
    {
        bool measure = _ranks is not null;
        double globalSquares = 0;
        long t0 = Stopwatch.GetTimestamp();
        foreach (var bucket in _buckets) bucket.WaitAll(Communicator);
        long t1 = Stopwatch.GetTimestamp();
        foreach (var bucket in _buckets) globalSquares += bucket.Complete(Communicator, _params, Communicator.Size, measure);
        long t2 = Stopwatch.GetTimestamp();
        _tWait += t1 - t0;
        _tAverage += t2 - t1;
        _timedSteps++;
        _armed = _started = false;
        Array.Clear(_ready);
        SyncCount++;
        BucketsOverlapped = _overlapped;
        BucketsCompletedDuringBackward = _completedEarly;
        if (_ranks is null) return;
        var stats = _ranks.Compare(SyncCount, Math.Sqrt(globalSquares), _bucketOrder ??= _buckets.SelectMany(b => b.Parameters).ToArray());
        _tCompare += Stopwatch.GetTimestamp() - t2;
        Latest = stats;
        _monitor?.ObserveRanks(stats);
        RanksCompared?.Invoke(stats);
    }

    private int[]? _bucketOrder;

    private IEnumerable<string> Missing()
    {
        for (int i = 0; i < _params.Length; i++)
            if (!_ready[i]) yield return $"'{_names[i]}'";
    }

    /// <summary>
    /// Stops listening to backward (MPI stays up: the <see cref="Communicator"/> is not disposed). With the shared-memory
    /// reduction it also frees the window, which is collective: every rank disposes its DDP at the same point.
    /// </summary>
    public void Dispose()
    {
        _registration?.Dispose();
        _registration = null;
        foreach (var b in _buckets) b.WaitAll(Communicator);
        _shared?.Dispose();
    }
}
