using GradFlow.NN;
using GradFlow.Optim;

namespace GradFlow.Diagnostics;

/// <summary>
/// Watches gradient flow from inside the autograd engine. Attached to a model's named parameters, it
/// records each step: every parameter's and layer's gradient statistics (norms, |g| mean and max,
/// zeros, NaN/Inf, log2 histograms), parameter and update norms, the global gradient norm before and
/// after clipping, the gradient reaching each layer's input in backward, and activation health (dead
/// ReLU units, saturated sigmoid/tanh units, mean and std) in forward. Activations and the backward
/// flow are measured as the engine produces them, while they are still in cache; nothing runs an
/// extra forward or backward pass. Call <see cref="EndStep"/> after the optimiser step (an attached
/// optimiser calls it for you); dispose to detach. The monitor watches the autograd ops of the
/// thread that created it (the training loop's), so other threads' work does not leak into its figures.
/// <para>
/// The monitor itself only attaches, dispatches and closes steps: each family of statistics is a collector
/// (<see cref="IMonitorCollector"/>: <see cref="ParameterCollector"/>, <see cref="HistogramCollector"/>,
/// <see cref="FlowCollector"/>, <see cref="ActivationCollector"/>) that the monitor calls at the engine's and the
/// optimiser's events it asked for and at the end of each step; <see cref="AddCollector"/> plugs in another.
/// </para>
/// </summary>
public sealed class GradientMonitor : IAutogradObserver, IOptimizerObserver, IDisposable
{
    private readonly MonitorContext _context;
    private readonly ParameterCollector _parameters;
    private readonly StepRecordBuilder _builder = new();
    // The collectors, all in the order added, and those that asked for each event (arrays: called inside every op).
    private IMonitorCollector[] _all = [];
    private IMonitorCollector[] _forward = [], _backwardBegin = [], _backward = [], _updates = [], _complete = [];
    // The same for a step without details (MonitorOptions.DetailEvery): the Detail collectors left out. SyncCollectors
    // points the arrays above at one set or the other as each step begins.
    private readonly EventTable _allEvents = new(), _lightEvents = new();

    private sealed class EventTable
    {
        public IMonitorCollector[] Complete = [], Forward = [], BackwardBegin = [], Backward = [], Updates = [];

        public void Add(IMonitorCollector c)
        {
            var events = c.Events;
            Complete = [.. Complete, c];
            if ((events & MonitorEvents.Forward) != 0) Forward = [.. Forward, c];
            if ((events & MonitorEvents.BackwardBegin) != 0) BackwardBegin = [.. BackwardBegin, c];
            if ((events & MonitorEvents.Backward) != 0) Backward = [.. Backward, c];
            if ((events & MonitorEvents.ParameterUpdated) != 0) Updates = [.. Updates, c];
        }
    }
    private IDisposable? _registration;
    private IDisposable? _optimizerRegistration;
    private Optimizer? _optimizer;
    private RunSetup? _setup;
    private Dictionary<string, string>? _layerTypes; // module path -> module type, when attached to a model
    private Module? _model; // when attached to a model: its dropout modules are read into each setup record
    private DistributedGradientStats? _ranks;
    private double _lossSum;
    private int _lossCount;
    private bool _disposed;

    /// <summary>Starts monitoring the given parameters (name → tensor, names as in a state dict).</summary>
    public GradientMonitor(IEnumerable<KeyValuePair<string, Tensor>> namedParameters, MonitorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(namedParameters);
        var o = options ?? new MonitorOptions();
        o.Validate();
        _context = new MonitorContext(namedParameters, o);
        var histograms = o.Histograms ? new HistogramCollector(_context) : null;
        _parameters = new ParameterCollector(_context, histograms);
        if (histograms is not null) AddCollector(histograms);
        AddCollector(_parameters);
        if (o.Flow) AddCollector(new FlowCollector(_context));
        if (o.Activations) AddCollector(new ActivationCollector(_context));
        if (o.RecurrentSteps) AddCollector(new RecurrentStepCollector(_context));
        _registration = Autograd.AddObserver(this);
        SyncCollectors();
    }

