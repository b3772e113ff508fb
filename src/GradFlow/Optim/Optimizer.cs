using GradFlow.NN;

namespace GradFlow.Optim;

/// <summary>
/// The base of every optimiser (torch.optim.Optimizer): parameter groups with their own hyper-parameters,
/// lazily created per-parameter state, <see cref="Step"/>, <see cref="ZeroGrad"/> and a state dict.
/// A subclass supplies the update of one parameter (a fused span kernel from Kernels/Optim), so a step
/// allocates nothing once the state exists. Parameters are updated in place; their version counters are
/// bumped as any in-place write bumps them.
/// </summary>
public abstract class Optimizer
{
    private readonly List<ParamGroup> _groups = [];
    private readonly Dictionary<Tensor, ParamState> _state = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<string, double> _defaults;
    private IOptimizerObserver[] _observers = [];

    /// <summary>An optimiser over one group holding <paramref name="parameters"/>.</summary>
    protected Optimizer(IEnumerable<Tensor> parameters, IReadOnlyDictionary<string, double> defaults)
        : this([new ParamGroup(Guard.NotNull(parameters, "Optimizer", nameof(parameters)))], defaults)
    {
        if (_groups[0].Params.Count == 0) ThrowNoParameters(parameters);
    }

    /// <summary>An optimiser over several groups; hyper-parameters a group lacks come from <paramref name="defaults"/>.</summary>
    protected Optimizer(IEnumerable<ParamGroup> groups, IReadOnlyDictionary<string, double> defaults)
    {
        Guard.NotNull(groups, "Optimizer", nameof(groups));
        Guard.NotNull(defaults, "Optimizer", nameof(defaults));
        _defaults = new Dictionary<string, double>(defaults);
        foreach (var g in groups) AddParamGroup(g);
        if (_groups.Count == 0) Guard.Throw(GetType().Name, "got an empty list of parameter groups.");
        if (_groups.Count > 1 && _groups.TrueForAll(g => g.Params.Count == 0)) ThrowNoParameters(null);
    }

    // PyTorch refuses an empty parameter list too: training would run with nothing to update and no word said.
    private void ThrowNoParameters(IEnumerable<Tensor>? parameters)
    {
        string source = parameters is ModuleParameters mp
            ? $"{mp.Owner.TypeName}.Parameters() is empty: the model registered no parameter. Keep layers in fields or auto-properties of the model (they register themselves), or call RegisterModule/RegisterParameter."
            : "got no parameters to optimise.";
        Guard.ThrowArg(GetType().Name, "params", source);
    }

    /// <summary>The hyper-parameters given at construction, by PyTorch name.</summary>
    public IReadOnlyDictionary<string, double> Defaults => _defaults;

    /// <summary>The parameter groups; change <see cref="ParamGroup.Lr"/> and the rest here between steps.</summary>
    public IReadOnlyList<ParamGroup> ParamGroups => _groups;

    /// <summary>How many times <see cref="Step"/> has run.</summary>
    public long StepCount { get; private set; }

