using GradFlow.Optim;

namespace GradFlow.Diagnostics;

/// <summary>A parameter's shape and the fan-in and fan-out its initialisation is judged against (as torch.nn.init computes them).</summary>
/// <param name="Name">The parameter's dotted name.</param>
/// <param name="Shape">Its shape.</param>
/// <param name="FanIn">Inputs per output unit: size(1) times the receptive field (a kernel's taps); 0 for a vector (bias, norm scale).</param>
/// <param name="FanOut">size(0) times the receptive field; 0 for a vector.</param>
/// <param name="LayerType">The type of the module that owns it ("Linear", "Conv2d", "Embedding", "LSTM"), when the monitor was attached to a model; else null.</param>
public sealed record ParameterShape(string Name, IReadOnlyList<int> Shape, int FanIn, int FanOut, string? LayerType = null)
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
/// What a run trains: the parameters' shapes and fans, and the optimiser's hyper-parameters. The monitor records it with
/// its first step (<see cref="StepRecord.Setup"/>) and again on a step where the optimiser's hyper-parameters other than
/// the learning rate changed (the rate in force is each step's <see cref="StepRecord.LearningRate"/>); the doctor judges the weights' scale against their fan-in and splits updates into gradient and decay.
/// </summary>
/// <param name="Parameters">The watched parameters, in the monitor's order.</param>
/// <param name="Optimizer">The attached optimiser's settings, or null without one.</param>
public sealed record RunSetup(IReadOnlyList<ParameterShape> Parameters, OptimizerSettings? Optimizer);
