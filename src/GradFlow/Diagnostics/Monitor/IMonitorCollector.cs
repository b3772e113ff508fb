using GradFlow.Optim;

namespace GradFlow.Diagnostics;

/// <summary>The engine and optimiser events a collector wants; the monitor calls a collector only at those.</summary>
[Flags]
internal enum MonitorEvents
{
    /// <summary>Only the step-level calls (Sync, Complete, Reset).</summary>
    None = 0,
    /// <summary><see cref="IMonitorCollector.OnForward"/>: every op of a recorded step's training forward.</summary>
    Forward = 1,
    /// <summary><see cref="IMonitorCollector.OnBackwardBegin"/>: every backward that starts, recorded step or not.</summary>
    BackwardBegin = 2,
    /// <summary><see cref="IMonitorCollector.OnBackward"/>: every node's backward of a recorded step (not the leaves').</summary>
    Backward = 4,
    /// <summary><see cref="IMonitorCollector.OnParameterUpdated"/>: every watched parameter the optimiser updated in a recorded step.</summary>
    ParameterUpdated = 8,
}

/// <summary>
/// One family of statistics a <see cref="GradientMonitor"/> gathers over a step: the parameters' gradients and updates
/// (<see cref="ParameterCollector"/>), their histograms (<see cref="HistogramCollector"/>), the backward flow
/// (<see cref="FlowCollector"/>), activation health (<see cref="ActivationCollector"/>).
/// <para>
/// How a collector plugs in: implement the calls it needs (the others default to nothing) and name them in
/// <see cref="Events"/>; add it with <see cref="GradientMonitor.AddCollector"/>. The monitor shares what every collector
/// needs through the <see cref="MonitorContext"/> (parameters, layers, depths, whether the step is recorded) and calls:
/// <list type="number">
/// <item><see cref="Sync"/> whenever watching starts or stops (attach, suspend, resume, a step that is or is not
/// recorded): the place to arm or disarm kernel measures (<see cref="Instrumentation"/>).</item>
/// <item>the events, on the training thread, while the monitor is attached; they run inside every op and every
/// backward node, so they must return quickly when there is nothing for them and must not allocate per step.</item>
/// <item><see cref="Complete"/> at the end of a recorded step (for a <see cref="Detail"/> collector, of a step with details), in the order the collectors were added, to write its
/// part of the record; then <see cref="Reset"/> after every step, recorded or not, and when the monitor is suspended or
/// disposed.</item>
/// </list>
/// A collector keeps state across steps if it needs to (the dead-unit streaks do). A figure the <see cref="StepRecord"/>
/// has no place for is the collector's own to expose (the doctor reads its collectors directly).
/// </para>
/// </summary>
internal interface IMonitorCollector
{
    /// <summary>The events this collector handles (read once, when it is added).</summary>
    MonitorEvents Events { get; }

    /// <summary>
    /// True for a family of detailed statistics, gathered only on the steps <see cref="MonitorOptions.DetailEvery"/> names:
    /// on the other recorded steps the monitor treats it as not watching (no events, no Complete; Reset still).
    /// </summary>
    bool Detail => false;

    /// <summary>
    /// Watching is on (<paramref name="watching"/>: attached and the coming step recorded) or off; called whenever that
    /// may have changed, on the thread that attached the monitor or the one disposing it.
    /// </summary>
    void Sync(bool watching) { }

    /// <summary>A training forward op of a recorded step ran in <paramref name="scope"/> (at <paramref name="depth"/>).</summary>
    void OnForward(string op, string scope, int depth, Tensor output) { }

    /// <summary>A backward starts from <paramref name="roots"/>.</summary>
    void OnBackwardBegin(ReadOnlySpan<Tensor> roots) { }

    /// <summary>The engine ran <paramref name="node"/>'s backward in a recorded step.</summary>
    void OnBackward(Node node, ReadOnlySpan<Tensor?> gradOutputs, ReadOnlySpan<Tensor?> gradInputs) { }

    /// <summary>The optimiser updated watched parameter <paramref name="index"/> in a recorded step.</summary>
    void OnParameterUpdated(int index, in ParameterUpdate update) { }

    /// <summary>A recorded step ends: write this collector's part of <paramref name="record"/>.</summary>
    void Complete(StepRecordBuilder record) { }

    /// <summary>A step ended (after <see cref="Complete"/> if recorded), or the monitor stops: drop the step's sums.</summary>
    void Reset() { }
}

/// <summary>A step's record as the collectors fill it (one per monitor, reused; the monitor makes the <see cref="StepRecord"/>).</summary>
internal sealed class StepRecordBuilder
{
    public double GlobalGradNorm;
    public double? ClippedGradNorm;
    public int GradientsCarriedOver;
    public ParameterStats[] Parameters = [];
    public LayerGradientStats[] Layers = [];
    public FlowStats[] Flow = [];
    public ActivationStats[] Activations = [];
    public RecurrentStepStats[] RecurrentSteps = [];
    public SharpnessProbeResult? Curvature;
    public DistributedGradientStats? Distributed;

    public void Clear()
    {
        GlobalGradNorm = 0;
        ClippedGradNorm = null;
        GradientsCarriedOver = 0;
        Parameters = [];
        Layers = [];
        Flow = [];
        Activations = [];
        RecurrentSteps = [];
        Curvature = null;
        Distributed = null;
    }
}