    /// <summary>
    /// Adds a collector (the doctor's own figures, say): from now on it is called at the events it names and at every
    /// step's end, after those added before it. Call on the thread that attached the monitor.
    /// </summary>
    internal void AddCollector(IMonitorCollector collector)
    {
        ArgumentNullException.ThrowIfNull(collector);
        ObjectDisposedException.ThrowIf(_disposed, this);
        _all = [.. _all, collector];
        _allEvents.Add(collector);
        if (!collector.Detail) _lightEvents.Add(collector);
        SyncCollectors();
    }

    /// <summary>What the collectors share: parameters, layers, depths, the step.</summary>
    internal MonitorContext Context => _context;

    /// <summary>
    /// Attaches a monitor to a model in one line; with an <paramref name="optimizer"/> it also sees the
    /// updates really applied and closes each step by itself after <see cref="Optimizer.Step"/>.
    /// </summary>
    public static GradientMonitor Attach(Module model, Optimizer? optimizer = null, MonitorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var monitor = new GradientMonitor(model.NamedParameters().Select(p => KeyValuePair.Create(p.Name, p.Parameter)), options)
        {
            _layerTypes = model.NamedModules().GroupBy(m => m.Name).ToDictionary(g => g.Key, g => g.First().Module.GetType().Name),
            _model = model,
        };
        if (optimizer is not null) monitor.AttachOptimizer(optimizer);
        return monitor;
    }

    /// <summary>Watches an optimiser: update norms come from its update pass, and its Step ends the monitor's step.</summary>
    public void AttachOptimizer(Optimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        _optimizerRegistration?.Dispose();
        _optimizer = optimizer;
        _optimizerRegistration = _registration is null ? null : optimizer.AddObserver(this);
    }

    /// <summary>The latest step's statistics for a parameter, by name, or null.</summary>
    public ParameterStats? LatestFor(string parameterName) => Latest?.Parameters.FirstOrDefault(p => p.Name == parameterName);

    /// <summary>The options in force.</summary>
    public MonitorOptions Options => _context.Options;

    /// <summary>The latest recorded step, or null before the first.</summary>
    public StepRecord? Latest { get; private set; }

    /// <summary>Steps ended so far (recorded or skipped by <see cref="MonitorOptions.Every"/>).</summary>
    public long StepCount => _context.Step;

    /// <summary>Raised with each recorded step (for a user's own callback, the run log, TensorBoard).</summary>
    public event Action<StepRecord>? StepRecorded;

    private bool Recording => _context.Recording;

    // The collectors watch while the monitor is attached and the coming step is recorded.
    private bool Watching => _registration is not null && Recording;

    /// <summary>The module path that owns a parameter: its name without the last part.</summary>
    public static string LayerOf(string name)
    {
        int dot = name.LastIndexOf('.');
        return dot < 0 ? "" : name[..dot];
    }

    /// <summary>Tells the monitor the norm of the update an optimiser applied to a parameter (squared, summed over its elements).</summary>
    public void ObserveUpdate(Tensor parameter, double updateSquaredNorm)
    {
        if (Recording && _context.ParamIndex.TryGetValue(parameter, out int i)) _parameters.ObserveUpdate(i, updateSquaredNorm);
    }

    /// <summary>
    /// Clips the watched parameters' gradients by their global norm (GradientClipping.ClipGradNorm) and records
    /// the norm before and after; returns the norm before, as clip_grad_norm_ does.
    /// </summary>
    public double ClipGradNorm(double maxNorm, double normType = 2, bool errorIfNonfinite = false)
    {
        double total = GradientClipping.ClipGradNorm(_context.Params.Select(p => p.Param), maxNorm, normType, errorIfNonfinite);
        double coef = Math.Min(maxNorm / (total + 1e-6), 1.0);
        ObserveClip(total, double.IsNaN(total) ? double.NaN : total * coef);
        return total;
    }

    /// <summary>
    /// Tells the monitor how the ranks' gradients compared in this step of data-parallel training (GradFlow.Distributed
    /// calls it after each allreduce); the step's record carries it in <see cref="StepRecord.Distributed"/>.
    /// </summary>
    public void ObserveRanks(DistributedGradientStats stats)
    {
        ArgumentNullException.ThrowIfNull(stats);
        _ranks = stats;
    }

