namespace GradFlow.Optim;

/// <summary>
/// A set of parameters sharing hyper-parameters, as an entry of PyTorch's <c>optimizer.param_groups</c>.
/// Hyper-parameters are kept under PyTorch's names ("lr", "weight_decay", "momentum", "beta1", "beta2",
/// "eps", ...; flags such as "nesterov" as 0 or 1), so a scheduler can change any of them and a state
/// dict can carry them without knowing the optimiser. A group built by the user may set only some;
/// the optimiser fills the rest from its defaults when the group is added.
/// </summary>
public sealed class ParamGroup
{
    private readonly Dictionary<string, double> _options;
    private readonly Tensor[] _params;

    /// <summary>A group of <paramref name="parameters"/> with optional per-group hyper-parameters.</summary>
    public ParamGroup(IEnumerable<Tensor> parameters, IReadOnlyDictionary<string, double>? options = null)
    {
        Guard.NotNull(parameters, nameof(ParamGroup), nameof(parameters));
        _params = parameters.ToArray();
        for (int i = 0; i < _params.Length; i++)
            if (_params[i] is null) Guard.ThrowArg(nameof(ParamGroup), nameof(parameters), $"parameter {i} is null.");
        _options = options is null ? [] : new Dictionary<string, double>(options);
    }

    /// <summary>The parameters, in order. Their positions across all groups are the indices of the optimiser's state dict.</summary>
    public IReadOnlyList<Tensor> Params => _params;

    /// <summary>All hyper-parameters of this group by PyTorch name.</summary>
    public IReadOnlyDictionary<string, double> Options => _options;

    /// <summary>The learning rate ("lr").</summary>
    public double Lr
    {
        get => this["lr"];
        set => this["lr"] = value;
    }

    /// <summary>The weight decay ("weight_decay").</summary>
    public double WeightDecay
    {
        get => this["weight_decay"];
        set => this["weight_decay"] = value;
    }

    /// <summary>A hyper-parameter by PyTorch name; reading one the group lacks names the ones it has.</summary>
    public double this[string name]
    {
        get
        {
            if (_options.TryGetValue(name, out double v)) return v;
            throw new KeyNotFoundException($"ParamGroup: no hyper-parameter '{name}' (this group has: {string.Join(", ", _options.Keys)}).");
        }
        set
        {
            Guard.NotNull(name, nameof(ParamGroup), nameof(name));
            _options[name] = value;
        }
    }

    /// <summary>True if the group has a hyper-parameter of that name.</summary>
    public bool Has(string name) => _options.ContainsKey(name);

    /// <summary>A 0/1 flag hyper-parameter ("nesterov", "amsgrad", "maximize", "centered") as a bool.</summary>
    public bool Flag(string name) => this[name] != 0;

    internal void SetDefault(string name, double value) => _options.TryAdd(name, value);

    internal void ReplaceOptions(IReadOnlyDictionary<string, double> options)
    {
        _options.Clear();
        foreach (var (k, v) in options) _options[k] = v;
    }
}
