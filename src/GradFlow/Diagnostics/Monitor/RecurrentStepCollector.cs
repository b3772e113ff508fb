namespace GradFlow.Diagnostics;

/// <summary>
/// The gradient through time inside recurrent layers: ||dL/dh_t|| for every time step of every layer and direction,
/// measured by the recurrent backward itself (<see cref="Instrumentation.ArmRecurrentSteps"/>: the fused LSTM in its
/// own pass, RNN and GRU by the engine as it reaches each step's marked node) and taken here in OnBackward of the node
/// that completed it. Several backwards of one layer in a step (gradient accumulation) add their squares. A detail
/// (<see cref="MonitorOptions.DetailEvery"/>): the step-by-step layers mark a node per time step, and the measure
/// reads every h_t's gradient once more.
/// </summary>
internal sealed class RecurrentStepCollector(MonitorContext context) : IMonitorCollector
{
    private readonly Dictionary<(string Scope, int Layer, bool Reverse), double[]> _squares = [];
    private readonly KernelArm _arm = new(Instrumentation.ArmRecurrentSteps, Instrumentation.DisarmRecurrentSteps);

    public MonitorEvents Events => MonitorEvents.Backward;

    public bool Detail => true;

    public void Sync(bool watching) => _arm.Sync(watching);

    public void OnBackward(Node node, ReadOnlySpan<Tensor?> gradOutputs, ReadOnlySpan<Tensor?> gradInputs)
    {
        if (Instrumentation.TakeRecurrentSteps(node) is not { } m) return;
        var key = (node.Scope ?? "", m.Layer, m.Reverse);
        if (!_squares.TryGetValue(key, out var sums) || sums.Length != m.Steps) _squares[key] = sums = new double[m.Steps];
        for (int t = 0; t < m.Steps; t++) sums[t] += m.Squares[t];
    }

    public void Complete(StepRecordBuilder record)
    {
        if (_squares.Count == 0) return;
        var stats = new RecurrentStepStats[_squares.Count];
        int k = 0;
        foreach (var ((scope, layer, reverse), sums) in _squares)
        {
            var norms = new double[sums.Length];
            for (int t = 0; t < norms.Length; t++) norms[t] = Math.Sqrt(sums[t]);
            stats[k++] = new RecurrentStepStats(scope, context.DepthOf(scope), layer, reverse, norms);
        }
        Array.Sort(stats, static (a, b) => a.Depth != b.Depth ? a.Depth.CompareTo(b.Depth)
            : a.RecurrentLayer != b.RecurrentLayer ? a.RecurrentLayer.CompareTo(b.RecurrentLayer) : a.Reverse.CompareTo(b.Reverse));
        record.RecurrentSteps = stats;
    }

    public void Reset()
    {
        _squares.Clear();
        Instrumentation.ClearRecurrentStepMarks(); // a forward of this step that never ran backward keeps no graph alive
    }
}
