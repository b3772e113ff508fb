namespace GradFlow.NN;

/// <summary>Sees (and may replace) a module's inputs before its forward; return null to keep them.</summary>
public delegate Tensor[]? ForwardPreHook(Module module, Tensor[] inputs);

/// <summary>Sees a module's inputs and outputs after its forward; return replacement outputs, or null to keep them.</summary>
public delegate Tensor[]? ForwardHook(Module module, Tensor[] inputs, Tensor[] outputs);

/// <summary>
/// Sees the gradients with respect to a module's inputs and outputs during backward (null where none
/// flows, e.g. for data inputs); return replacement input gradients, or null to keep them.
/// </summary>
public delegate Tensor?[]? BackwardHook(Module module, Tensor?[] gradInputs, Tensor?[] gradOutputs);

// Calling a module: hooks, the named autograd scope, and the identity nodes of full backward hooks.
public abstract partial class Module
{
    private List<ForwardPreHook>? _preHooks;
    private List<ForwardHook>? _forwardHooks;
    private List<BackwardHook>? _backwardHooks;

    /// <summary>
    /// The computation for one input tensor. Override it in a layer; call the module through
    /// <see cref="Call(Tensor)"/> so hooks and the autograd scope apply. Modules that take several
    /// inputs (and containers with no forward of their own) leave it unimplemented.
    /// </summary>
    public virtual Tensor Forward(Tensor input) =>
        throw new NotSupportedException($"{TypeName} has no single-input Forward; use the Call overload that takes all its inputs.");

    /// <summary>Runs the module on one input: pre-hooks, <see cref="Forward(Tensor)"/> in the module's scope, hooks.</summary>
    public Tensor Call(Tensor input)
    {
        Guard.NotNull(input, TypeName, nameof(input));
        EnsureComponents();
        if (HasNoHooks)
        {
            // No hooks: the pipeline reduces to the scope, without its arrays and closure (per-call overhead of small models).
            using var scope = Autograd.Scope(ScopeName);
            return Forward(input);
        }
        return Invoke([input], xs => [Forward(xs[0])])[0];
    }

    /// <summary>The autograd scope the module's ops record (<see cref="Node.Scope"/>): its path.</summary>
    private protected virtual string ScopeName => Path;

    /// <summary>True when no hook of any kind is registered: a Call overload may then skip <see cref="Invoke"/>.</summary>
    private protected bool HasNoHooks =>
        _preHooks is not { Count: > 0 } && _forwardHooks is not { Count: > 0 } && _backwardHooks is not { Count: > 0 };

    /// <summary>True when no hook of any kind is registered (for containers deciding about their children).</summary>
    internal bool HookFree => HasNoHooks;

    /// <summary>
    /// The call pipeline every Call overload uses: forward pre-hooks (may replace inputs), backward-hook
    /// identity nodes on the inputs, <paramref name="forward"/> inside <c>Autograd.Scope(ScopeName)</c>, forward
    /// hooks (may replace outputs), backward-hook identity nodes on the outputs.
    /// </summary>
    protected Tensor[] Invoke(Tensor[] inputs, Func<Tensor[], Tensor[]> forward)
    {
        Guard.NotNull(forward, nameof(Invoke), nameof(forward));
        EnsureComponents();
        using var scope = Autograd.Scope(ScopeName);
        if (_preHooks is not null)
            foreach (var hook in _preHooks.ToArray()) inputs = hook(this, inputs) ?? inputs;
        BackwardHookState? state = null;
        if (_backwardHooks is { Count: > 0 } && Autograd.IsGradEnabled)
        {
            state = new BackwardHookState(this, _backwardHooks.ToArray());
            inputs = state.WrapInputs(inputs);
        }
        var outputs = forward(inputs);
        if (_forwardHooks is not null)
            foreach (var hook in _forwardHooks.ToArray()) outputs = hook(this, inputs, outputs) ?? outputs;
        return state is null ? outputs : state.WrapOutputs(outputs);
    }

    /// <summary>Adds a hook run before every forward; dispose the result to remove it.</summary>
    public IDisposable RegisterForwardPreHook(ForwardPreHook hook) => AddHook(ref _preHooks, hook, nameof(RegisterForwardPreHook));

    /// <summary>Adds a hook run after every forward; dispose the result to remove it.</summary>
    public IDisposable RegisterForwardHook(ForwardHook hook) => AddHook(ref _forwardHooks, hook, nameof(RegisterForwardHook));

