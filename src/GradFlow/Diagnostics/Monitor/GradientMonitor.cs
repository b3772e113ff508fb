using GradFlow.Kernels;
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
/// </summary>
public sealed class GradientMonitor : IAutogradObserver, IOptimizerObserver, IDisposable
{
    private readonly (string Name, string Layer, Tensor Param)[] _params;
    private readonly Dictionary<Tensor, int> _paramIndex = new(ReferenceEqualityComparer.Instance);
    private readonly MonitorOptions _options;
    private readonly ActivationPolicy _activationPolicy; // armed into the kernels while recording
    private readonly string[] _layerNames; // the parameters' layers, in order of first appearance
    private readonly int[] _layerOf;       // parameter -> its layer's slot
    private readonly LayerSums[] _layerAcc; // a step's per-layer sums (reused)
    private readonly Dictionary<string, int> _depth = [];
    private readonly Dictionary<(string, string), ActivationTracker> _activations = [];
    private readonly Dictionary<string, (double SumSquares, long NonFinite)> _flow = [];
    // Gradients leaving a layer for an activation whose fused backward will measure them as it reads them (by node).
    private readonly Dictionary<Node, (string Scope, Tensor Grad)> _pendingFlow = new(ReferenceEqualityComparer.Instance);
    private int _armedThread; // the managed thread on which this monitor armed the measuring kernels; 0: not armed
    private bool _armedFlow, _armedActivations; // what it armed there
    private readonly double?[] _updateSquares;
    private readonly UpdateStats?[] _measured;
    private double _histogramShare; // this step's fraction of each gradient to histogram; 0: all of it
    private bool _histogramShareKnown;
    private readonly Log2Histogram?[] _earlyHistograms; // counted in the optimiser's wake, while the gradient is in cache
    private IDisposable? _registration;
    private IDisposable? _optimizerRegistration;
    private Optimizer? _optimizer;
    private double? _clipBefore, _clipAfter;
    private double _lossSum;
    private int _lossCount;
    private long _step;
    private bool _disposed;
    private string? _lastScope;

    /// <summary>Starts monitoring the given parameters (name → tensor, names as in a state dict).</summary>
    public GradientMonitor(IEnumerable<KeyValuePair<string, Tensor>> namedParameters, MonitorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(namedParameters);
        _options = options ?? new MonitorOptions();
        _options.Validate();
        _activationPolicy = new ActivationPolicy(_options.SaturationEpsilon);
        _params = namedParameters.Select(p => (p.Key, LayerOf(p.Key), p.Value)).ToArray();
        for (int i = 0; i < _params.Length; i++) _paramIndex[_params[i].Param] = i;
        _layerNames = _params.Select(p => p.Layer).Distinct().ToArray();
        _layerOf = _params.Select(p => Array.IndexOf(_layerNames, p.Layer)).ToArray();
        _layerAcc = new LayerSums[_layerNames.Length];
        _updateSquares = new double?[_params.Length];
        _measured = new UpdateStats?[_params.Length];
        _earlyHistograms = new Log2Histogram?[_params.Length];
        _registration = Autograd.AddObserver(this);
        SyncArming();
    }

