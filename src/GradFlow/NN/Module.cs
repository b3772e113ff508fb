using System.Text;

namespace GradFlow.NN;

/// <summary>
/// The base of every layer and model (torch.nn.Module). A module owns named parameters (leaf tensors
/// with <see cref="Tensor.RequiresGrad"/>), buffers (state that is saved but not trained, such as
/// BatchNorm's running statistics) and child modules. Names follow PyTorch's state_dict keys
/// ("0.weight", "encoder.layers.0.linear1.bias"), so weights move between the two without a mapping.
/// </summary>
/// <remarks>
/// <para>Calling a module: override <see cref="Forward(Tensor)"/> and call <see cref="Call(Tensor)"/>.
/// <c>Call</c> runs the forward pre-hooks, then <c>Forward</c> inside <see cref="Autograd.Scope"/> named
/// by the module's <see cref="Path"/> (so every recorded <see cref="Node.Scope"/> names its module), then
/// the forward hooks, and inserts the identity nodes that full backward hooks need. Modules with several
/// inputs or outputs (attention, recurrent layers) add typed <c>Call</c> overloads that go through the
/// same pipeline (<see cref="Invoke"/>).</para>
/// <para>Registration order is PyTorch's: a module's own parameters, then its buffers, then each child.</para>
/// </remarks>
public abstract partial class Module
{
    private readonly List<(string Name, Tensor Value)> _parameters = [];
    private readonly List<(string Name, Tensor Value, bool Persistent)> _buffers = [];
    private readonly List<(string Name, Module Value)> _children = [];
    private Module? _parent;
    private string _nameInParent = "";

    /// <summary>The PyTorch class name shown by <see cref="ToString"/> (the C# type name by default).</summary>
    public virtual string TypeName => GetType().Name;

    /// <summary>True in training mode (the default); Dropout and BatchNorm behave differently in eval mode.</summary>
    public bool Training { get; private set; } = true;

    /// <summary>
    /// The module's dotted path from the top-level module that owns it ("" for the top level,
    /// "encoder.layers.0.linear1" deeper down), as in <see cref="NamedModules"/>.
    /// </summary>
    public string Path
    {
        get
        {
            // Cached: Call enters this scope on every forward. A path changes only when an ancestor gains a parent.
            int version = Volatile.Read(ref s_treeVersion);
            if (_path is null || _pathVersion != version)
            {
                _path = _parent is null ? "" : Join(_parent.Path, _nameInParent);
                _pathVersion = version;
            }
            return _path;
        }
    }

    private static int s_treeVersion;
    private string? _path;
    private int _pathVersion;

    private static string Join(string prefix, string name) => prefix.Length == 0 ? name : prefix + "." + name;

    /// <summary>Registers a parameter: <paramref name="value"/> becomes a leaf that requires grad. Returns it.</summary>
    public Tensor RegisterParameter(string name, Tensor value)
    {
        CheckName(name, nameof(RegisterParameter));
        Guard.NotNull(value, nameof(RegisterParameter), nameof(value));
        if (!value.IsLeaf)
            Guard.ThrowArg(nameof(RegisterParameter), nameof(value), $"parameter '{name}' must be a leaf tensor (use Detach()), got one produced by {value.GradFn!.Name}.");
        value.RequiresGrad = true;
        _parameters.Add((name, value));
        return value;
    }

    /// <summary>Registers a buffer (saved in the state dict when <paramref name="persistent"/>, never trained). Returns it.</summary>
    public Tensor RegisterBuffer(string name, Tensor value, bool persistent = true)
    {
        CheckName(name, nameof(RegisterBuffer));
        Guard.NotNull(value, nameof(RegisterBuffer), nameof(value));
        _buffers.Add((name, value, persistent));
        return value;
    }

    /// <summary>Registers a child module under <paramref name="name"/>; its <see cref="Path"/> becomes this path + "." + name. Returns it.</summary>
    public T RegisterModule<T>(string name, T module) where T : Module
    {
        CheckName(name, nameof(RegisterModule));
        Guard.NotNull(module, nameof(RegisterModule), nameof(module));
        if (ReferenceEquals(module, this)) Guard.ThrowArg(nameof(RegisterModule), nameof(module), $"a module cannot be its own child ('{name}').");
        _children.Add((name, module));
        if (module._parent is null)
        {
            module._parent = this;
            module._nameInParent = name;
            Interlocked.Increment(ref s_treeVersion);
        }
        return module;
    }

