namespace GradFlow.Diagnostics;

/// <summary>
/// What a <see cref="GradientMonitor"/>'s collectors share: the options, the watched parameters and their layers (fixed
/// when the monitor is attached), whether the current step is recorded, and each scope's depth (its order of first
/// appearance in forward, learnt by the monitor before any collector sees the op).
/// </summary>
internal sealed class MonitorContext
{
    private readonly Dictionary<string, int> _depth = [];
    private string? _lastScope;
    private int _lastDepth;

    public MonitorContext(IEnumerable<KeyValuePair<string, Tensor>> namedParameters, MonitorOptions options)
    {
        Options = options;
        Step = options.StartStep;
        Params = namedParameters.Select(p => (p.Key, GradientMonitor.LayerOf(p.Key), p.Value)).ToArray();
        for (int i = 0; i < Params.Length; i++) ParamIndex[Params[i].Param] = i;
        LayerNames = Params.Select(p => p.Layer).Distinct().ToArray();
        LayerOf = Params.Select(p => Array.IndexOf(LayerNames, p.Layer)).ToArray();
    }

    /// <summary>The options in force.</summary>
    public MonitorOptions Options { get; }

    /// <summary>The watched parameters, in the order given.</summary>
    public (string Name, string Layer, Tensor Param)[] Params { get; }

    /// <summary>A parameter tensor's index in <see cref="Params"/>.</summary>
    public Dictionary<Tensor, int> ParamIndex { get; } = new(ReferenceEqualityComparer.Instance);

    /// <summary>The parameters' layers, in order of first appearance.</summary>
    public string[] LayerNames { get; }

    /// <summary>Parameter index -> its layer's slot in <see cref="LayerNames"/>.</summary>
    public int[] LayerOf { get; }

    /// <summary>The step number the monitor is in (steps ended so far).</summary>
    public long Step { get; set; }

    /// <summary>True when the current step is recorded (<see cref="MonitorOptions.Every"/>).</summary>
    public bool Recording => Step % Options.Every == 0;

    /// <summary>
    /// True when the step in progress (or, in Complete, the step being closed) measures the details
    /// (<see cref="MonitorOptions.DetailEvery"/>); set by the monitor as each step begins.
    /// </summary>
    public bool Detailed { get; private set; }

    /// <summary>Fixes <see cref="Detailed"/> for the coming step (Step steps ended so far).</summary>
    public void BeginStep() => Detailed = Recording && Step / Options.Every % Options.DetailEvery == 0;

    /// <summary>Learns the depth of a scope a training forward op ran in; returns it.</summary>
    public int SeeScope(string scope)
    {
        // Consecutive ops mostly share a scope: skip the dictionary (a string hash per op) when it is the last one seen.
        if (ReferenceEquals(scope, _lastScope)) return _lastDepth;
        if (!_depth.TryGetValue(scope, out int d)) _depth[scope] = d = _depth.Count;
        _lastScope = scope;
        return _lastDepth = d;
    }

    /// <summary>A scope's depth: its forward order, or for a layer never seen in forward, after the seen ones in parameter order.</summary>
    public int DepthOf(string layer)
    {
        if (_depth.TryGetValue(layer, out int d)) return d;
        int index = Array.FindIndex(Params, p => p.Layer == layer);
        return 1_000_000 + Math.Max(index, 0);
    }

    /// <summary>A stable sort by depth (insertion: a few dozen entries, mostly in order already).</summary>
    public static void SortByDepth<T>(T[] items, Func<T, int> depth)
    {
        for (int i = 1; i < items.Length; i++)
        {
            var item = items[i];
            int d = depth(item), j = i - 1;
            for (; j >= 0 && depth(items[j]) > d; j--) items[j + 1] = items[j];
            items[j + 1] = item;
        }
    }
}
