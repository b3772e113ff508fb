using GradFlow.Kernels;

namespace GradFlow.Diagnostics;

/// <summary>
/// The backward flow: the norm of the gradient leaving each layer for its input (a node whose input comes from another
/// scope), taken when the engine produces it. Where an activation's fused backward reads or writes that gradient anyway,
/// its kernel measures it (<see cref="Instrumentation.ArmFlow"/>): a gradient bound for such a kernel, and reaching it
/// unchanged (<see cref="Instrumentation.WillMeasureFlow"/>), waits for the kernel's figure; any other, or one the kernel
/// did not measure after all (createGraph), gets a pass of its own. Each figure is matched to the very tensor it was
/// measured on.
/// </summary>
internal sealed class FlowCollector : IMonitorCollector
{
    private readonly Dictionary<string, (double SumSquares, long NonFinite)> _flow = [];
    // Gradients leaving a layer for an activation whose fused backward will measure them as it reads them (by node).
    private readonly Dictionary<Node, (string Scope, Tensor Grad)> _pending = new(ReferenceEqualityComparer.Instance);
    private readonly MonitorContext _context;
    private readonly KernelArm _arm = new(Instrumentation.ArmFlow, Instrumentation.DisarmFlow);

    public FlowCollector(MonitorContext context) => _context = context;

    public MonitorEvents Events => MonitorEvents.BackwardBegin | MonitorEvents.Backward;

    public bool Detail => true;

    public void Sync(bool watching) => _arm.Sync(watching);

    public void OnBackwardBegin(ReadOnlySpan<Tensor> roots)
    {
        // Only a backward that failed half-way leaves gradients waiting; one nested in a hook must not drop its outer's.
        if (!Instrumentation.BackwardRunning) _pending.Clear();
    }

    public void OnBackward(Node node, ReadOnlySpan<Tensor?> gradOutputs, ReadOnlySpan<Tensor?> gradInputs)
    {
        // What this node's own kernel measured, if it did (an activation's fused backward reads the gradient it
        // receives and writes the one it passes on: both norms come from that pass, not from passes of their own).
        var fused = Instrumentation.TakeFlow();
        if (_pending.Count > 0 && _pending.Remove(node, out var pending))
            Add(pending.Scope, pending.Grad, fused is { } f && ReferenceEquals(f.Received, pending.Grad) ? f.ReceivedSquares : null);
        string scope = node.Scope ?? "";
        var next = node.Next;
        for (int i = 0; i < gradInputs.Length && i < next.Length; i++)
        {
            // A gradient leaving this layer for another layer's op: what reaches this layer's input.
            var target = next[i].Function;
            if (target is null or AccumulateGrad || gradInputs[i] is not { } g || (target.Scope ?? "") == scope) continue;
            if (fused is { } m && ReferenceEquals(m.Produced, g)) Add(scope, g, m.ProducedSquares);
            // Bound for an activation that will measure it while computing its own gradient: its norm is taken then.
            else if (Instrumentation.WillMeasureFlow(target, next[i].InputNr, g)) _pending[target] = (scope, g);
            else Add(scope, g, null);
        }
    }

    public void Complete(StepRecordBuilder record)
    {
        var flow = new FlowStats[_flow.Count];
        int k = 0;
        foreach (var (scope, f) in _flow) flow[k++] = new FlowStats(scope, _context.DepthOf(scope), Math.Sqrt(f.SumSquares), f.NonFinite);
        MonitorContext.SortByDepth(flow, static f => f.Depth);
        record.Flow = flow;
    }

    public void Reset()
    {
        _pending.Clear();
        _flow.Clear();
    }

    // Adds a gradient's squared norm to its layer's flow: the kernel's figure when it measured it, else a pass of its own.
    private void Add(string scope, Tensor g, double? measuredSquares)
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

    private static (double SumSquares, long NonFinite) FiniteSquares(Tensor g)
    {
        var acc = new StatsAccumulator();
        TensorStats.Accumulate(g, ref acc, histogram: false);
        return (acc.SumSquares, acc.NaNs + acc.Infs);
    }
}
