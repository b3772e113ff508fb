namespace GradFlow;

public sealed partial class Tensor
{
    private bool _requiresGrad;
    private AccumulateGrad? _accumulator;
    private Tensor? _grad;

    /// <summary>The node that produced this tensor, or null for a leaf.</summary>
    public Node? GradFn { get; private set; }

    /// <summary>Which output of <see cref="GradFn"/> this tensor is.</summary>
    public int OutputNr { get; private set; }

    /// <inheritdoc />
    public override string ToString() =>
        TensorFormatter.Format(this, GradFn is not null ? $"gradFn=<{GradFn.Name}>" : RequiresGrad ? "requiresGrad=True" : null);

    /// <summary>True for tensors not produced by a recorded op: user-created data and parameters.</summary>
    public bool IsLeaf => GradFn is null;

    /// <summary>True if gradients flow to or through this tensor. Settable on leaves only.</summary>
    public bool RequiresGrad
    {
        get => _requiresGrad || GradFn is not null;
        set
        {
            if (GradFn is not null)
                Guard.ThrowInvalid(nameof(RequiresGrad), $"can only change RequiresGrad on leaf tensors; this one was produced by {GradFn.Name}. Use Detach() for a leaf copy.");
            if (value && !DType.IsFloatingPoint())
                Guard.ThrowInvalid(nameof(RequiresGrad), $"only floating-point tensors can require gradients, this one is {DType.Name()} of shape {Guard.Shape(this)}.");
            _requiresGrad = value;
        }
    }

    /// <summary>Sets <see cref="RequiresGrad"/> and returns this tensor (torch's requires_grad_()).</summary>
    public Tensor RequireGrad(bool requiresGrad = true)
    {
        RequiresGrad = requiresGrad;
        return this;
    }

    /// <summary>The accumulated gradient of a leaf (or of a non-leaf after <see cref="RetainGrad"/>); null until the first backward.</summary>
    public Tensor? Grad
    {
        get => _grad;
        set
        {
            if (value is not null && (!Shapes.Equal(value.Shape, Shape) || value.DType != DType))
                Guard.ThrowArg(nameof(Grad), nameof(value), $"gradient {value.DType.Name()} {Guard.Shape(value)} does not match tensor {DType.Name()} {Guard.Shape(this)}.");
            _grad = value;
        }
    }

    /// <summary>True once <see cref="RetainGrad"/> was called on this non-leaf.</summary>
    public bool RetainsGrad { get; private set; }

    internal void SetGradFn(Node node, int outputNr)
    {
        GradFn = node;
        OutputNr = outputNr;
    }

    internal AccumulateGrad GradAccumulator() => _accumulator ??= new AccumulateGrad(this);

    /// <summary>An optimiser step used this leaf's gradient (see <see cref="AccumulateGrad.CarriedOver"/>).</summary>
    internal void MarkGradConsumed()
    {
        if (_grad is not null) _accumulator?.MarkConsumed(_grad);
    }

    /// <summary>This leaf's gradient was cleared: nothing it holds later is carried over from a step.</summary>
    internal void ClearGradConsumed() => _accumulator?.ClearConsumed();

    /// <summary>True when this leaf's gradient includes one an optimiser step already used (ZeroGrad forgotten).</summary>
    internal bool GradCarriedOver => _accumulator?.CarriedOver ?? false;

    /// <summary>Where this tensor's gradient goes: its node, its leaf accumulator, or nowhere.</summary>
    internal Edge GradientEdge()
    {
        if (GradFn is not null) return new Edge(GradFn, OutputNr);
        return _requiresGrad ? new Edge(GradAccumulator(), 0) : default;
    }

    /// <summary>
    /// Computes the gradient of this tensor with respect to every leaf that requires grad, and adds
    /// it into their <see cref="Grad"/>. A non-scalar tensor needs an explicit <paramref name="gradient"/>
    /// (the vector of the vector-Jacobian product).
    /// </summary>
    public void Backward(Tensor? gradient = null, bool retainGraph = false, bool createGraph = false)
    {
        if (!RequiresGrad)
            Guard.ThrowInvalid(nameof(Backward), $"the tensor (shape {Guard.Shape(this)}) does not require grad and has no GradFn.");
        Engine.Run([this], [gradient], retainGraph || createGraph, createGraph, null);
    }

    /// <summary>A tensor sharing this one's data but cut from the graph.</summary>
    public Tensor Detach() => new(Storage, ShapeArray, StridesArray, Offset);

    /// <summary>Keeps the gradient of this non-leaf in <see cref="Grad"/> during backward.</summary>
    public void RetainGrad()
    {
        if (GradFn is null)
        {
            if (!_requiresGrad)
                Guard.ThrowInvalid(nameof(RetainGrad), $"cannot retain the gradient of a tensor (shape {Guard.Shape(this)}) that does not require grad.");
            return; // leaves keep their gradient anyway
        }
        if (RetainsGrad) return;
        RetainsGrad = true;
        GradFn.RetainGradTensors ??= new Tensor?[GradFn.NumOutputs];
        GradFn.RetainGradTensors[OutputNr] = this;
    }

    /// <summary>
    /// Registers a hook that sees this tensor's gradient during backward and may return a replacement
    /// (or null to keep it). Dispose the result to remove the hook.
    /// </summary>
    public IDisposable RegisterHook(Func<Tensor, Tensor?> hook)
    {
        Guard.NotNull(hook, nameof(RegisterHook), nameof(hook));
        if (!RequiresGrad)
            Guard.ThrowInvalid(nameof(RegisterHook), $"cannot register a hook on a tensor (shape {Guard.Shape(this)}) that does not require grad.");
        List<Func<Tensor, Tensor?>> list;
        if (GradFn is null)
        {
            var acc = GradAccumulator();
            list = acc.Hooks ??= [];
        }
        else
        {
            GradFn.PreHooks ??= new List<Func<Tensor, Tensor?>>?[GradFn.NumOutputs];
            list = GradFn.PreHooks[OutputNr] ??= [];
        }
        list.Add(hook);
        return Autograd.Handle(() => list.Remove(hook));
    }
}