    private void CheckName(string name, string op)
    {
        Guard.NotNull(name, op, nameof(name));
        if (name.Length == 0 || name.Contains('.'))
            Guard.ThrowArg(op, nameof(name), $"'{name}' is not a valid name: it must be non-empty and contain no '.'.");
        if (_parameters.Exists(p => p.Name == name) || _buffers.Exists(b => b.Name == name) || _children.Exists(c => c.Name == name))
            Guard.ThrowArg(op, nameof(name), $"{TypeName} already has a parameter, buffer or module named '{name}'.");
    }

    /// <summary>The direct children, in registration order.</summary>
    public IEnumerable<Module> Children()
    {
        RegisterComponents();
        return _children.Select(c => c.Value);
    }

    /// <summary>The direct children with their names.</summary>
    public IEnumerable<(string Name, Module Module)> NamedChildren()
    {
        RegisterComponents();
        return _children.Select(c => (c.Name, c.Value));
    }

    /// <summary>This module ("" or <paramref name="prefix"/>) and every descendant, depth first, each once.</summary>
    public IEnumerable<(string Name, Module Module)> NamedModules(string prefix = "")
    {
        var seen = new HashSet<Module>(ReferenceEqualityComparer.Instance);
        return Walk(this, prefix, seen);

        static IEnumerable<(string, Module)> Walk(Module m, string prefix, HashSet<Module> seen)
        {
            if (!seen.Add(m)) yield break;
            m.RegisterComponents();
            yield return (prefix, m);
            foreach (var (name, child) in m._children)
                foreach (var item in Walk(child, Join(prefix, name), seen))
                    yield return item;
        }
    }

    /// <summary>This module and every descendant.</summary>
    public IEnumerable<Module> Modules() => NamedModules().Select(m => m.Module);