    /// <summary>
    /// Adds a hook that sees the gradients with respect to the module's inputs and outputs (PyTorch's
    /// register_full_backward_hook). It runs once the input gradients are known, or, when no input needs a
    /// gradient, as soon as the output gradients are. Dispose the result to remove it.
    /// </summary>
    public IDisposable RegisterFullBackwardHook(BackwardHook hook) => AddHook(ref _backwardHooks, hook, nameof(RegisterFullBackwardHook));

    private static IDisposable AddHook<T>(ref List<T>? list, T hook, string op)
    {
        Guard.NotNull(hook, op, nameof(hook));
        var l = list ??= [];
        l.Add(hook);
        return Autograd.Handle(() => l.Remove(hook));
    }

    /// <summary>Checks the input's rank (and, where given, sizes) naming the layer, the expected and the received shapes.</summary>
    protected void CheckInput(Tensor input, string expected, bool ok)
    {
        Guard.NotNull(input, TypeName, nameof(input));
        if (!ok)
            Guard.ThrowArg($"{TypeName}{(Path.Length > 0 ? $" '{Path}'" : "")}", nameof(input), $"expected input of shape {expected}, got {Guard.Shape(input)}.");
    }
}

/// <summary>
/// The per-call state of full backward hooks: an identity node over the module's inputs and one over its
/// outputs. Backward reaches the output node first (storing the output gradients) and the input node
/// last, where the hooks see both and may replace the input gradients.
/// </summary>
internal sealed class BackwardHookState(Module module, BackwardHook[] hooks)
{
    private int[] _inputIndex = [];
    private int _inputCount;
    private Tensor?[]? _gradOutputs;

    public Tensor[] WrapInputs(Tensor[] inputs)
    {
        _inputCount = inputs.Length;
        _inputIndex = Enumerable.Range(0, inputs.Length).Where(i => inputs[i].RequiresGrad).ToArray();
        if (_inputIndex.Length == 0) return inputs;
        var wrapped = Wrap(inputs, _inputIndex, new HookNode(this, _inputIndex.Length, isInput: true));
        return wrapped;
    }

    public Tensor[] WrapOutputs(Tensor[] outputs)
    {
        var index = Enumerable.Range(0, outputs.Length).Where(i => outputs[i].RequiresGrad).ToArray();
        if (index.Length == 0) return outputs;
        _gradOutputs = new Tensor?[outputs.Length];
        return Wrap(outputs, index, new HookNode(this, index.Length, isInput: false, index));
    }

    private static Tensor[] Wrap(Tensor[] tensors, int[] index, HookNode node)
    {
        var selected = index.Select(i => tensors[i]).ToArray();
        var views = Autograd.Record(OpNames.BackwardHook, selected.Select(t => t.Detach()).ToArray(), node, selected);
        var result = (Tensor[])tensors.Clone();
        for (int k = 0; k < index.Length; k++) result[index[k]] = views[k];
        return result;
    }

    private Tensor?[] OnOutputs(Tensor?[] grads, int[] index)
    {
        for (int k = 0; k < index.Length; k++) _gradOutputs![index[k]] = grads[k];
        if (_inputIndex.Length == 0) RunHooks(new Tensor?[_inputCount]);
        return grads;
    }

    private Tensor?[] OnInputs(Tensor?[] grads)
    {
        var gradInputs = new Tensor?[_inputCount];
        for (int k = 0; k < _inputIndex.Length; k++) gradInputs[_inputIndex[k]] = grads[k];
        gradInputs = RunHooks(gradInputs);
        var result = new Tensor?[_inputIndex.Length];
        for (int k = 0; k < _inputIndex.Length; k++) result[k] = gradInputs[_inputIndex[k]];
        return result;
    }

    private Tensor?[] RunHooks(Tensor?[] gradInputs)
    {
        var gradOutputs = _gradOutputs ?? [];
        foreach (var hook in hooks)
        {
            var replaced = hook(module, gradInputs, gradOutputs);
            if (replaced is null) continue;
            if (replaced.Length != gradInputs.Length)
                Guard.ThrowInvalid($"{module.TypeName} backward hook", $"returned {replaced.Length} gradients for {gradInputs.Length} inputs.");
            gradInputs = replaced;
        }
        return gradInputs;
    }

    private sealed class HookNode(BackwardHookState state, int count, bool isInput, int[]? outputIndex = null) : Node(count)
    {
        public override string Name => "BackwardHookFunctionBackward";

        protected internal override Tensor?[] Backward(Tensor?[] gradOutputs) =>
            isInput ? state.OnInputs(gradOutputs) : state.OnOutputs(gradOutputs, outputIndex!);
    }
}
