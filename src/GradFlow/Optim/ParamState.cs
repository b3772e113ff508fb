namespace GradFlow.Optim;

/// <summary>
/// An optimiser's memory of one parameter (an entry of PyTorch's <c>optimizer.state</c>): its step count,
/// buffers shaped like the parameter ("exp_avg", "momentum_buffer", ...) and scalars ("mu_product").
/// </summary>
public sealed class ParamState
{
    /// <summary>How many updates this parameter has received.</summary>
    public long Step { get; set; }

    /// <summary>Per-element state tensors by PyTorch name, each with the parameter's shape and dtype.</summary>
    public Dictionary<string, Tensor> Buffers { get; } = [];

    /// <summary>Per-parameter scalar state by PyTorch name.</summary>
    public Dictionary<string, double> Scalars { get; } = [];

    /// <summary>The buffer of that name, or a clear error naming the ones present.</summary>
    public Tensor Buffer(string name) => Buffers.TryGetValue(name, out var t) ? t
        : throw new KeyNotFoundException($"ParamState: no buffer '{name}' (has: {string.Join(", ", Buffers.Keys)}).");

    internal ParamState DeepCopy()
    {
        var copy = new ParamState { Step = Step };
        foreach (var (k, v) in Buffers) copy.Buffers[k] = v.Detach().Clone();
        foreach (var (k, v) in Scalars) copy.Scalars[k] = v;
        return copy;
    }
}
