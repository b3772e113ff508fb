using GradFlow.NN;

namespace GradFlow.Onnx;

/// <summary>
/// An imported ONNX graph as a module that trains: its float initializers are parameters under their ONNX names
/// (PyTorch's state-dict keys when PyTorch exported it, so "0.weight" is <c>StateDict()["0.weight"]</c>), the
/// running statistics a BatchNormalization reads are buffers, and <see cref="Forward"/> runs the nodes in file
/// order with GradFlow's differentiable ops. Constant nodes and integer initializers stay constants.
/// </summary>
public sealed class OnnxModule : Module
{
    private readonly List<OnnxNode> _nodes;
    private readonly Dictionary<string, Tensor> _values = [];

    internal OnnxModule(OnnxGraphData graph)
    {
        var initializerNames = graph.Initializers.Select(i => i.Name).ToHashSet();
        var inputs = graph.Inputs.Where(i => !initializerNames.Contains(i.Name)).ToList();
        if (inputs.Count == 0 || graph.Outputs.Count != 1)
            throw new NotSupportedException($"ONNX: GradFlow imports graphs with one or more inputs and one output; this one has {inputs.Count} inputs and {graph.Outputs.Count} outputs.");
        if (graph.Opset is < 13 or > 17) throw new NotSupportedException($"ONNX: opset {graph.Opset} is not imported; GradFlow reads opsets 13 to 17.");
        foreach (var duplicate in inputs.GroupBy(i => i.Name).Where(g => g.Count() > 1 || g.Key.Length == 0))
            throw new InvalidDataException($"ONNX: graph input '{duplicate.Key}' is {(duplicate.Key.Length == 0 ? "unnamed" : "declared twice")}.");
        Inputs = [.. inputs.Select(i => new OnnxTensorInfo(i))];
        Outputs = [.. graph.Outputs.Select(o => new OnnxTensorInfo(o))];
        (OutputName, Opset) = (graph.Outputs[0].Name, graph.Opset);
        var statistics = graph.Nodes.Where(n => n.OpType == "BatchNormalization").SelectMany(n => n.Inputs.Skip(3).Take(2)).ToHashSet();
        foreach (var (name, value) in graph.Initializers)
        {
            if (_values.ContainsKey(name)) throw new InvalidDataException($"ONNX: initializer '{name}' is defined twice.");
            bool floating = value.DType is DType.Float32 or DType.Float64;
            _values[name] = floating ? Register(name, value, buffer: statistics.Contains(name)) : value;
        }
        _nodes = Check(graph, initializerNames);
    }

    /// <summary>The first graph input's name (the only one of a single-input graph).</summary>
    public string InputName => Inputs[0].Name;

    /// <summary>The graph inputs in file order (initializers excluded): the positions <see cref="Call(Tensor[])"/> takes.</summary>
    public IReadOnlyList<OnnxTensorInfo> Inputs { get; }

    /// <summary>The graph inputs' names in file order.</summary>
    public IReadOnlyList<string> InputNames => [.. Inputs.Select(i => i.Name)];

    /// <summary>The graph output as declared.</summary>
    public IReadOnlyList<OnnxTensorInfo> Outputs { get; }

    /// <summary>The graph output's name.</summary>
    public string OutputName { get; }

    /// <summary>The default-domain opset the file imports.</summary>
    public long Opset { get; }

    /// <summary>The operator types used, in first-use order.</summary>
    public IReadOnlyList<string> Operators => [.. _nodes.Select(n => n.OpType).Distinct()];

    /// <summary>Runs a single-input graph; a graph with several inputs takes them through <see cref="Call(Tensor[])"/>.</summary>
    public override Tensor Forward(Tensor input)
    {
        Guard.NotNull(input, nameof(OnnxModule), nameof(input));
        if (Inputs.Count != 1)
            throw new ArgumentException($"OnnxModule: the graph has {Inputs.Count} inputs ({string.Join(", ", Inputs)}); pass them all to Call(params Tensor[]) or Call(IReadOnlyDictionary<string, Tensor>).", nameof(input));
        return Run([input])[0];
    }

