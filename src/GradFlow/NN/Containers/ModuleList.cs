using System.Collections;

namespace GradFlow.NN;

/// <summary>A list of modules whose parameters are registered, named "0", "1", ... (torch.nn.ModuleList). It has no forward.</summary>
public sealed class ModuleList : Module, IEnumerable<Module>
{
    private readonly List<Module> _items = [];

    /// <summary>Creates a list of the given modules.</summary>
    public ModuleList(params IEnumerable<Module> modules)
    {
        Guard.NotNull(modules, nameof(ModuleList), nameof(modules));
        foreach (var m in modules) Add(m);
    }

    /// <summary>Appends a module. Returns this.</summary>
    public ModuleList Add(Module module)
    {
        _items.Add(RegisterModule(_items.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), module));
        return this;
    }

    /// <summary>The number of modules.</summary>
    public int Count => _items.Count;

    /// <summary>The module at a position (negative counts from the end).</summary>
    public Module this[int index]
    {
        get
        {
            int i = index < 0 ? index + _items.Count : index;
            if ((uint)i >= (uint)_items.Count)
                Guard.ThrowOutOfRange(TypeName, nameof(index), $"index {index} is out of range for {_items.Count} modules.");
            return _items[i];
        }
    }

    /// <inheritdoc />
    public IEnumerator<Module> GetEnumerator() => _items.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>Modules by name, in insertion order (torch.nn.ModuleDict). It has no forward.</summary>
public sealed class ModuleDict : Module, IEnumerable<KeyValuePair<string, Module>>
{
    private readonly OrderedDictionary<string, Module> _items = new();

    /// <summary>Creates an empty dictionary; fill it with <see cref="Add"/> or a collection initialiser.</summary>
    public ModuleDict() { }

    /// <summary>Adds a module under a name.</summary>
    public void Add(string name, Module module) => _items.Add(name, RegisterModule(name, module));

    /// <summary>The number of modules.</summary>
    public int Count => _items.Count;

    /// <summary>True when a module is registered under <paramref name="name"/>.</summary>
    public bool ContainsKey(string name) => _items.ContainsKey(name);

    /// <summary>The module registered under a name.</summary>
    public Module this[string name] => _items.TryGetValue(name, out var m) ? m
        : throw new KeyNotFoundException($"{TypeName}: no module named '{name}' (has: {string.Join(", ", _items.Keys)}).");

    /// <inheritdoc />
    public IEnumerator<KeyValuePair<string, Module>> GetEnumerator() => _items.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
