namespace GradFlow.Diagnostics;

/// <summary>One parameter's gradient and update in one step.</summary>
/// <param name="Name">The parameter's dotted name ("encoder.layers.0.linear1.weight").</param>
/// <param name="Layer">The module path that owns it (the name without its last part).</param>
/// <param name="Gradient">Statistics of the gradient as the optimiser saw it (after accumulation and clipping); null if it had none (frozen or unused).</param>
/// <param name="ParamNorm">L2 norm of the parameter after the step.</param>
/// <param name="UpdateNorm">L2 norm of the change the optimiser applied, when the monitor watched the optimiser.</param>
public sealed record ParameterStats(string Name, string Layer, TensorStats? Gradient, double ParamNorm, double? UpdateNorm)
{
    /// <summary>||update|| / ||weight||: around 1e-3 is healthy for most layers (Karpathy's rule of thumb).</summary>
    public double? UpdateToWeight => UpdateNorm is { } u && ParamNorm > 0 ? u / ParamNorm : null;
}

/// <summary>A layer's parameters taken together.</summary>
public sealed record LayerGradientStats(string Layer, int Depth, TensorStats Gradient, double ParamNorm, double? UpdateNorm)
{
    /// <summary>||update|| / ||weights|| over the layer.</summary>
    public double? UpdateToWeight => UpdateNorm is { } u && ParamNorm > 0 ? u / ParamNorm : null;
}

/// <summary>The gradient that flowed out of a layer towards its input in backward.</summary>
/// <param name="Layer">The module path (the named scope of the ops).</param>
/// <param name="Depth">Forward order: 0 for the first layer seen in the step.</param>
/// <param name="InputGradNorm">L2 norm of the gradient reaching the layer's input(s).</param>
/// <param name="NonFinite">Count of NaN/Inf values in that gradient.</param>
public sealed record FlowStats(string Layer, int Depth, double InputGradNorm, long NonFinite);

/// <summary>The gradient through time inside one direction of a recurrent layer.</summary>
/// <param name="Layer">The module path of the recurrent module (the named scope of its ops).</param>
/// <param name="Depth">Forward order of that module.</param>
/// <param name="RecurrentLayer">The stacked layer inside the module (0 for the first, as in weight_hh_l0).</param>
/// <param name="Reverse">True for the reverse direction of a bidirectional layer (weight_hh_l0_reverse).</param>
/// <param name="GradNorms">
/// Per time step t (in time order, whatever the direction): the L2 norm over batch and features of dL/dh_t, the total
/// gradient reaching the hidden state of step t from the output at t and from step t+1.
/// </param>
public sealed record RecurrentStepStats(string Layer, int Depth, int RecurrentLayer, bool Reverse, IReadOnlyList<double> GradNorms)
{
    /// <summary>The parameter suffix PyTorch gives this layer direction ("l0", "l1_reverse").</summary>
    public string Suffix => $"l{RecurrentLayer}{(Reverse ? "_reverse" : "")}";
}

/// <summary>Health of one activation function's outputs in a layer.</summary>
/// <param name="Layer">The module path of the activation.</param>
/// <param name="Op">The activation op (<see cref="OpNames.Relu"/>, <see cref="OpNames.Sigmoid"/>, <see cref="OpNames.Tanh"/>).</param>
/// <param name="Depth">Forward order of the layer.</param>
/// <param name="Units">Units (features or channels) measured.</param>
/// <param name="DeadFraction">ReLU family: fraction of units whose output was zero (or below) for every sample of the step.</param>
/// <param name="DeadWindowFraction">ReLU family: fraction of units dead in every measured step of the sliding window (<see cref="MonitorOptions.DeadWindow"/>, sampled on the steps with details).</param>
/// <param name="SaturatedFraction">Sigmoid/tanh: fraction of outputs within epsilon of a bound, where the derivative nearly vanishes.</param>
/// <param name="Mean">Mean of the outputs.</param>
/// <param name="Std">Standard deviation of the outputs.</param>
public sealed record ActivationStats(string Layer, string Op, int Depth, int Units, double? DeadFraction, double? DeadWindowFraction,
    double? SaturatedFraction, double Mean, double Std);

/// <summary>Everything the monitor measured in one training step.</summary>
public sealed partial record StepRecord
{
    /// <summary>The step number: 1 for the first step of training; a resumed run's continue from <see cref="MonitorOptions.StartStep"/> + 1.</summary>
    public required long Step { get; init; }
    /// <summary>The loss, if given.</summary>
    public double? Loss { get; init; }
    /// <summary>The learning rate of the first parameter group, if known.</summary>
    public double? LearningRate { get; init; }
    /// <summary>L2 norm of all gradients together before clipping.</summary>
    public required double GlobalGradNorm { get; init; }
    /// <summary>L2 norm after clipping, when a clipper reported one.</summary>
    public double? ClippedGradNorm { get; init; }
    /// <summary>
    /// Parameters whose gradient, as the optimiser used it, was added to one an earlier step had already used and nothing
    /// cleared (ZeroGrad forgotten): the engine sees it when it accumulates. 0 on a correct loop.
    /// </summary>
    public int GradientsCarriedOver { get; init; }
    /// <summary>Per-parameter statistics.</summary>
    public required IReadOnlyList<ParameterStats> Parameters { get; init; }
    /// <summary>Per-layer statistics, in depth order.</summary>
    public required IReadOnlyList<LayerGradientStats> Layers { get; init; }
    /// <summary>The backward flow, in depth order.</summary>
    public required IReadOnlyList<FlowStats> Flow { get; init; }
    /// <summary>Activation health, in depth order.</summary>
    public required IReadOnlyList<ActivationStats> Activations { get; init; }
    /// <summary>||dL/dh_t|| per time step inside each recurrent layer direction, in depth order (empty without recurrent layers).</summary>
    public IReadOnlyList<RecurrentStepStats> RecurrentSteps { get; init; } = [];
    /// <summary>Sharpness against the optimiser's stability threshold, on steps a <see cref="SharpnessProbe"/> ran (<see cref="GradientMonitor.AddSharpnessProbe"/>); else null.</summary>
    public SharpnessProbeResult? Curvature { get; init; }
    /// <summary>The parameters' shapes and the optimiser's hyper-parameters: on the first recorded step and when the optimiser's settings changed (besides the learning rate); else null.</summary>
    public RunSetup? Setup { get; init; }
    /// <summary>In data-parallel training, every rank's gradients before the allreduce and the global ones after (<see cref="GradientMonitor.ObserveRanks"/>); else null.</summary>
    public DistributedGradientStats? Distributed { get; init; }
}