    /// <summary>
    /// Runs the graph on its inputs by position, in the order of <see cref="Inputs"/> (ONNX Runtime's and PyTorch's
    /// <c>model(x, mask)</c>), through the module call pipeline (hooks, scope, the gradient monitor). Each tensor is
    /// checked against its input's declared dtype, rank and fixed sizes, and inputs sharing a symbolic axis ("batch")
    /// must agree on its size. A single-input graph runs as <c>Call(Tensor)</c> always has, unchecked: a wrong input is
    /// then named by the first node that cannot take it.
    /// </summary>
    public Tensor Call(params Tensor[] inputs)
    {
        Guard.NotNull(inputs, nameof(OnnxModule), nameof(inputs));
        if (inputs.Length != Inputs.Count)
            throw new ArgumentException($"OnnxModule: the graph takes {Inputs.Count} inputs ({string.Join(", ", Inputs)}), got {inputs.Length}.", nameof(inputs));
        // base.Call: within this class a one-tensor Call would resolve to this overload again.
        if (inputs.Length == 1) return base.Call(inputs[0]);
        for (int i = 0; i < inputs.Length; i++)
            Guard.NotNull(inputs[i], nameof(OnnxModule), $"inputs[{i}] ('{Inputs[i].Name}')");
        return Invoke([.. inputs], xs =>
        {
            CheckInputs(xs);
            return Run(xs);
        })[0];
    }

    /// <summary>
    /// Runs the graph on its inputs by name (ONNX Runtime's <c>Run</c> with named values). An unknown name or a missing
    /// input is an ArgumentException naming it and the graph's inputs.
    /// </summary>
    public Tensor Call(IReadOnlyDictionary<string, Tensor> inputs)
    {
        Guard.NotNull(inputs, nameof(OnnxModule), nameof(inputs));
        var names = Inputs.Select(i => i.Name).ToHashSet();
        var unknown = inputs.Keys.Where(k => !names.Contains(k)).ToList();
        if (unknown.Count > 0)
            throw new ArgumentException($"OnnxModule: no graph input is named {string.Join(", ", unknown.Select(k => $"'{k}'"))}; the inputs are {string.Join(", ", Inputs)}.", nameof(inputs));
        var missing = Inputs.Where(i => !inputs.ContainsKey(i.Name)).ToList();
        if (missing.Count > 0)
            throw new ArgumentException($"OnnxModule: input {string.Join(", ", missing.Select(i => $"'{i.Name}'"))} is missing; the graph takes {string.Join(", ", Inputs)}.", nameof(inputs));
        return Call([.. Inputs.Select(i => inputs[i.Name])]);
    }

    private Tensor[] Run(Tensor[] inputs)
    {
        var env = new Dictionary<string, Tensor>(_values);
        for (int i = 0; i < inputs.Length; i++) env[Inputs[i].Name] = inputs[i];
        foreach (var node in _nodes)
        {
            var x = new Tensor?[node.Inputs.Length];
            for (int i = 0; i < x.Length; i++) x[i] = node.Inputs[i].Length == 0 ? null : env[node.Inputs[i]];
            Tensor[] y;
            try
            {
                y = OnnxRecurrentOps.Handles(node.OpType) ? OnnxRecurrentOps.Run(node, x) : [OnnxOps.Run(node, x)];
            }
            catch (ArgumentException ex)
            {
                throw new ArgumentException($"ONNX: node '{node.Name}' ({node.OpType}) on inputs {string.Join(", ", x.Select(t => t is null ? "none" : Guard.Shape(t)))}: {ex.Message}", ex);
            }
            for (int i = 0; i < y.Length && i < node.Outputs.Length; i++)
                if (node.Outputs[i].Length > 0) env[node.Outputs[i]] = y[i];
        }
        return [env[OutputName]];
    }

    // What ONNX Runtime refuses, refused here by input name before a node sees it: a wrong dtype, rank or fixed size,
    // and two sizes for one symbolic axis.
    private void CheckInputs(Tensor[] inputs)
    {
        Dictionary<string, (int Size, string Input)>? symbols = null;
        for (int i = 0; i < inputs.Length; i++)
        {
            var (info, t) = (Inputs[i], inputs[i]);
            if (info.DType is { } dtype && t.DType != dtype)
                throw new ArgumentException($"OnnxModule: input '{info.Name}' is {dtype} ({info}), got {t.DType} of shape {Guard.Shape(t)}.", "inputs");
            if (info.Dimensions is not { } dims) continue;
            if (t.Rank != dims.Count)
                throw new ArgumentException($"OnnxModule: input '{info.Name}' has rank {dims.Count} ({info}), got shape {Guard.Shape(t)}.", "inputs");
            for (int a = 0; a < dims.Count; a++)
            {
                int size = t.Shape[a];
                if (dims[a] >= 0 && size != dims[a])
                    throw new ArgumentException($"OnnxModule: input '{info.Name}' has size {dims[a]} on axis {a} ({info}), got shape {Guard.Shape(t)}.", "inputs");
                string symbol = info.SymbolicDimensions![a];
                if (symbol.Length == 0) continue;
                symbols ??= [];
                if (!symbols.TryGetValue(symbol, out var seen)) symbols[symbol] = (size, info.Name);
                else if (seen.Size != size)
                    throw new ArgumentException($"OnnxModule: axis '{symbol}' is {seen.Size} in input '{seen.Input}' but {size} in input '{info.Name}' (shape {Guard.Shape(t)}).", "inputs");
            }
        }
    }

