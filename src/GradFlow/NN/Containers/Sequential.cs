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
        if (!RecyclesIntermediates() || Interlocked.CompareExchange(ref _evaluating, 1, 0) != 0) return Chain(input);
        try
        {
            _evalArena ??= new TensorArena();
            using (_evalArena.InferenceStep())
            {
                var output = Chain(input);
                if (ReferenceEquals(output.Storage.Arena, _evalArena)) TensorArena.Keep(output);
                return output;
            }
        }
        finally
        {
            Volatile.Write(ref _evaluating, 0);
        }
    }

    private Tensor Chain(Tensor input)
    {
        foreach (var m in _items) input = m.Call(input);
        return input;
    }

    // An evaluation pass (NoGrad, outside any arena) over layers that keep no tensor their forward makes runs in an
    // InferenceStep of this chain's own, keeping only the result: each pass reuses the last one's intermediate
    // buffers. Otherwise every pass leaves its activations to the GC as large-object garbage (17 MB a batch on the
    // cnn bench: a full collection every 1-5 passes and up to 1,500 page faults a pass, about a third of the
    // forward's time). Hooks, observers, user modules, attention and recurrent layers (which could hold such a
    // tensor) and a call already running on another thread keep the plain path. The chain holds one set of
    // buffers per batch size it evaluated until <see cref="TrimEvaluationBuffers"/>.
    private TensorArena? _evalArena;
    private int _evaluating;

    private bool RecyclesIntermediates() =>
        !Autograd.IsGradEnabled && TensorArena.Current is null && !Instrumentation.Listening && ChildrenKeepNothing(this);

    private static bool ChildrenKeepNothing(Sequential chain)
    {
        foreach (var m in chain._items)
        {
            if (!m.HookFree) return false;
            bool ok = m switch
            {
                Sequential inner => ChildrenKeepNothing(inner),
                BatchNormBase bn => !bn.Training,
                ConvBase or Linear or Identity or Flatten or Dropout or MaxPool2d or AvgPool2d or AdaptiveAvgPool2d
                    or LayerNorm or GroupNorm or ReLU or Sigmoid or Tanh or LeakyReLU or ELU or SELU or GELU or SiLU
                    or Softplus or Hardtanh or Softmax or LogSoftmax or PReLU => true,
                _ => false,
            };
            if (!ok) return false;
        }
        return true;
    }

    /// <summary>Drops the buffers this chain keeps between evaluation passes under NoGrad (they become garbage).</summary>
    public void TrimEvaluationBuffers()
    {
        while (Interlocked.CompareExchange(ref _evaluating, 1, 0) != 0) Thread.Yield();
        _evalArena?.Trim();
        Volatile.Write(ref _evaluating, 0);
    }

    /// <inheritdoc />
    public IEnumerator<Module> GetEnumerator() => _items.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
