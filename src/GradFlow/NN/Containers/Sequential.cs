using System.Collections;

namespace GradFlow.NN;

/// <summary>Runs its children in order, each on the previous one's output (torch.nn.Sequential); children are named "0", "1", ...</summary>
public sealed class Sequential : Module, IEnumerable<Module>
{
    private readonly List<Module> _items = [];

    /// <summary>Creates an empty chain; fill it with <see cref="Add"/>.</summary>
    public Sequential() { }

    /// <summary>Creates a chain of the given modules.</summary>
    public Sequential(params Module[] modules)
    {
        Guard.NotNull(modules, nameof(Sequential), nameof(modules));
        foreach (var m in modules) Add(m);
    }

    /// <summary>Creates a chain of named modules (their names become the state-dict prefixes).</summary>
    public Sequential(params (string Name, Module Module)[] modules)
    {
        Guard.NotNull(modules, nameof(Sequential), nameof(modules));
        foreach (var (name, m) in modules) _items.Add(RegisterModule(name, m));
    }

    /// <summary>Appends a module, named by its position. Returns this.</summary>
    public Sequential Add(Module module)
    {
        _items.Add(RegisterModule(_items.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), module));
        return this;
    }

    /// <summary>The number of modules.</summary>
    public int Count => _items.Count;

    /// <summary>The module at a position (negative counts from the end).</summary>
    public Module this[int index]
    {
        get => _items[Index(index)];
    }

    private int Index(int index)
    {
        int i = index < 0 ? index + _items.Count : index;
        if ((uint)i >= (uint)_items.Count)
            Guard.ThrowOutOfRange(TypeName, nameof(index), $"index {index} is out of range for {_items.Count} modules.");
        return i;
    }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        foreach (var m in _items) input = m.Call(input);
        return input;
    }

    /// <inheritdoc />
    public IEnumerator<Module> GetEnumerator() => _items.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
