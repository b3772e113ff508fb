namespace GradFlow;

/// <summary>Where a gradient flows next: input number <see cref="InputNr"/> of <see cref="Function"/>.</summary>
public readonly record struct Edge(Node? Function, int InputNr);

/// <summary>
/// One recorded op in the autograd graph (PyTorch's grad_fn). An op's forward creates its node,
/// saves what its backward needs, and points at the nodes of its inputs; <see cref="Backward"/>
/// maps the gradients of the op's outputs to the gradients of its inputs.
/// </summary>
public abstract class Node
{
    [ThreadStatic] private static long t_sequence;

    private Tensor[]? _saved;
    private int[]? _savedVersions;

    /// <summary>Creates a node with the given number of outputs.</summary>
    protected Node(int numOutputs = 1)
    {
        NumOutputs = numOutputs;
        SequenceNr = ++t_sequence;
    }

    /// <summary>The node's name, as in PyTorch ("MulBackward", "AccumulateGrad").</summary>
    public virtual string Name => GetType().Name;

    /// <summary>How many outputs the op has (and so how many gradients Backward receives).</summary>
    public int NumOutputs { get; }

    /// <summary>Creation order; later nodes run earlier in backward.</summary>
    public long SequenceNr { get; }

    /// <summary>The nodes the input gradients flow to, one per op input (Function is null for inputs that need no gradient).</summary>
    public IReadOnlyList<Edge> NextEdges => Next;

    /// <summary>The named scope (a module path such as "encoder.layers.0.linear1") active when the op ran.</summary>
    public string? Scope { get; internal set; }

    /// <summary>
    /// Whether the node's backward is itself differentiable, so that gradients computed with createGraph can be
    /// differentiated again (Hessian-vector products). A node whose backward runs a kernel outside the graph
    /// says false (as PyTorch's once_differentiable), and curvature tools refuse the graph naming it.
    /// </summary>
    public virtual bool IsTwiceDifferentiable => true;

    /// <summary>Free-form data an observer attached at creation (the anomaly mode's creation site, for one).</summary>
    public object? ObserverTag { get; set; }

    internal Edge[] Next = [];
    internal List<Func<Tensor, Tensor?>>?[]? PreHooks;
    internal Tensor?[]? RetainGradTensors;
    internal bool Released;

    /// <summary>The gradients with respect to the op's inputs, given those with respect to its outputs (null where unused).</summary>
    protected internal abstract Tensor?[] Backward(Tensor?[] gradOutputs);

    /// <summary>Saves tensors for backward, remembering their versions to catch later in-place writes.</summary>
    protected void Save(params Tensor[] tensors)
    {
        _saved = tensors;
        _savedVersions = new int[tensors.Length];
        for (int i = 0; i < tensors.Length; i++) _savedVersions[i] = tensors[i].Version;
    }

    /// <summary>A tensor saved by <see cref="Save"/>, checked against use after free and in-place change.</summary>
    protected Tensor Saved(int index)
    {
        if (Released || _saved is null)
            throw new InvalidOperationException(
                $"{Name}: trying to backward through the graph a second time (or to read saved tensors after they were freed). " +
                "Pass retainGraph: true to the first Backward if you need to backward twice.");
        var t = _saved[index];
        if (t.Version != _savedVersions![index])
            throw new InvalidOperationException(
                $"{Name}: one of the tensors needed for gradient computation (saved tensor {index}, shape {Guard.Shape(t)}) " +
                $"has been modified by an in-place operation: it is at version {t.Version}, expected version {_savedVersions[index]}.");
        return t;
    }

    /// <summary>How many tensors <see cref="Save"/> stored (0 once released).</summary>
    protected int SavedCount => _saved?.Length ?? 0;

    /// <summary>True if this node saved tensors (and so cannot run again once released).</summary>
    internal bool HasSavedTensors => _saved is not null;

    internal void Release()
    {
        Released = true;
        _saved = null;
    }

    /// <inheritdoc />
    public override string ToString() => Name;
}

/// <summary>The sink of a leaf tensor's gradient: it adds what arrives into <see cref="Tensor.Grad"/>.</summary>
public sealed class AccumulateGrad : Node
{
    internal List<Func<Tensor, Tensor?>>? Hooks;
    private Tensor? _ownedGrad; // a gradient this node allocated, so it may add into it in place
    private Tensor? _consumed;  // the gradient an optimiser step last used, and its version then
    private int _consumedVersion;

    /// <summary>
    /// True when the gradient now in <see cref="Tensor.Grad"/> was added to one an optimiser step had already used,
    /// unchanged since (ZeroGrad forgotten): a fact the engine sees, where the gradient norm's growth only hints at it.
    /// </summary>
    internal bool CarriedOver { get; private set; }

    /// <summary>An optimiser step used <paramref name="grad"/>: adding to it unchanged later carries it over.</summary>
    internal void MarkConsumed(Tensor grad) => (_consumed, _consumedVersion) = (grad, grad.Version);

    /// <summary>The gradient was cleared (ZeroGrad): nothing is carried over.</summary>
    internal void ClearConsumed() => (_consumed, CarriedOver) = (null, false);

    internal AccumulateGrad(Tensor variable) => Variable = variable;

    /// <summary>The leaf tensor whose gradient this node accumulates.</summary>
    public Tensor Variable { get; }

    /// <inheritdoc />
    protected internal override Tensor?[] Backward(Tensor?[] gradOutputs)
    {
        var g = gradOutputs[0];
        if (g is null) return [];
        if (Hooks is not null)
            foreach (var hook in Hooks) g = hook(g) ?? g;
        if (!Shapes.Equal(g.Shape, Variable.Shape))
            Guard.ThrowInvalid(Name, $"gradient of shape {Guard.Shape(g)} arrived for a leaf of shape {Guard.Shape(Variable)}.");
        // A gradient stored as is (createGraph) or set by the user may alias another tensor (an expanded view,
        // the caller's gradient): it is replaced, never written in place.
        var old = Variable.Grad;
        // Adding to the very gradient a step used, untouched since (a zeroing in place bumps its version), carries it over.
        if (old is null) ClearConsumed();
        else if (ReferenceEquals(old, _consumed) && old.Version == _consumedVersion) CarriedOver = true;
        using var _ = TensorArena.Suspend(); // a leaf's gradient outlives the step
        if (old is not null && !Autograd.IsGradEnabled && !old.RequiresGrad && ReferenceEquals(old, _ownedGrad))
            old.AddInPlace(g);
        else if (Autograd.IsGradEnabled)
            Variable.Grad = old is null ? TensorArena.Keep(g) : old + g;
        else
            Variable.Grad = _ownedGrad = old is null ? Adopt(g) : old + g;
        return [];
    }

    // As PyTorch's AccumulateGrad steals an incoming gradient nobody else references, a gradient that a
    // node's backward just allocated, that no hook or caller has seen and that no other leaf adopted,
    // becomes the leaf's Grad as is (kept beyond the arena step) instead of being copied.
    private Tensor Adopt(Tensor g)
    {
        var s = g.Storage;
        if (s.FromBackward && !s.Exposed && Hooks is null && g.Offset == 0 && g.NumEl == s.Length && g.IsContiguous && !g.RequiresGrad)
        {
            s.Exposed = true;
            s.Kept = true;
            s.AdoptedGrad = true;
            return g.IsLeaf ? g : g.Detach();
        }
        return g.Detach().Clone();
    }
}
