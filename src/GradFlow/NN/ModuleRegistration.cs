using System.Collections;
using System.Collections.Concurrent;
using System.Reflection;

namespace GradFlow.NN;

// Automatic registration: what PyTorch's __setattr__ does when a module or parameter is assigned to an attribute.
public abstract partial class Module
{
    private static readonly ConcurrentDictionary<Type, (string Name, FieldInfo Field)[]> s_componentFields = new();

    // The containers made for List/array/dictionary fields, by field name, so that items added later are registered too.
    private Dictionary<string, Module>? _fieldContainers;
    private bool _componentsScanned;

    /// <summary>
    /// Registers the submodules and parameters this module holds in its own fields and auto-properties
    /// (as PyTorch registers attributes on assignment, and TorchSharp's RegisterComponents): a
    /// <see cref="Module"/> becomes a child, a leaf tensor that requires grad a parameter, a list or array
    /// of modules a <see cref="ModuleList"/> child, a dictionary from string to modules a
    /// <see cref="ModuleDict"/> child and a list or array of such tensors a <see cref="ParameterList"/>.
    /// </summary>
    /// <remarks>
    /// <para>The name is the field's, without a leading underscore ("_conv1" -> "conv1"), or the property's
    /// ("Fc" -> "Fc"); fields of a base class come first, then declaration order, so state-dict keys follow the
    /// order in which a PyTorch model would assign its attributes. Only classes outside GradFlow are scanned:
    /// GradFlow's own layers register explicitly.</para>
    /// <para>Explicit registration wins: a value already registered (under any name), or a name already taken,
    /// is skipped. There is no need to call this: <see cref="NamedModules"/>, <see cref="NamedParameters"/>,
    /// <see cref="StateDict"/> and the rest call it on every module they visit (so a field assigned after
    /// construction is still found), and <see cref="Call(Tensor)"/> on its first call. Tensors that do not
    /// require grad are not registered (plain attributes in PyTorch too); use <see cref="RegisterBuffer"/>.</para>
    /// </remarks>
    public void RegisterComponents()
    {
        _componentsScanned = true;
        var fields = s_componentFields.GetOrAdd(GetType(), ComponentFields);
        foreach (var (name, field) in fields)
        {
            object? value = field.GetValue(this);
            switch (value)
            {
                case null:
                    break;
                case Module m:
                    if (!IsRegistered(m) && !IsSelfOrAncestor(m) && !NameTaken(name)) RegisterModule(name, m);
                    break;
                case Tensor t:
                    if (t.IsLeaf && t.RequiresGrad && !IsRegistered(t) && !NameTaken(name)) RegisterParameter(name, t);
                    break;
                case IReadOnlyList<Module> list:
                    SyncList(name, list);
                    break;
                case IReadOnlyList<Tensor> tensors:
                    SyncParameterList(name, tensors);
                    break;
                case IDictionary dict:
                    SyncDict(name, dict);
                    break;
            }
        }
    }

    private void EnsureComponents()
    {
        if (!_componentsScanned) RegisterComponents();
    }