    /// <summary>Tells the monitor the global gradient norm a clipper saw, and the norm after clipping.</summary>
    public void ObserveClip(double totalNorm, double clippedNorm) => _parameters.ObserveClip(totalNorm, clippedNorm);

    /// <summary>
    /// Closes the step (after the optimiser step; with gradient accumulation, after the last micro-batch): measures the parameters' gradients as they are now (after accumulation, clipping
    /// and the optimiser step) and returns the record, or null on steps skipped by <see cref="MonitorOptions.Every"/>.
    /// </summary>
    public StepRecord? EndStep(double? loss = null, double? learningRate = null)
    {
        if (!Recording)
        {
            _context.Step++;
            ResetStep();
            SyncCollectors();
            return null;
        }
        _context.Step++;
        var b = _builder;
        b.Clear();
        foreach (var c in _complete) c.Complete(b);
        b.Distributed = _ranks;
        var record = new StepRecord
        {
            Setup = SetupIfChanged(),
            Step = _context.Step, Loss = loss ?? (_lossCount > 0 ? _lossSum / _lossCount : null), LearningRate = learningRate,
            GlobalGradNorm = b.GlobalGradNorm, ClippedGradNorm = b.ClippedGradNorm, GradientsCarriedOver = b.GradientsCarriedOver,
            Parameters = b.Parameters, Layers = b.Layers, Flow = b.Flow, Activations = b.Activations, RecurrentSteps = b.RecurrentSteps, Curvature = b.Curvature,
            Distributed = b.Distributed,
        };
        b.Clear(); // the builder holds no step's arrays between steps
        ResetStep();
        SyncCollectors();
        Latest = record;
        StepRecorded?.Invoke(record);
        return record;
    }

    // The setup on the first recorded step; afterwards only when the optimiser's settings other than the learning rate
    // changed (a schedule's rate is in StepRecord.LearningRate): a few dictionary reads a step, no allocation.
    private RunSetup? SetupIfChanged()
    {
        if (_setup is not null && (_optimizer is null ? _setup.Optimizer is null : _setup.Optimizer is { } o && o.Matches(_optimizer, ignoreLearningRate: true)))
            return null;
        var shapes = _setup?.Parameters ?? _context.Params.Select(p => ParameterShape.Of(p.Name, p.Param, _layerTypes?.GetValueOrDefault(p.Layer))).ToArray();
        // Each parameter's own group's decay, read afresh with the setup (a change only in a group after the first is not
        // watched for: OptimizerSettings.Matches reads the first group).
        if (_optimizer is not null)
        {
            var decays = OptimizerSettings.WeightDecays(_optimizer);
            double? DecayOf(int i) => decays.TryGetValue(_context.Params[i].Param, out double wd) ? wd : null;
            if (shapes.Where((s, i) => s.WeightDecay != DecayOf(i)).Any())
                shapes = shapes.Select((s, i) => s with { WeightDecay = DecayOf(i) }).ToArray();
        }
        // The dropouts are read afresh with the setup: their training mode is the one in force now.
        _setup = new RunSetup(shapes, _optimizer is null ? null : OptimizerSettings.Of(_optimizer), _model is null ? null : DropoutLayer.Of(_model));
        return _setup;
    }

    private void ResetStep()
    {
        _lossSum = 0;
        _lossCount = 0;
        _ranks = null;
        foreach (var c in _all) c.Reset();
    }

    // Arms or disarms the collectors' kernel measures; called whenever attachment or recording may have changed.
    private void SyncCollectors()
    {
        bool watching = Watching;
        _context.BeginStep();
        bool detailed = _context.Detailed;
        var events = detailed ? _allEvents : _lightEvents;
        (_complete, _forward, _backwardBegin, _backward, _updates) = (events.Complete, events.Forward, events.BackwardBegin, events.Backward, events.Updates);
        foreach (var c in _all) c.Sync(watching && (detailed || !c.Detail));
    }