    /// <summary>
    /// Attaches a monitor to a model in one line; with an <paramref name="optimizer"/> it also sees the
    /// updates really applied and closes each step by itself after <see cref="Optimizer.Step"/>.
    /// </summary>
    public static GradientMonitor Attach(Module model, Optimizer? optimizer = null, MonitorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var monitor = new GradientMonitor(model.NamedParameters().Select(p => KeyValuePair.Create(p.Name, p.Parameter)), options);
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
    public MonitorOptions Options => _options;

    /// <summary>The latest recorded step, or null before the first.</summary>
    public StepRecord? Latest { get; private set; }

    /// <summary>Steps ended so far (recorded or skipped by <see cref="MonitorOptions.Every"/>).</summary>
    public long StepCount => _step;

    /// <summary>Raised with each recorded step (for a user's own callback, the run log, TensorBoard).</summary>
    public event Action<StepRecord>? StepRecorded;

    private bool Recording => _step % _options.Every == 0;

    /// <summary>The module path that owns a parameter: its name without the last part.</summary>
    public static string LayerOf(string name)
    {
        int dot = name.LastIndexOf('.');
        return dot < 0 ? "" : name[..dot];
    }

    /// <summary>Tells the monitor the norm of the update an optimiser applied to a parameter (squared, summed over its elements).</summary>
    public void ObserveUpdate(Tensor parameter, double updateSquaredNorm)
    {
        if (Recording && _paramIndex.TryGetValue(parameter, out int i)) _updateSquares[i] = (_updateSquares[i] ?? 0) + updateSquaredNorm;
    }

    /// <summary>
    /// Clips the watched parameters' gradients by their global norm (GradientClipping.ClipGradNorm) and records
    /// the norm before and after; returns the norm before, as clip_grad_norm_ does.
    /// </summary>
    public double ClipGradNorm(double maxNorm, double normType = 2, bool errorIfNonfinite = false)
    {
        double total = GradientClipping.ClipGradNorm(_params.Select(p => p.Param), maxNorm, normType, errorIfNonfinite);
        double coef = Math.Min(maxNorm / (total + 1e-6), 1.0);
        ObserveClip(total, double.IsNaN(total) ? double.NaN : total * coef);
        return total;
    }

    /// <summary>Tells the monitor the global gradient norm a clipper saw, and the norm after clipping.</summary>
    public void ObserveClip(double totalNorm, double clippedNorm) => (_clipBefore, _clipAfter) = (totalNorm, clippedNorm);

    /// <summary>
    /// Closes the step (after the optimiser step; with gradient accumulation, after the last micro-batch): measures the parameters' gradients as they are now (after accumulation, clipping
    /// and the optimiser step) and returns the record, or null on steps skipped by <see cref="MonitorOptions.Every"/>.
    /// </summary>
    public StepRecord? EndStep(double? loss = null, double? learningRate = null)
    {
        if (!Recording)
        {
            _step++;
            ResetStep();
            SyncArming();
            return null;
        }
        _step++;
        var record = BuildRecord(loss ?? (_lossCount > 0 ? _lossSum / _lossCount : null), learningRate);
        ResetStep();
        SyncArming();
        Latest = record;
        StepRecorded?.Invoke(record);
        return record;
    }

    private StepRecord BuildRecord(double? loss, double? learningRate)
    {
        // Per-layer sums in arrays indexed by the layer's slot (fixed at attach): after a training step has pushed the
        // monitor's own objects out of cache, a dictionary keyed by name costs a miss per probe.
        var parameters = new ParameterStats[_params.Length];
        var layerAcc = _layerAcc;
        Array.Clear(layerAcc);
        var global = new StatsAccumulator();
        EnsureHistogramShare();
        for (int i = 0; i < _params.Length; i++)
        {
            var (name, layer, p) = _params[i];
            ref var la = ref layerAcc[_layerOf[i]];
            TensorStats? gradStats = null;
            if (p.Grad is { } g)
            {
                var (acc, hist) = GradientStatistics(i, g);
                gradStats = TensorStats.From(acc, hist);
                Merge(ref la.Acc, acc);
                Merge(ref global, acc);
                if (hist is not null) (la.Hist ??= new Log2Histogram()).Add(hist);
            }
            // After the step: the optimiser's pass summed the new parameter's squares.
            double paramNorm = _measured[i] is { } m ? Math.Sqrt(m.ParamSumSq) : ParamNorm(p);
            la.ParamSq += paramNorm * paramNorm;
            if (_updateSquares[i] is { } u) la.UpdateSq = (la.UpdateSq ?? 0) + u;
            parameters[i] = new ParameterStats(name, layer, gradStats, paramNorm, _updateSquares[i] is { } uu ? Math.Sqrt(uu) : null);
        }
        var layers = new LayerGradientStats[_layerNames.Length];
        for (int l = 0; l < layers.Length; l++)
        {
            ref var la = ref layerAcc[l];
            layers[l] = new LayerGradientStats(_layerNames[l], DepthOf(_layerNames[l]), TensorStats.From(la.Acc, la.Hist),
                Math.Sqrt(la.ParamSq), la.UpdateSq is { } u ? Math.Sqrt(u) : null);
        }
        SortByDepth(layers, static l => l.Depth);
        var flow = new FlowStats[_flow.Count];
        int k = 0;
        foreach (var (scope, f) in _flow) flow[k++] = new FlowStats(scope, DepthOf(scope), Math.Sqrt(f.SumSquares), f.NonFinite);
        SortByDepth(flow, static f => f.Depth);
        var activations = new List<ActivationStats>(_activations.Count);
        foreach (var a in _activations.Values) if (a.SeenThisStep) activations.Add(a.Finish(_options.DeadWindow));
        var activationArray = activations.ToArray();
        SortByDepth(activationArray, static a => a.Depth);
        double globalNorm = _clipBefore ?? Math.Sqrt(global.SumSquares + (global.NaNs + global.Infs > 0 ? double.NaN : 0));
        return new StepRecord
        {
            Step = _step, Loss = loss, LearningRate = learningRate, GlobalGradNorm = globalNorm, ClippedGradNorm = _clipAfter,
            Parameters = parameters, Layers = layers, Flow = flow, Activations = activationArray,
        };
    }

    // A stable sort by depth (insertion: a few dozen entries, mostly in order already).
    private static void SortByDepth<T>(T[] items, Func<T, int> depth)
    {
        for (int i = 1; i < items.Length; i++)
        {
            var item = items[i];
            int d = depth(item), j = i - 1;
            for (; j >= 0 && depth(items[j]) > d; j--) items[j + 1] = items[j];
            items[j + 1] = item;
        }
    }

    private struct LayerSums
    {
        public StatsAccumulator Acc;
        public Log2Histogram? Hist;
        public double ParamSq;
        public double? UpdateSq;
    }

    // The step's histogram budget split over the gradients in proportion to their sizes (once per step).
    private void EnsureHistogramShare()
    {
        if (_histogramShareKnown) return;
        long withGrad = 0;
        foreach (var q in _params) if (q.Param.Grad is { } qg) withGrad += qg.NumEl;
        _histogramShare = _options.HistogramSampleSize == 0 || withGrad <= _options.HistogramSampleSize ? 0 : (double)_options.HistogramSampleSize / withGrad;
        _histogramShareKnown = true;
    }

    /// <summary>
    /// A gradient's statistics: taken from the optimiser's update pass when it measured them (no pass here), else
    /// one fused pass; the histogram is counted here, exactly or on a spread sample (MonitorOptions.HistogramSampleSize).
    /// </summary>
    private (StatsAccumulator Acc, Log2Histogram? Hist) GradientStatistics(int index, Tensor g)
    {
        var acc = new StatsAccumulator();
        int sample = _histogramShare == 0 ? 0 : Math.Max(256, (int)(g.NumEl * _histogramShare));
        bool sampled = _options.Histograms && g.DType == DType.Float32 && sample > 0 && sample < g.NumEl;
        if (_measured[index] is not { } m || !g.IsContiguous)
        {
            if (!sampled)
            {
                var full = TensorStats.Accumulate(g, ref acc, _options.Histograms); // before the tuple copies acc
                return (acc, full);
            }
            TensorStats.Accumulate(g, ref acc, histogram: false);
        }
        else
        {
            acc.Count = g.NumEl; acc.SumSquares = m.GradSumSq; acc.SumAbs = m.GradSumAbs; acc.MaxAbs = m.GradMaxAbs;
            acc.Zeros = m.GradZeros; acc.NaNs = m.GradNaNs; acc.Infs = m.GradInfs;
            if (!_options.Histograms) return (acc, null);
            if (_earlyHistograms[index] is { } early) return (acc, early);
            if (!sampled && g.DType != DType.Float32)
            {
                var unused = new StatsAccumulator();
                return (acc, TensorStats.Accumulate(g, ref unused, histogram: true));
            }
        }
        return (acc, FloatHistogram(g, sampled ? sample : 0));
    }

    [System.Runtime.CompilerServices.SkipLocalsInit] // raw is cleared once, below
    private static Log2Histogram FloatHistogram(Tensor g, int sample)
    {
        Span<long> raw = stackalloc long[Statistics.FloatRawBins];
        raw.Clear();
        var span = g.ContiguousRaw().Span<float>();
        long counted = Statistics.Histogram(span, raw, sample, out long zeros);
        var hist = Log2Histogram.FromFloatBins(raw, zeros);
        hist.Scale((double)span.Length / Math.Max(counted, 1));
        return hist;
    }

    // Sum of squares straight off the span (the tensor op Norm allocated a result tensor per parameter per step).
    private static double ParamNorm(Tensor p) =>
        p.DType == DType.Float32 && p.IsContiguous ? Math.Sqrt(ActivationKernels.Moments(p.Span<float>()).SumSquares) : p.Norm().Item();

    private static void Merge(ref StatsAccumulator into, in StatsAccumulator from)
    {
        into.Count += from.Count; into.SumSquares += from.SumSquares; into.SumAbs += from.SumAbs;
        into.MaxAbs = Math.Max(into.MaxAbs, from.MaxAbs); into.Zeros += from.Zeros; into.NaNs += from.NaNs; into.Infs += from.Infs;
    }

    private int DepthOf(string layer)
    {
        if (_depth.TryGetValue(layer, out int d)) return d;
        // Layers never seen in forward (no ops under their scope) sort by parameter order, after the seen ones.
        int index = Array.FindIndex(_params, p => p.Layer == layer);
        return 1_000_000 + Math.Max(index, 0);
    }

    private void ResetStep()
    {
        _pendingFlow.Clear();
        _flow.Clear();
        Array.Clear(_updateSquares);
        Array.Clear(_measured);
        Array.Clear(_earlyHistograms);
        _histogramShareKnown = false;
        _clipBefore = _clipAfter = null;
        _lossSum = 0;
        _lossCount = 0;
        foreach (var a in _activations.Values) if (a.SeenThisStep) a.Finish(_options.DeadWindow);
    }

    void IAutogradObserver.OnForward(string op, ReadOnlySpan<Tensor> inputs, Tensor output, Node? node)
    {
        // Only training forwards: a NoGrad evaluation pass, or the ops of a backward, are not this step's model.
        // (An op with no node still counts: the layers in front of it may be frozen.)
        if (!Autograd.IsGradEnabled || !Recording || Autograd.IsInBackward) return;
        string scope = Autograd.CurrentScope ?? "";
        // Consecutive ops mostly share a scope: skip the dictionary (a string hash per op) when it is the last one seen.
        if (!ReferenceEquals(scope, _lastScope))
        {
            if (!_depth.ContainsKey(scope)) _depth[scope] = _depth.Count;
            _lastScope = scope;
        }
        if (!_options.Activations) return;
        var kind = ActivationPolicy.KindOf(op);
        if (kind == ActivationKind.None) return;
        var key = (scope, op);
        if (!_activations.TryGetValue(key, out var tracker))
            _activations[key] = tracker = new ActivationTracker(scope, op, _depth[scope], kind, _activationPolicy);
        tracker.Observe(output, Instrumentation.TakeActivation());
    }

    void IAutogradObserver.OnBackward(Node node, ReadOnlySpan<Tensor?> gradOutputs, ReadOnlySpan<Tensor?> gradInputs)
    {
        if (!_options.Flow || !Recording || node is AccumulateGrad) return;
        // What this node's own kernel measured, if it did (an activation's fused backward reads the gradient it
        // receives and writes the one it passes on: both norms come from that pass, not from passes of their own).
        var fused = Instrumentation.TakeFlow();
        if (_pendingFlow.Count > 0 && _pendingFlow.Remove(node, out var pending))
            AddFlow(pending.Scope, pending.Grad, fused is { } f && ReferenceEquals(f.Received, pending.Grad) ? f.ReceivedSquares : null);
        string scope = node.Scope ?? "";
        var next = node.Next;
        for (int i = 0; i < gradInputs.Length && i < next.Length; i++)
        {
            // A gradient leaving this layer for another layer's op: what reaches this layer's input.
            var target = next[i].Function;
            if (target is null or AccumulateGrad || gradInputs[i] is not { } g || (target.Scope ?? "") == scope) continue;
            if (fused is { } m && ReferenceEquals(m.Produced, g)) AddFlow(scope, g, m.ProducedSquares);
            // Bound for an activation that will measure it while computing its own gradient, and will receive it
            // unchanged (no other gradient summed into it): its norm is taken then, in that pass.
            else if (Instrumentation.WillMeasureFlow(target, next[i].InputNr, g))
                _pendingFlow[target] = (scope, g);
            else AddFlow(scope, g, null);
        }
    }

    // Adds a gradient's squared norm to its layer's flow: the kernel's figure when it measured it, else a pass of its own.
    private void AddFlow(string scope, Tensor g, double? measuredSquares)
    {
        double sumSq;
        long nonFinite = 0;
        if (measuredSquares is { } measured && double.IsFinite(measured)) sumSq = measured;
        else if (g.DType == DType.Float32 && g.IsContiguous)
        {
            // Only the norm is wanted: one fused multiply-add per vector; a NaN/Inf shows in the sum itself.
            sumSq = measuredSquares ?? StatisticsParallel.SumSquares(g.Data<float>(), g.Offset, g.NumEl);
            if (!double.IsFinite(sumSq)) (sumSq, nonFinite) = FiniteSquares(g);
        }
        else (sumSq, nonFinite) = FiniteSquares(g);
        _flow.TryGetValue(scope, out var f);
        _flow[scope] = (f.SumSquares + sumSq, f.NonFinite + nonFinite);
    }

    // The activation kernels measure activations and the backward flow for this monitor while it is attached and the
    // coming step is recorded; called whenever either changes. The arms live on the thread that set them (the one the
    // monitor watches); a monitor disposed on another thread leaves them, and the kernels then measure for nobody.
    private void SyncArming()
    {
        bool recording = _registration is not null && Recording;
        bool flow = recording && _options.Flow, activations = recording && _options.Activations;
        if (flow == _armedFlow && activations == _armedActivations) return;
        if (_armedThread == Environment.CurrentManagedThreadId)
        {
            if (_armedFlow) Instrumentation.DisarmFlow();
            if (_armedActivations) Instrumentation.DisarmActivations(_activationPolicy);
        }
        if (flow) Instrumentation.ArmFlow();
        if (activations) Instrumentation.ArmActivations(_activationPolicy);
        (_armedFlow, _armedActivations) = (flow, activations);
        _armedThread = flow || activations ? Environment.CurrentManagedThreadId : 0;
    }

    private static (double SumSquares, long NonFinite) FiniteSquares(Tensor g)
    {
        var acc = new StatsAccumulator();
        TensorStats.Accumulate(g, ref acc, histogram: false);
        return (acc.SumSquares, acc.NaNs + acc.Infs);
    }

    void IOptimizerObserver.OnParameterUpdated(in ParameterUpdate update)
    {
        ObserveUpdate(update.Param, update.Stats.UpdateSumSq);
        // The update pass also measured the gradient and the weights: BuildRecord then needs no pass of its own.
        if (!Recording || !_paramIndex.TryGetValue(update.Param, out int i) || !ReferenceEquals(update.Grad, update.Param.Grad)) return;
        _measured[i] = update.Stats;
        // Count the histogram now: the update pass has just streamed this gradient, so its sampled runs are still in
        // cache; at the end of the step the later parameters' passes would have pushed them out (mlp: 22 MB of weights,
        // gradients and momentum), and each spread run would be a trip to memory.
        var g = update.Grad;
        if (_options.Histograms && g.DType == DType.Float32 && g.IsContiguous)
        {
            EnsureHistogramShare();
            int sample = _histogramShare == 0 ? 0 : Math.Max(256, (int)(g.NumEl * _histogramShare));
            _earlyHistograms[i] = FloatHistogram(g, sample < g.NumEl ? sample : 0);
        }
    }

    void IOptimizerObserver.OnStepCompleted(Optimizer optimizer) => EndStep(learningRate: optimizer.ParamGroups.Count > 0 ? optimizer.ParamGroups[0].Lr : null);

    void IAutogradObserver.OnBackwardBegin(ReadOnlySpan<Tensor> roots)
    {
        // Only a backward that failed half-way leaves gradients waiting; one nested in a hook must not drop its outer's.
        if (!Instrumentation.BackwardRunning) _pendingFlow.Clear();
        // The loss of the step: the mean over its backward passes (micro-batches accumulate gradients).
        if (Recording && roots.Length == 1 && roots[0].NumEl == 1 && roots[0].DType.IsFloatingPoint())
        {
            _lossSum += roots[0].Item();
            _lossCount++;
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
        SyncArming();
    }

    /// <summary>Watches again after <see cref="Suspend"/>, from the next operation on.</summary>
    public void Resume()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_registration is not null) return;
        _registration = Autograd.AddObserver(this);
        if (_optimizer is not null) _optimizerRegistration = _optimizer.AddObserver(this);
        SyncArming();
    }

    /// <summary>Detaches the monitor from the engine.</summary>
    public void Dispose()
    {
        if (!_disposed) ResetStep();
        _registration?.Dispose();
        _optimizerRegistration?.Dispose();
        _registration = _optimizerRegistration = null;
        SyncArming();
        _optimizer = null;
        _disposed = true;
    }
}