    // Checks the graph once, so Forward can trust it: known operators, every input produced before it is read,
    // Constant nodes evaluated now.
    private List<OnnxNode> Check(OnnxGraphData graph, HashSet<string> initializers)
    {
        var defined = new HashSet<string>(initializers);
        defined.UnionWith(Inputs.Select(i => i.Name));
        var notProduced = new Dictionary<string, OnnxNode>();
        var nodes = new List<OnnxNode>();
        foreach (var node in graph.Nodes)
        {
            if (node.Domain is not ("" or "ai.onnx") || !OnnxOps.Supported.Contains(node.OpType)) throw OnnxOps.Unsupported(node, "");
            // A recurrent node may leave Y unnamed and give only Y_h.
            if (node.Outputs.Length == 0 || (OnnxRecurrentOps.Handles(node.OpType) ? node.Outputs.All(o => o.Length == 0) : node.Outputs[0].Length == 0)) throw new InvalidDataException($"ONNX: node '{node.Name}' ({node.OpType}) has no output.");
            foreach (var i in node.Inputs)
                if (notProduced.TryGetValue(i, out var producer)) throw OnnxOps.Unsupported(producer, $"its output '{i}' is read by node '{node.Name}', and GradFlow computes only the first output");
                else if (i.Length > 0 && !defined.Contains(i))
                    throw new InvalidDataException($"ONNX: node '{node.Name}' ({node.OpType}) reads '{i}' before any node produces it (nodes must be in topological order).");
            if (OnnxRecurrentOps.Handles(node.OpType)) OnnxRecurrentOps.Validate(node);
            if (node.OpType == "Constant") _values[node.Outputs[0]] = ConstantValue(node);
            else nodes.Add(node);
            // Only the recurrent operators produce more than their first output here (Dropout's mask, for one, is not).
            defined.UnionWith(OnnxRecurrentOps.Handles(node.OpType) ? node.Outputs.Take(node.OpType == "LSTM" ? 3 : 2).Where(o => o.Length > 0) : [node.Outputs[0]]);
            foreach (var extra in node.Outputs.Skip(1).Where(o => o.Length > 0 && !defined.Contains(o))) notProduced[extra] = node;
        }
        if (!defined.Contains(OutputName)) throw new InvalidDataException($"ONNX: no node produces the graph output '{OutputName}'.");
        return nodes;
    }

    private static Tensor ConstantValue(OnnxNode node)
    {
        var a = node.Attributes;
        if (a.TryGetValue("value", out var v) && v.T is { } t) return t;
        if (a.TryGetValue("value_float", out v)) return Tensor.Scalar(v.F);
        if (a.TryGetValue("value_int", out v)) return Tensor.Scalar(v.I, DType.Int64);
        if (a.TryGetValue("value_floats", out v) && v.Floats is { } fs) return Tensor.FromArray(fs, fs.Length);
        if (a.TryGetValue("value_ints", out v) && v.Ints is { } ls) return Tensor.FromArray(ls, ls.Length);
        throw OnnxOps.Unsupported(node, "a Constant without a tensor, float or int value");
    }

    // "encoder.layers.0.weight" lives in child "encoder", its child "layers", its child "0", as a PyTorch module tree
    // would hold it: the state-dict key is the initializer's name.
    private Tensor Register(string name, Tensor value, bool buffer)
    {
        string[] parts = name.Split('.');
        if (parts.Any(p => p.Length == 0)) throw new InvalidDataException($"ONNX: initializer name '{name}' has an empty part.");
        try
        {
            Module at = this;
            foreach (var part in parts[..^1])
                at = at.NamedChildren().FirstOrDefault(c => c.Name == part).Module ?? at.RegisterModule(part, new ParameterGroup());
            return buffer ? at.RegisterBuffer(parts[^1], value) : at.RegisterParameter(parts[^1], value);
        }
        catch (ArgumentException ex)
        {
            throw new InvalidDataException($"ONNX: initializer '{name}' clashes with another initializer's name ({ex.Message})", ex);
        }
    }

    /// <summary>A node of the parameter tree; it holds tensors and has no forward of its own.</summary>
    private sealed class ParameterGroup : Module
    {
        public override Tensor Forward(Tensor input) =>
            throw new NotSupportedException($"ONNX: '{Path}' only holds imported parameters; call the OnnxModule.");
    }
}
