using GradFlow.Optim;

namespace GradFlow.Diagnostics;

/// <summary>A parameter's shape and the fan-in and fan-out its initialisation is judged against (as torch.nn.init computes them).</summary>
/// <param name="Name">The parameter's dotted name.</param>
/// <param name="Shape">Its shape.</param>
/// <param name="FanIn">Inputs per output unit: size(1) times the receptive field (a kernel's taps); 0 for a vector (bias, norm scale).</param>
/// <param name="FanOut">size(0) times the receptive field; 0 for a vector.</param>
/// <param name="LayerType">The type of the module that owns it ("Linear", "Conv2d", "Embedding", "LSTM"), when the monitor was attached to a model; else null.</param>
/// <param name="WeightDecay">
/// The weight decay of the optimiser's parameter group that holds it ("weight_decay", 0 when the group has none), when an
/// optimiser is attached; else null. Groups may differ (no decay on biases and norms, or a decay typed wrong on one group).
/// </param>
public sealed record ParameterShape(string Name, IReadOnlyList<int> Shape, int FanIn, int FanOut, string? LayerType = null, double? WeightDecay = null)
{
    /// <summary>Elements in the parameter.</summary>
    public long Count => Shape.Aggregate(1L, (n, d) => n * d);

    /// <summary>The shape and fans of a tensor, by torch.nn.init._calculate_fan_in_and_fan_out's rule.</summary>
    public static ParameterShape Of(string name, Tensor parameter, string? layerType = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(parameter);
        int[] shape = parameter.Shape.ToArray();
        if (shape.Length < 2) return new ParameterShape(name, shape, 0, 0, layerType);
        int receptive = 1;
        for (int i = 2; i < shape.Length; i++) receptive *= shape[i];
        return new ParameterShape(name, shape, shape[1] * receptive, shape[0] * receptive, layerType);
    }
}

/// <summary>An optimiser's hyper-parameters (its first parameter group, by PyTorch's names; null where the optimiser has none).</summary>
/// <param name="Name">The optimiser's type ("SGD", "Adam", "AdamW").</param>
/// <param name="LearningRate">"lr".</param>
/// <param name="WeightDecay">"weight_decay" (0 when it has none).</param>
/// <param name="Momentum">SGD/RMSprop "momentum".</param>
/// <param name="Beta1">Adam-family "beta1".</param>
/// <param name="Beta2">Adam-family "beta2".</param>
/// <param name="DecoupledWeightDecay">True when the decay is applied to the weights directly (AdamW), not added to the gradient.</param>
public sealed record OptimizerSettings(string Name, double LearningRate, double WeightDecay, double? Momentum, double? Beta1, double? Beta2, bool DecoupledWeightDecay)
{
    /// <summary>Reads an optimiser's first group.</summary>
    public static OptimizerSettings Of(Optimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        var g = optimizer.ParamGroups[0].Options;
        double? Get(string key) => g.TryGetValue(key, out double v) ? v : null;
        return new OptimizerSettings(optimizer.GetType().Name, Get("lr") ?? double.NaN, Get("weight_decay") ?? 0, Get("momentum"), Get("beta1"), Get("beta2"),
            optimizer is AdamW);
    }

    /// <summary>Each parameter's group's "weight_decay" (0 when absent), by reference; parameters in no group are left out.</summary>
    internal static Dictionary<Tensor, double> WeightDecays(Optimizer optimizer)
    {
        var decays = new Dictionary<Tensor, double>(ReferenceEqualityComparer.Instance);
        foreach (var group in optimizer.ParamGroups)
        {
            double wd = group.Options.TryGetValue("weight_decay", out double v) ? v : 0;
            foreach (var p in group.Params) decays.TryAdd(p, wd);
        }
        return decays;
    }

    /// <summary>True when the group's values still match these (no allocation: read on every recorded step).</summary>
    internal bool Matches(Optimizer optimizer, bool ignoreLearningRate = false)
    {
        var g = optimizer.ParamGroups[0].Options;
        return (ignoreLearningRate || Same(g, "lr", LearningRate)) && Same(g, "weight_decay", WeightDecay) && Same(g, "momentum", Momentum) && Same(g, "beta1", Beta1) && Same(g, "beta2", Beta2);
    }

    private static bool Same(IReadOnlyDictionary<string, double> g, string key, double? value) =>
        g.TryGetValue(key, out double v) ? value is { } w && (v == w || double.IsNaN(v) && double.IsNaN(w)) : value is null || key == "weight_decay" && value == 0;
}

/// <summary>
/// What a run trains: the parameters' shapes and fans, the optimiser's hyper-parameters and the model's dropout rates. The monitor records it with
/// its first step (<see cref="StepRecord.Setup"/>) and again on a step where the optimiser's hyper-parameters other than
/// the learning rate changed (the rate in force is each step's <see cref="StepRecord.LearningRate"/>); the doctor judges the weights' scale against their fan-in and splits updates into gradient and decay.
/// </summary>
/// <param name="Parameters">The watched parameters, in the monitor's order.</param>
/// <param name="Optimizer">The attached optimiser's settings, or null without one.</param>
/// <param name="Dropouts">The model's dropout-type modules in module order (empty: none), or null when unknown (the monitor
/// was given parameters, not a model; a record or run log written before the field). Dropout has no parameter, so this
/// is the only place a run's dropout rates are seen.</param>
public sealed record RunSetup(IReadOnlyList<ParameterShape> Parameters, OptimizerSettings? Optimizer, IReadOnlyList<DropoutLayer>? Dropouts = null);

/// <summary>A module that zeroes activations at random in training: a <c>Dropout</c>, or a layer with a dropout rate of its own.</summary>
/// <param name="Name">The module's dotted name ("classifier.2", "encoder.layers.0.dropout1").</param>
/// <param name="LayerType">Its type: "Dropout"; "MultiheadAttention" (dropout on the attention weights); "RNN", "LSTM", "GRU"
/// (dropout between stacked layers).</param>
/// <param name="P">The probability of zeroing an element (torch.nn.Dropout's p; Keras' and TF1's keep_prob is 1 - p).</param>
/// <param name="Training">Whether the module was in training mode, so dropping, when the setup was recorded.</param>
/// <param name="After">The module just before it in the model's module order (for a <c>Sequential</c>, the layer whose output
/// it drops), or null when it is the first or holds its dropout inside (attention, recurrent layers).</param>
public sealed record DropoutLayer(string Name, string LayerType, double P, bool Training, string? After = null)
{
    /// <summary>
    /// The dropout-type modules of a model, in module order: every <see cref="NN.Dropout"/> (whatever its rate) and every
    /// attention or recurrent layer whose own dropout rate is above 0 (a recurrent one only with two or more layers, the
    /// only place it drops).
    /// </summary>
    public static IReadOnlyList<DropoutLayer> Of(NN.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var found = new List<DropoutLayer>();
        string? previous = null; // the last leaf module met (one with no children)
        foreach (var (name, module) in model.NamedModules())
        {
            var layer = module switch
            {
                NN.Dropout d => new DropoutLayer(name, nameof(NN.Dropout), d.P, d.Training, previous),
                NN.MultiheadAttention a when a.DropoutP > 0 => new DropoutLayer(name, a.GetType().Name, a.DropoutP, a.Training),
                NN.RNNBase r when r.Dropout > 0 && r.NumLayers > 1 => new DropoutLayer(name, r.GetType().Name, r.Dropout, r.Training),
                _ => null,
            };
            if (layer is not null) found.Add(layer);
            if (!module.Children().Any()) previous = name;
        }
        return found;
    }
}