    private static (string, FieldInfo)[] ComponentFields(Type type)
    {
        var chain = new List<Type>();
        for (var t = type; t is not null && t.Assembly != typeof(Module).Assembly; t = t.BaseType) chain.Add(t);
        chain.Reverse();
        var result = new List<(string, FieldInfo)>();
        foreach (var t in chain)
        {
            var own = t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly)
                .Where(f => CanHoldComponent(f.FieldType))
                .OrderBy(f => f.MetadataToken);
            foreach (var f in own) result.Add((ComponentName(f.Name), f));
        }
        return [.. result];
    }

    // A field typed string, int or Func can never hold a module or a parameter: skip it once, per type.
    private static bool CanHoldComponent(Type type) =>
        !type.IsValueType && type != typeof(string) && !typeof(Delegate).IsAssignableFrom(type);

    private static string ComponentName(string fieldName)
    {
        // An auto-property's backing field is "<Name>k__BackingField".
        if (fieldName.StartsWith('<'))
        {
            int end = fieldName.IndexOf('>');
            if (end > 1) return fieldName[1..end];
        }
        return fieldName.Length > 1 && fieldName[0] == '_' ? fieldName[1..] : fieldName;
    }

    private bool IsRegistered(Module m) => _children.Exists(c => ReferenceEquals(c.Value, m));

    private bool IsRegistered(Tensor t) => _parameters.Exists(p => ReferenceEquals(p.Value, t)) || _buffers.Exists(b => ReferenceEquals(b.Value, t));

    private bool NameTaken(string name) =>
        _parameters.Exists(p => p.Name == name) || _buffers.Exists(b => b.Name == name) || _children.Exists(c => c.Name == name);

    // A field that points back up the tree (a child keeping its parent) is a reference, not a child.
    private bool IsSelfOrAncestor(Module m)
    {
        for (var a = this; a is not null; a = a._parent)
            if (ReferenceEquals(a, m)) return true;
        return false;
    }

    private void SyncList(string name, IReadOnlyList<Module> list)
    {
        if (ContainerFor(name, () => new ModuleList()) is not ModuleList container) return;
        for (int i = container.Count; i < list.Count; i++)
        {
            if (list[i] is null) Guard.ThrowArg(nameof(RegisterComponents), name, $"{TypeName}.{name}[{i}] is null; a list of modules may not hold nulls.");
            container.Add(list[i]);
        }
    }

    private void SyncParameterList(string name, IReadOnlyList<Tensor> tensors)
    {
        bool allParameters = tensors.Count > 0;
        foreach (var t in tensors) allParameters &= t is { IsLeaf: true, RequiresGrad: true };
        if (!allParameters) return; // a list of data tensors is not a ParameterList
        if (ContainerFor(name, () => new ParameterList()) is not ParameterList container) return;
        for (int i = container.Count; i < tensors.Count; i++) container.Add(tensors[i]);
    }

    private void SyncDict(string name, IDictionary dict)
    {
        var items = new List<(string, Module)>();
        foreach (DictionaryEntry e in dict)
        {
            if (e.Key is not string key || e.Value is not Module m) return; // not a dictionary of modules
            items.Add((key, m));
        }
        if (items.Count == 0 || ContainerFor(name, () => new ModuleDict()) is not ModuleDict container) return;
        foreach (var (key, m) in items)
            if (!container.ContainsKey(key)) container.Add(key, m);
    }

    // The container registered for a field, made on first sight; null when the name was taken explicitly.
    private Module? ContainerFor(string name, Func<Module> make)
    {
        _fieldContainers ??= [];
        if (_fieldContainers.TryGetValue(name, out var existing)) return existing;
        if (NameTaken(name)) return null;
        var container = RegisterModule(name, make());
        _fieldContainers[name] = container;
        return container;
    }
}

/// <summary>A list of parameters registered as "0", "1", ... (torch.nn.ParameterList). It has no forward.</summary>
public sealed class ParameterList : Module, IEnumerable<Tensor>
{
    private readonly List<Tensor> _items = [];

    /// <summary>Creates a list of the given tensors, each registered as a parameter.</summary>
    public ParameterList(params IEnumerable<Tensor> parameters)
    {
        Guard.NotNull(parameters, nameof(ParameterList), nameof(parameters));
        foreach (var p in parameters) Add(p);
    }

    /// <summary>Appends a parameter. Returns this.</summary>
    public ParameterList Add(Tensor parameter)
    {
        _items.Add(RegisterParameter(_items.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), parameter));
        return this;
    }

    /// <summary>The number of parameters.</summary>
    public int Count => _items.Count;

    /// <summary>The parameter at a position (negative counts from the end).</summary>
    public Tensor this[int index]
    {
        get
        {
            int i = index < 0 ? index + _items.Count : index;
            if ((uint)i >= (uint)_items.Count)
                throw new ArgumentOutOfRangeException(nameof(index), $"{TypeName}: index {index} is out of range for {_items.Count} parameters.");
            return _items[i];
        }
    }

    /// <inheritdoc />
    public IEnumerator<Tensor> GetEnumerator() => _items.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>
/// The parameters of a module, enumerated afresh each time (what <see cref="Module.Parameters"/> returns). It
/// remembers the module, so an optimiser given none can say which model registered nothing.
/// </summary>
public sealed class ModuleParameters : IEnumerable<Tensor>
{
    internal ModuleParameters(Module owner) => Owner = owner;

    /// <summary>The module whose parameters these are.</summary>
    public Module Owner { get; }

    /// <inheritdoc />
    public IEnumerator<Tensor> GetEnumerator()
    {
        foreach (var (_, p) in Owner.NamedParameters()) yield return p;
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
