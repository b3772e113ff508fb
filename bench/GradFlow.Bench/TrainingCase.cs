using GradFlow.Diagnostics;
using GradFlow.NN;
using GradFlow.Optim;

namespace GradFlow.Bench;

/// <summary>
/// A training step as a user writes it: zero the gradients, forward, loss, backward, optimiser step,
/// all inside a <see cref="TensorArena"/> step so the step's activation and gradient buffers are recycled.
/// A subclass builds the model, the optimiser and the inputs (identical to bench/torch_bench.py's twin).
/// </summary>
internal abstract class TrainingCase : IBenchCase
{
    private readonly TensorArena _arena = new();
    private GradientMonitor? _monitor;
    private Module _model = null!;
    private Optimizer _optimizer = null!;

    public abstract string Name { get; }

    public virtual double FlopsPerStep => 0;

    /// <summary>Run each step inside the arena (the default); off, to measure what the arena saves.</summary>
    public bool UseArena { get; set; } = true;

    public void Setup() => (_model, _optimizer) = Build();

    /// <summary>The model built by <see cref="Setup"/> (for cases that reuse it, as the curvature ones).</summary>
    internal Module BuiltModel => _model;

    /// <summary>The optimiser built by <see cref="Setup"/> (the sharpness probe reads its state).</summary>
    internal Optimizer BuiltOptimizer => _optimizer;

    /// <summary>Forward and loss of the case's batch, outside any arena step.</summary>
    internal Tensor BatchLoss() => Loss();

    /// <summary>Forward and loss of the first <paramref name="examples"/> examples of the case's batch (curvature on a sub-batch).</summary>
    internal Tensor BatchLoss(int examples) => Loss(examples);

    /// <summary>The case's batch size, for <see cref="BatchLoss(int)"/>.</summary>
    internal virtual int BatchSize => throw new NotSupportedException($"{Name} has no sub-batch loss.");

    /// <summary>Forward and loss of the first examples of the batch; cases the curvature counts use override it.</summary>
    protected virtual Tensor Loss(int examples) => throw new NotSupportedException($"{Name} has no sub-batch loss.");

    /// <summary>The model, its optimiser and (in fields of the subclass) the batch.</summary>
    protected abstract (Module Model, Optimizer Optimizer) Build();

    /// <summary>Forward and loss of one batch.</summary>
    protected abstract Tensor Loss();

    public void Step()
    {
        if (!UseArena)
        {
            Once();
            return;
        }
        using (_arena.Step()) Once();
    }

    /// <summary>
    /// One arena step as <see cref="Step"/>, in two parts of the thread's CPU ms: zero-grad + forward + loss, then
    /// backward + optimiser step (with one thread, all of the step's work).
    /// </summary>
    internal (double ForwardMs, double BackwardMs) TimedStep()
    {
        using (_arena.Step())
        {
            double t0 = ThreadCpu.NowMs();
            _optimizer.ZeroGrad();
            var loss = Loss();
            double t1 = ThreadCpu.NowMs();
            loss.Backward();
            _optimizer.Step();
            double t2 = ThreadCpu.NowMs();
            return (t1 - t0, t2 - t1);
        }
    }

    private void Once()
    {
        _optimizer.ZeroGrad();
        var loss = Loss();
        loss.Backward();
        _optimizer.Step();
    }

    /// <summary>
    /// Attaches a <see cref="GradientMonitor"/> with its default options (<see cref="FullMonitor"/>), or suspends it. One monitor
    /// lives for the whole run and is suspended between blocks, as a user would attach it once: its first-step
    /// set-up (trackers, per-unit buffers) is not charged to every block.
    /// </summary>
    public void SetMonitor(bool on) => SetMonitor(on ? FullMonitor : null);

    /// <summary>
    /// The monitor as a user attaches it: every statistic, on its default schedule (the step signals every step, the
    /// details every <see cref="MonitorOptions.DetailEvery"/>-th; --split also times details on every step).
    /// </summary>
    public static readonly MonitorOptions FullMonitor = new();

    /// <summary>Resumes the monitor with these options (one monitor per options object), suspending any other; null: none.</summary>
    public void SetMonitor(MonitorOptions? options)
    {
        if (_monitor is not null && !_monitor.IsSuspended) _monitor.Suspend();
        _monitor = null;
        if (options is null) return;
        if (!_monitors.TryGetValue(options, out var monitor))
        {
            _monitors[options] = monitor = GradientMonitor.Attach(_model, _optimizer, options);
            // The doctor rides on the monitor's records (and its live graph probes): the 2% budget is for both.
            if (WithDoctor) _doctors.Add(Doctor.Attach(monitor));
            monitor.Suspend();
        }
        monitor.Resume();
        _monitor = monitor;
    }

    /// <summary>Attach the doctor to every monitor made from now on (the default: a user watching a run wants both).</summary>
    public bool WithDoctor { get; set; } = true;

    private readonly List<Doctor> _doctors = [];
    private readonly Dictionary<MonitorOptions, GradientMonitor> _monitors = new(ReferenceEqualityComparer.Instance);
}

/// <summary>
/// The monitor-on twin of a training case: the runner alternates blocks of steps with and without a
/// <see cref="GradientMonitor"/> attached to one model, so both see the same machine load.
/// </summary>
internal sealed class MonitorCase(TrainingCase inner) : IBenchCase
{
    public TrainingCase Inner { get; } = inner;

    public string Name => Inner.Name + "_monitor";

    public double FlopsPerStep => Inner.FlopsPerStep;

    public void Setup() => Inner.Setup();

    public void Step() => Inner.Step();
}

/// <summary>Deterministic inputs both sides compute the same way (torch_bench.py's <c>wave</c> and <c>labels</c>).</summary>
internal static class BenchData
{
    /// <summary>x[i] = sin(0.1 i + phase) as float32, shaped.</summary>
    public static Tensor Wave(double phase, params int[] shape)
    {
        int n = 1;
        foreach (int s in shape) n *= s;
        var data = new float[n];
        for (int i = 0; i < n; i++) data[i] = (float)Math.Sin((0.1 * i) + phase);
        return Tensor.FromArray(data, shape);
    }

    /// <summary>Class labels (7 i) mod classes, int64.</summary>
    public static Tensor Labels(int n, int classes)
    {
        var data = new long[n];
        for (int i = 0; i < n; i++) data[i] = 7L * i % classes;
        return Tensor.FromArray(data, n);
    }
}
