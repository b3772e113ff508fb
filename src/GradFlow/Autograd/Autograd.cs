namespace GradFlow;

/// <summary>
/// The autograd front door (torch.autograd): grad mode, the functional Grad, named
/// scopes and observers. Ops call <see cref="Record(string, Tensor, Node?, Tensor)"/> to put
/// themselves in the graph.
/// </summary>
public static class Autograd
{
    [ThreadStatic] internal static string? t_scope;

    // Grad mode and the backward depth live in the tensor layer's AllocationContext, which the allocator
    // reads; the engine's ++/-- around a node's backward go straight to it.
    internal static ref int t_backwardDepth => ref AllocationContext.t_backwardDepth;

    /// <summary>Whether ops record the graph on this thread (true unless inside <see cref="NoGrad"/>).</summary>
    public static bool IsGradEnabled
    {
        get => !AllocationContext.t_gradDisabled;
        set => AllocationContext.t_gradDisabled = !value;
    }

    /// <summary>A scope in which no op records a graph: <c>using (Autograd.NoGrad()) { ... }</c>.</summary>
    public static GradModeScope NoGrad() => new(false);

    /// <summary>A scope in which ops record again, inside an outer NoGrad.</summary>
    public static GradModeScope EnableGrad() => new(true);

    /// <summary>Names the ops created inside (a module path); nodes keep it in <see cref="Node.Scope"/>.</summary>
    public static NamedScope Scope(string? name) => new(name);

    /// <summary>True while the engine runs a node's backward on this thread (ops then compute gradients, not the model).</summary>
    public static bool IsInBackward => AllocationContext.t_backwardDepth > 0;

    /// <summary>The named scope in force on this thread.</summary>
    public static string? CurrentScope => t_scope;

    /// <summary>
    /// Adds an observer of every op and gradient on the calling thread (as PyTorch's anomaly mode is
    /// thread-local), or on every thread with <paramref name="allThreads"/>; dispose the result to remove it.
    /// Thread-local observers keep a monitor's figures to its own training loop when other threads
    /// (another model, a test running in parallel) use autograd at the same time.
    /// </summary>
    public static IDisposable AddObserver(IAutogradObserver observer, bool allThreads = false)
    {
        Guard.NotNull(observer, nameof(AddObserver), nameof(observer));
        return Instrumentation.AddObserver(observer, allThreads);
    }

    /// <summary>
    /// The gradients of <paramref name="outputs"/> with respect to <paramref name="inputs"/>, without touching
    /// any <see cref="Tensor.Grad"/> (torch.autograd.grad). With <paramref name="createGraph"/> the backward pass
    /// is itself recorded, so the results can be differentiated again (Hessian-vector products).
    /// </summary>
    /// <param name="outputs">Tensors to differentiate.</param>
    /// <param name="inputs">Tensors to differentiate with respect to; each must require grad.</param>
    /// <param name="gradOutputs">The vector in the vector-Jacobian product, per output; null entries (or a null array) mean ones for scalar outputs.</param>
    /// <param name="createGraph">Record the backward pass for higher-order derivatives.</param>
    /// <param name="retainGraph">Keep the graph for another backward (defaults to <paramref name="createGraph"/>).</param>
    /// <param name="allowUnused">Return null for an input the outputs do not depend on, instead of throwing.</param>
    public static Tensor?[] Grad(Tensor[] outputs, Tensor[] inputs, Tensor?[]? gradOutputs = null,
        bool createGraph = false, bool? retainGraph = null, bool allowUnused = false)
    {
        Guard.NotNull(outputs, nameof(Grad), nameof(outputs));
        Guard.NotNull(inputs, nameof(Grad), nameof(inputs));
        if (gradOutputs is not null && gradOutputs.Length != outputs.Length)
            Guard.ThrowArg(nameof(Grad), nameof(gradOutputs), $"got {gradOutputs.Length} gradients for {outputs.Length} outputs.");
        for (int i = 0; i < inputs.Length; i++)
            if (!inputs[i].RequiresGrad)
                Guard.ThrowArg(nameof(Grad), nameof(inputs), $"input {i} (shape {Guard.Shape(inputs[i])}) does not require grad.");
        var results = Engine.Run(outputs, gradOutputs, retainGraph ?? createGraph, createGraph, inputs);
        if (!allowUnused)
            for (int i = 0; i < results.Length; i++)
                if (results[i] is null)
                    Guard.ThrowInvalid(nameof(Grad), $"input {i} (shape {Guard.Shape(inputs[i])}) was not used in the graph of the outputs; pass allowUnused: true to get null for it.");
        return results;
    }

    /// <summary>Grad for one scalar output and one input.</summary>
    public static Tensor Grad(Tensor output, Tensor input, bool createGraph = false) =>
        Grad([output], [input], null, createGraph)[0]!;

    internal static bool NeedsGrad(Tensor a) => !AllocationContext.t_gradDisabled && a.RequiresGrad;

    internal static bool NeedsGrad(Tensor a, Tensor b) => !AllocationContext.t_gradDisabled && (a.RequiresGrad || b.RequiresGrad);

    internal static bool NeedsGrad(ReadOnlySpan<Tensor> inputs)
    {
        if (AllocationContext.t_gradDisabled) return false;
        foreach (var t in inputs) if (t.RequiresGrad) return true;
        return false;
    }

    /// <summary>Links a one-input op's output into the graph (when <paramref name="node"/> is not null) and tells observers.</summary>
    internal static Tensor Record(string op, Tensor output, Node? node, Tensor input)
    {
        if (node is not null)
        {
            node.Next = [input.GradientEdge()];
            Attach(node, output, 0);
        }
        if (Instrumentation.Listening) Instrumentation.Forward(op, [input], output, node);
        return output;
    }

    internal static Tensor Record(string op, Tensor output, Node? node, Tensor a, Tensor b)
    {
        if (node is not null)
        {
            node.Next = [a.GradientEdge(), b.GradientEdge()];
            Attach(node, output, 0);
        }
        if (Instrumentation.Listening) Instrumentation.Forward(op, [a, b], output, node);
        return output;
    }

    internal static Tensor Record(string op, Tensor output, Node? node, ReadOnlySpan<Tensor> inputs)
    {
        if (node is not null)
        {
            LinkInputs(node, inputs);
            Attach(node, output, 0);
        }
        if (Instrumentation.Listening) Instrumentation.Forward(op, inputs, output, node);
        return output;
    }

    /// <summary>Links a multi-output op; output i becomes output number i of the node.</summary>
    internal static Tensor[] Record(string op, Tensor[] outputs, Node? node, ReadOnlySpan<Tensor> inputs)
    {
        if (node is not null)
        {
            LinkInputs(node, inputs);
            for (int i = 0; i < outputs.Length; i++) Attach(node, outputs[i], i);
        }
        if (Instrumentation.Listening)
            foreach (var o in outputs) Instrumentation.Forward(op, inputs, o, node);
        return outputs;
    }

    private static void LinkInputs(Node node, ReadOnlySpan<Tensor> inputs)
    {
        var edges = new Edge[inputs.Length];
        for (int i = 0; i < inputs.Length; i++) edges[i] = inputs[i].GradientEdge();
        node.Next = edges;
    }

    private static void Attach(Node node, Tensor output, int outputNr)
    {
        node.Scope = t_scope;
        output.SetGradFn(node, outputNr);
    }

    private sealed class Removal(Action remove) : IDisposable
    {
        private Action? _remove = remove;

        public void Dispose()
        {
            _remove?.Invoke();
            _remove = null;
        }
    }

    internal static IDisposable Handle(Action remove) => new Removal(remove);
}
