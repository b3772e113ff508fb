namespace GradFlow.Diagnostics;

/// <summary>
/// Activation health: for each (layer, activation op) the <see cref="ActivationPolicy"/> watches, dead or saturated
/// units and the outputs' mean and std over the step's training forwards, measured when the op produces them. The
/// policy is armed into the kernels (<see cref="Instrumentation.ArmActivations"/>), so sigmoid and tanh count
/// saturation and ReLU takes each unit's maximum in the pass that writes the output; the
/// <see cref="ActivationTracker"/> takes that figure, or measures by itself when the kernel did not.
/// </summary>
internal sealed class ActivationCollector : IMonitorCollector
{
    private readonly Dictionary<(string, string), ActivationTracker> _trackers = [];
    private readonly MonitorContext _context;
    private readonly ActivationPolicy _policy;
    private readonly KernelArm _arm;

    public ActivationCollector(MonitorContext context)
    {
        _context = context;
        var policy = _policy = new ActivationPolicy(context.Options.SaturationEpsilon);
        _arm = new KernelArm(() => Instrumentation.ArmActivations(policy), () => Instrumentation.DisarmActivations(policy));
    }

    public MonitorEvents Events => MonitorEvents.Forward;

    public bool Detail => true;

    public void Sync(bool watching) => _arm.Sync(watching);

    public void OnForward(string op, string scope, int depth, Tensor output)
    {
        var kind = ActivationPolicy.KindOf(op);
        if (kind == ActivationKind.None) return;
        var key = (scope, op);
        if (!_trackers.TryGetValue(key, out var tracker))
            _trackers[key] = tracker = new ActivationTracker(scope, op, depth, kind, _policy);
        tracker.Observe(output, Instrumentation.TakeActivation());
    }

    public void Complete(StepRecordBuilder record)
    {
        int seen = 0;
        foreach (var t in _trackers.Values) if (t.SeenThisStep) seen++;
        var activations = new ActivationStats[seen];
        int k = 0;
        foreach (var t in _trackers.Values) if (t.SeenThisStep) activations[k++] = t.Finish(_context.Options.DeadWindowSamples);
        MonitorContext.SortByDepth(activations, static a => a.Depth);
        record.Activations = activations;
    }

    // A step dropped half-way (Suspend, Dispose) still closes the streaks of the trackers it saw.
    public void Reset()
    {
        foreach (var t in _trackers.Values) if (t.SeenThisStep) t.Finish(_context.Options.DeadWindowSamples);
    }
}