    /// <summary>Every parameter with its dotted name ("0.weight"), each tensor once.</summary>
    public IEnumerable<(string Name, Tensor Parameter)> NamedParameters()
    {
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var (prefix, m) in NamedModules())
            foreach (var (name, p) in m._parameters)
                if (seen.Add(p)) yield return (Join(prefix, name), p);
    }

    /// <summary>Every parameter (for an optimiser).</summary>
    public ModuleParameters Parameters() => new(this);

    /// <summary>Every buffer with its dotted name ("bn.running_mean").</summary>
    public IEnumerable<(string Name, Tensor Buffer)> NamedBuffers()
    {
        foreach (var (prefix, m) in NamedModules())
            foreach (var (name, b, _) in m._buffers)
                yield return (Join(prefix, name), b);
    }

    /// <summary>Every buffer.</summary>
    public IEnumerable<Tensor> Buffers() => NamedBuffers().Select(b => b.Buffer);

    /// <summary>The number of trainable elements.</summary>
    public long ParameterCount() => Parameters().Sum(p => (long)p.NumEl);

    /// <summary>Sets training mode on this module and every descendant. Returns this.</summary>
    public Module Train(bool mode = true)
    {
        foreach (var m in Modules()) m.Training = mode;
        return this;
    }

    /// <summary>Sets evaluation mode (Train(false)). Returns this.</summary>
    public Module Eval() => Train(false);

    /// <summary>Calls <paramref name="fn"/> on every descendant, then on this module (torch's apply). Returns this.</summary>
    public Module Apply(Action<Module> fn)
    {
        Guard.NotNull(fn, nameof(Apply), nameof(fn));
        RegisterComponents();
        foreach (var (_, child) in _children) child.Apply(fn);
        fn(this);
        return this;
    }

    /// <summary>
    /// Clears every parameter's gradient: to null (the default, as PyTorch 2) or to zeros in place. A dropped
    /// gradient that a <see cref="TensorArena"/> step allocated returns to that arena (reading it afterwards throws).
    /// </summary>
    public void ZeroGrad(bool setToNone = true)
    {
        foreach (var p in Parameters())
        {
            p.ClearGradConsumed();
            if (p.Grad is null) continue;
            if (setToNone)
            {
                TensorArena.ReclaimGradient(p.Grad);
                p.Grad = null;
            }
            else using (Autograd.NoGrad()) p.Grad = p.Grad.RequiresGrad ? Tensor.ZerosLike(p.Grad) : p.Grad.Zero();
        }
    }

    /// <summary>
    /// The parameters and persistent buffers by dotted name, in PyTorch's order (a module's parameters,
    /// its buffers, then its children's). The tensors share storage with the module but are detached.
    /// </summary>
    public OrderedDictionary<string, Tensor> StateDict()
    {
        var dict = new OrderedDictionary<string, Tensor>();
        foreach (var (prefix, m) in NamedModules())
        {
            foreach (var (name, p) in m._parameters) dict.TryAdd(Join(prefix, name), p.Detach());
            foreach (var (name, b, persistent) in m._buffers)
                if (persistent) dict.TryAdd(Join(prefix, name), b.Detach());
        }
        return dict;
    }

    /// <summary>
    /// Copies values from <paramref name="stateDict"/> into this module's parameters and buffers, in
    /// place and without recording gradients (dtypes are converted). A key whose shape differs is always
    /// an error; with <paramref name="strict"/> missing and unexpected keys are errors too. Every problem
    /// is listed in one exception, before anything is copied.
    /// </summary>
    /// <returns>The missing and unexpected keys (both empty when strict).</returns>
    public LoadStateDictResult LoadStateDict(IEnumerable<KeyValuePair<string, Tensor>> stateDict, bool strict = true)
    {
        Guard.NotNull(stateDict, nameof(LoadStateDict), nameof(stateDict));
        var own = StateDict();
        var given = new Dictionary<string, Tensor>();
        foreach (var (k, v) in stateDict) given[k] = v;
        var missing = own.Keys.Where(k => !given.ContainsKey(k)).ToList();
        var unexpected = given.Keys.Where(k => !own.ContainsKey(k)).ToList();
        var mismatched = own.Where(kv => given.TryGetValue(kv.Key, out var v) && !Shapes.Equal(v.Shape, kv.Value.Shape))
            .Select(kv => $"'{kv.Key}': expected shape {Guard.Shape(kv.Value)}, got {Guard.Shape(given[kv.Key])}").ToList();
        var problems = new StringBuilder();
        if (mismatched.Count > 0) problems.Append($" Shape mismatch: {string.Join("; ", mismatched)}.");
        if (strict && missing.Count > 0) problems.Append($" Missing keys: {string.Join(", ", missing)}.");
        if (strict && unexpected.Count > 0) problems.Append($" Unexpected keys: {string.Join(", ", unexpected)}.");
        if (problems.Length > 0)
            Guard.ThrowArg(nameof(LoadStateDict), nameof(stateDict), $"cannot load the state dict into {TypeName}.{problems}");
        using (Autograd.NoGrad())
        {
            foreach (var (key, target) in own)
                if (given.TryGetValue(key, out var source)) target.CopyFrom(source.To(target.DType));
        }
        return new LoadStateDictResult(missing, unexpected);
    }

    /// <summary>The line PyTorch prints inside the parentheses ("in_features=4, out_features=2, bias=True").</summary>
    protected virtual string ExtraRepr() => "";

    /// <summary>A tree like PyTorch's print(model), with the number of parameters of each module that has any.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        Format(sb, 0);
        return sb.ToString();
    }

    private void Format(StringBuilder sb, int indent)
    {
        RegisterComponents();
        sb.Append(TypeName).Append('(').Append(ExtraRepr());
        long count = ParameterCount();
        if (_children.Count == 0)
        {
            sb.Append(')');
            if (count > 0) sb.Append($"  # {count:N0} params");
            return;
        }
        if (count > 0) sb.Append($"  # {count:N0} params");
        sb.AppendLine();
        foreach (var (name, child) in _children)
        {
            sb.Append(' ', indent + 2).Append('(').Append(name).Append("): ");
            child.Format(sb, indent + 2);
            sb.AppendLine();
        }
        sb.Append(' ', indent).Append(')');
    }

    /// <summary>The PyTorch spelling of a bool in <see cref="ExtraRepr"/>.</summary>
    protected static string Py(bool value) => value ? "True" : "False";

    /// <summary>The PyTorch spelling of a tuple of ints in <see cref="ExtraRepr"/>.</summary>
    protected static string Py(params int[] values) => "(" + string.Join(", ", values) + (values.Length == 1 ? ",)" : ")");
}

/// <summary>The keys <see cref="Module.LoadStateDict"/> could not match (only non-empty when not strict).</summary>
public sealed record LoadStateDictResult(IReadOnlyList<string> MissingKeys, IReadOnlyList<string> UnexpectedKeys)
{
    /// <summary>As PyTorch prints it: <c>&lt;All keys matched successfully&gt;</c>, or the keys that did not.</summary>
    public override string ToString() => MissingKeys.Count == 0 && UnexpectedKeys.Count == 0
        ? "<All keys matched successfully>"
        : $"_IncompatibleKeys(missing_keys=[{string.Join(", ", MissingKeys.Select(k => $"'{k}'"))}], unexpected_keys=[{string.Join(", ", UnexpectedKeys.Select(k => $"'{k}'"))}])";
}