    /// <summary>Adds a group, filling its missing hyper-parameters from the defaults (torch's add_param_group).</summary>
    public void AddParamGroup(ParamGroup group)
    {
        Guard.NotNull(group, "Optimizer.AddParamGroup", nameof(group));
        string op = GetType().Name;
        foreach (var (k, v) in _defaults) group.SetDefault(k, v);
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var g in _groups) foreach (var p in g.Params) seen.Add(p);
        for (int i = 0; i < group.Params.Count; i++)
        {
            var p = group.Params[i];
            if (!p.DType.IsFloatingPoint())
                Guard.ThrowArg(op, "params", $"parameter {i} is {p.DType.Name()} {Guard.Shape(p)}; only floating-point tensors can be optimised.");
            if (!p.IsLeaf)
                Guard.ThrowArg(op, "params", $"parameter {i} {Guard.Shape(p)} is not a leaf (it was produced by {p.GradFn!.Name}); optimise leaves only.");
            if (!p.IsContiguous)
                Guard.ThrowArg(op, "params", $"parameter {i} {Guard.Shape(p)} is a non-contiguous view; optimise the tensor that owns the data.");
            if (!seen.Add(p))
                Guard.ThrowArg(op, "params", $"parameter {i} {Guard.Shape(p)} appears in more than one parameter group (or twice in one).");
        }
        ValidateGroup(group);
        _groups.Add(group);
    }

    /// <summary>Checks a group's hyper-parameters (ranges, incompatible options); throw ArgumentException naming the option.</summary>
    protected virtual void ValidateGroup(ParamGroup group) { }

    /// <summary>Creates the state of a parameter on its first update (buffers shaped like it).</summary>
    protected abstract void InitState(ParamGroup group, Tensor param, ParamState state);

    /// <summary>
    /// Updates one parameter in place from <paramref name="grad"/> (contiguous, same shape and dtype).
    /// <paramref name="state"/>.Step already counts this update. With <paramref name="measure"/>, return the
    /// update's sums of squares measured in the same pass; otherwise return default.
    /// </summary>
    protected abstract UpdateStats Update(ParamGroup group, Tensor param, Tensor grad, ParamState state, bool measure);

    /// <summary>Applies one update to every parameter that has a gradient (torch's optimizer.step()).</summary>
    public void Step()
    {
        // As torch's @no_grad step; and optimiser state must outlive any TensorArena step it is created in.
        using var noGrad = Autograd.NoGrad();
        using var keep = TensorArena.Suspend();
        var observers = _observers;
        bool measure = observers.Length > 0;
        using var _ = TensorArena.Suspend(); // state created here (momentum, moments) outlives the step
        int index = 0;
        for (int gi = 0; gi < _groups.Count; gi++)
        {
            var group = _groups[gi];
            var ps = group.Params;
            for (int pi = 0; pi < ps.Count; pi++, index++)
            {
                var p = ps[pi];
                var grad = p.Grad;
                if (grad is null) continue;
                if (!grad.IsContiguous) grad = grad.Contiguous();
                if (!_state.TryGetValue(p, out var state))
                {
                    state = new ParamState();
                    InitState(group, p, state);
                    _state[p] = state;
                }
                state.Step++;
                var stats = Update(group, p, grad, state, measure);
                p.BumpVersion();
                p.MarkGradConsumed();
                if (measure)
                {
                    var u = new ParameterUpdate { Optimizer = this, GroupIndex = gi, ParamIndex = index, Param = p, Grad = grad, Lr = group.Lr, Step = state.Step, Stats = stats };
                    foreach (var o in observers) o.OnParameterUpdated(in u);
                }
            }
        }
        StepCount++;
        foreach (var o in observers) o.OnStepCompleted(this);
    }

    /// <summary>
    /// Clears every parameter's gradient: to null by default (as PyTorch 2.0), or to zeros in place. A dropped
    /// gradient that a <see cref="TensorArena"/> step allocated returns to that arena (reading it afterwards throws).
    /// </summary>
    public void ZeroGrad(bool setToNone = true)
    {
        foreach (var g in _groups)
            foreach (var p in g.Params)
            {
                p.ClearGradConsumed();
                if (p.Grad is null) continue;
                if (setToNone)
                {
                    TensorArena.ReclaimGradient(p.Grad);
                    p.Grad = null;
                }
                else p.Grad.Detach().FillRaw(0);
            }
    }

    /// <summary>The state of a parameter, or null before its first update.</summary>
    public ParamState? GetState(Tensor param) => _state.GetValueOrDefault(param);

    /// <summary>Adds an observer of every parameter update; dispose the result to remove it.</summary>
    public IDisposable AddObserver(IOptimizerObserver observer)
    {
        Guard.NotNull(observer, "Optimizer.AddObserver", nameof(observer));
        _observers = [.. _observers, observer];
        return Autograd.Handle(() => _observers = Array.FindAll(_observers, o => !ReferenceEquals(o, observer)));
    }

    /// <summary>A copy of the state: hyper-parameters per group, and per-parameter state by index across groups.</summary>
    public OptimizerStateDict StateDict()
    {
        var groups = new List<ParamGroupState>();
        var state = new Dictionary<int, ParamState>();
        int index = 0;
        foreach (var g in _groups)
        {
            var ids = new int[g.Params.Count];
            for (int i = 0; i < ids.Length; i++, index++)
            {
                ids[i] = index;
                if (_state.TryGetValue(g.Params[i], out var s)) state[index] = s.DeepCopy();
            }
            groups.Add(new ParamGroupState(new Dictionary<string, double>(g.Options), ids));
        }
        return new OptimizerStateDict { ParamGroups = groups, State = state };
    }

    /// <summary>
    /// Restores state saved by <see cref="StateDict"/> from an optimiser over parameters of the same shapes,
    /// grouped the same way. Hyper-parameters are replaced; buffers are copied (cast to the parameter's dtype).
    /// Everything is checked first, with the constructor's rules (every hyper-parameter present, finite and in
    /// range; every buffer and scalar an update needs present, shaped like its parameter; step counts in range),
    /// so a bad state throws an ArgumentException naming the key and leaves the optimiser untouched.
    /// </summary>
    public void LoadStateDict(OptimizerStateDict stateDict) => PrepareLoad(stateDict)();

    /// <summary>Checks <paramref name="stateDict"/> fully and returns the action that installs it (which cannot fail).</summary>
    internal Action PrepareLoad(OptimizerStateDict stateDict)
    {
        Guard.NotNull(stateDict, "Optimizer.LoadStateDict", nameof(stateDict));
        string op = GetType().Name + "." + nameof(LoadStateDict);
        if (stateDict.ParamGroups.Count != _groups.Count)
            Guard.ThrowArg(op, nameof(stateDict), $"the state has {stateDict.ParamGroups.Count} parameter groups, this optimiser has {_groups.Count}.");
        var byIndex = new List<(ParamGroup Group, Tensor Param)>();
        var checkedGroups = new ParamGroup[_groups.Count];
        for (int gi = 0; gi < _groups.Count; gi++)
        {
            if (stateDict.ParamGroups[gi].Params.Count != _groups[gi].Params.Count)
                Guard.ThrowArg(op, nameof(stateDict), $"group {gi} has {stateDict.ParamGroups[gi].Params.Count} parameters in the state, {_groups[gi].Params.Count} here.");
            checkedGroups[gi] = CheckedGroup(_groups[gi], stateDict.ParamGroups[gi].Options, gi, op);
            foreach (var p in _groups[gi].Params) byIndex.Add((checkedGroups[gi], p));
        }
        var map = new Dictionary<int, (ParamGroup Group, Tensor Param)>();
        for (int gi = 0, k = 0; gi < _groups.Count; gi++)
            foreach (int id in stateDict.ParamGroups[gi].Params)
                if (!map.TryAdd(id, byIndex[k++])) Guard.ThrowArg(op, nameof(stateDict), $"parameter index {id} appears twice.");
        var restored = new Dictionary<Tensor, ParamState>(ReferenceEqualityComparer.Instance);
        foreach (var (id, s) in stateDict.State)
        {
            if (!map.TryGetValue(id, out var target))
                Guard.ThrowArg(op, nameof(stateDict), $"state for parameter index {id}, which no group lists.");
            CheckState(s, target.Group, target.Param, id, op);
            restored[target.Param] = CopyState(s, target.Param);
        }
        return () =>
        {
            for (int gi = 0; gi < _groups.Count; gi++) _groups[gi].ReplaceOptions(checkedGroups[gi].Options);
            _state.Clear();
            foreach (var (p, s) in restored) _state[p] = s;
        };
    }

    // A copy of the group with the loaded options, checked as the constructor checks a group.
    private ParamGroup CheckedGroup(ParamGroup live, IReadOnlyDictionary<string, double> options, int gi, string op)
    {
        foreach (var name in _defaults.Keys)
            if (!options.ContainsKey(name)) Guard.ThrowArg(op, nameof(LoadStateDict), $"param group {gi} has no hyper-parameter '{name}'.");
        foreach (var (name, v) in options)
            if (!double.IsFinite(v)) Guard.ThrowArg(op, name, $"param group {gi}: hyper-parameter '{name}' is {v}; a restored value must be finite.");
        var group = new ParamGroup(live.Params, options);
        try
        {
            ValidateGroup(group);
        }
        catch (ArgumentException ex)
        {
            Guard.ThrowArg(op, ex.ParamName ?? "stateDict", $"param group {gi}: {ex.Message}");
        }
        return group;
    }

    // Step counts are doubles in the bias corrections, so beyond 2^53 they stop counting exactly.
    private const long MaxStep = 1L << 53;

    private void CheckState(ParamState s, ParamGroup group, Tensor param, int id, string op)
    {
        if (s.Step < 0 || s.Step > MaxStep) Guard.ThrowArg(op, "step", $"parameter {id} has step count {s.Step}; expected 0 to 2^53.");
        foreach (var (name, t) in s.Buffers)
        {
            if (!t.Shape.SequenceEqual(param.Shape))
                Guard.ThrowArg(op, name, $"buffer '{name}' of parameter {id} has shape {Guard.Shape(t)}, the parameter has {Guard.Shape(param)}.");
            if (!t.DType.IsFloatingPoint())
                Guard.ThrowArg(op, name, $"buffer '{name}' of parameter {id} is {t.DType.Name()}, expected floating point.");
        }
        foreach (var (name, v) in s.Scalars)
            if (!double.IsFinite(v)) Guard.ThrowArg(op, name, $"scalar '{name}' of parameter {id} is {v}, expected a finite number.");
        if (s.Step == 0) return;
        var (buffers, scalars) = StateNames(group, param.DType);
        foreach (var name in buffers)
            if (!s.Buffers.ContainsKey(name)) Guard.ThrowArg(op, name, $"parameter {id} has no buffer '{name}', which {GetType().Name} needs with these options.");
        foreach (var name in scalars)
            if (!s.Scalars.ContainsKey(name)) Guard.ThrowArg(op, name, $"parameter {id} has no scalar '{name}', which {GetType().Name} needs.");
    }

    /// <summary>
    /// The buffers and scalars a parameter's state holds after an update under the group's options, which a
    /// restored state must have. By default, those <see cref="InitState"/> creates (probed on an empty tensor).
    /// </summary>
    protected virtual (IEnumerable<string> Buffers, IEnumerable<string> Scalars) StateNames(ParamGroup group, DType dtype)
    {
        var probe = new ParamState();
        InitState(group, Tensor.Zeros([0], dtype), probe);
        return (probe.Buffers.Keys, probe.Scalars.Keys);
    }

    private static ParamState CopyState(ParamState s, Tensor param)
    {
        var copy = new ParamState { Step = s.Step };
        foreach (var (name, t) in s.Buffers) copy.Buffers[name] = t.DType == param.DType ? t.Detach().Clone() : t.Detach().To(param.DType);
        foreach (var (k, v) in s.Scalars) copy.Scalars[k] = v;
        return copy;
    }

    /// <summary>A zero buffer shaped like the parameter.</summary>
    protected static Tensor ZerosLike(Tensor param) => Tensor.ZerosLike(param);

    /// <summary>Reads an option and checks a range, naming the optimiser and option on failure.</summary>
    protected void CheckRange(ParamGroup group, string name, double min, double max, bool maxExclusive = false, bool minExclusive = false)
    {
        // Infinite values are refused whatever the range: an infinite rate or decay turns every weight NaN at the first step.
        double v = group[name];
        if (!double.IsFinite(v) || v < min || v > max || (maxExclusive && v == max) || (minExclusive && v == min))
            Guard.ThrowArg(GetType().Name, name, $"invalid {name} {v}: expected a finite {min} {(minExclusive ? "<" : "<=")} {name} {(maxExclusive ? "<" : "<=")} {max}.");
    }
}