    void IAutogradObserver.OnForward(string op, ReadOnlySpan<Tensor> inputs, Tensor output, Node? node)
    {
        // Only training forwards: a NoGrad evaluation pass, or the ops of a backward, are not this step's model.
        // (An op with no node still counts: the layers in front of it may be frozen.)
        if (!Autograd.IsGradEnabled || !Recording || Autograd.IsInBackward) return;
        string scope = Autograd.CurrentScope ?? "";
        int depth = _context.SeeScope(scope);
        foreach (var c in _forward) c.OnForward(op, scope, depth, output);
    }

    void IAutogradObserver.OnBackward(Node node, ReadOnlySpan<Tensor?> gradOutputs, ReadOnlySpan<Tensor?> gradInputs)
    {
        if (!Recording || node is AccumulateGrad) return;
        foreach (var c in _backward) c.OnBackward(node, gradOutputs, gradInputs);
    }

    void IOptimizerObserver.OnParameterUpdated(in ParameterUpdate update)
    {
        if (!Recording || !_context.ParamIndex.TryGetValue(update.Param, out int i)) return;
        foreach (var c in _updates) c.OnParameterUpdated(i, update);
    }

    void IOptimizerObserver.OnStepCompleted(Optimizer optimizer) => EndStep(learningRate: optimizer.ParamGroups.Count > 0 ? optimizer.ParamGroups[0].Lr : null);

    void IAutogradObserver.OnBackwardBegin(ReadOnlySpan<Tensor> roots)
    {
        foreach (var c in _backwardBegin) c.OnBackwardBegin(roots);
        // The loss of the step: the mean over its backward passes (micro-batches accumulate gradients).
        if (Recording && roots.Length == 1 && roots[0].NumEl == 1 && roots[0].DType.IsFloatingPoint())
        {
            _lossSum += roots[0].Item();
            _lossCount++;
        }
    }

    /// <summary>
    /// Runs <paramref name="probe"/> at the end of every step it is due at (<see cref="SharpnessProbe.IsDue"/> of the
    /// monitor's step number, on recorded steps) and puts its result in <see cref="StepRecord.Curvature"/>. The probe's
    /// own forward and backward passes are hidden from the monitor. Call on the thread that attached the monitor.
    /// </summary>
    public void AddSharpnessProbe(SharpnessProbe probe)
    {
        ArgumentNullException.ThrowIfNull(probe);
        ObjectDisposedException.ThrowIf(_disposed, this);
        AddCollector(new CurvatureCollector(_context, probe, this));
    }

    /// <summary>Runs <paramref name="work"/> with the monitor out of the engine and its kernel measures disarmed, keeping the step.</summary>
    internal T Unobserved<T>(Func<T> work)
    {
        if (_registration is null) return work();
        _registration.Dispose();
        _registration = null;
        SyncCollectors();
        try { return work(); }
        finally
        {
            _registration = Autograd.AddObserver(this);
            SyncCollectors();
        }
    }

    /// <summary>True between <see cref="Suspend"/> and <see cref="Resume"/>: the engine and the optimiser do not call the monitor.</summary>
    public bool IsSuspended => _registration is null && !_disposed;

    /// <summary>
    /// Stops watching until <see cref="Resume"/> (an evaluation pass, an LR sweep): the monitor leaves the engine and
    /// the optimiser, so it costs nothing meanwhile, and keeps what it has learnt (depths, the dead-unit streaks).
    /// A step in progress is dropped. Call on the thread that attached it.
    /// </summary>
    public void Suspend()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_registration is null) return;
        _registration.Dispose();
        _optimizerRegistration?.Dispose();
        _registration = _optimizerRegistration = null;
        ResetStep();
        SyncCollectors();
    }

    /// <summary>Watches again after <see cref="Suspend"/>, from the next operation on.</summary>
    public void Resume()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_registration is not null) return;
        _registration = Autograd.AddObserver(this);
        if (_optimizer is not null) _optimizerRegistration = _optimizer.AddObserver(this);
        SyncCollectors();
    }

    /// <summary>Detaches the monitor from the engine.</summary>
    public void Dispose()
    {
        if (!_disposed) ResetStep();
        _registration?.Dispose();
        _optimizerRegistration?.Dispose();
        _registration = _optimizerRegistration = null;
        SyncCollectors();
        _optimizer = null;
        _disposed = true;
    }
}
