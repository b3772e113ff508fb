using System.Runtime.InteropServices;
using GradFlow.Formats;
using GradFlow.NN;

namespace GradFlow.Onnx;

/// <summary>
/// A value in the graph being exported: its name, its dtype and its shape, with -1 for a dynamic axis (the
/// batch). Converters compute the shapes they produce, because a few ONNX ops (Reshape, the pooling
/// windows of AdaptiveAvgPool2d) need the static sizes.
/// </summary>
public readonly record struct OnnxValue(string Name, int[] Shape, DType DType)
{
    /// <summary>The rank.</summary>
    public int Rank => Shape.Length;
}

/// <summary>
/// The graph under construction, handed to each converter: it emits nodes, names the module's tensors as
/// initializers by their state-dict keys (so "0.weight" in GradFlow is "0.weight" in the ONNX file), and
/// makes small constants.
/// </summary>
public sealed class OnnxExportContext
{
    private readonly List<(string OpType, string Name, string[] Inputs, string[] Outputs, OnnxAttribute[] Attributes)> _nodes = [];
    private readonly List<(string Name, Tensor Value)> _initializers = [];
    private readonly HashSet<string> _initializerNames = [];
    private readonly Dictionary<Tensor, string> _stateNames = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<string, int> _used = [];
    private readonly Func<OnnxExportContext, Module, OnnxValue, OnnxValue> _dispatch;

    internal OnnxExportContext(Module root, Func<OnnxExportContext, Module, OnnxValue, OnnxValue> dispatch)
    {
        _dispatch = dispatch;
        foreach (var (name, p) in root.NamedParameters()) _stateNames.TryAdd(p, name);
        foreach (var (name, b) in root.NamedBuffers()) _stateNames.TryAdd(b, name);
    }

    /// <summary>Converts <paramref name="module"/> applied to <paramref name="input"/> (a child, from a container's converter).</summary>
    public OnnxValue Emit(Module module, OnnxValue input) => _dispatch(this, module, input);

    /// <summary>
    /// Adds a node of <paramref name="opType"/> with one output of <paramref name="shape"/> and <paramref name="dtype"/>;
    /// the node and its output are named after the module path in scope and the op.
    /// </summary>
    public OnnxValue Node(string opType, string[] inputs, int[] shape, DType dtype, params OnnxAttribute[] attributes)
    {
        string name = Unique((Scope.Length == 0 ? "" : Scope + "/") + opType);
        _nodes.Add((opType, name, inputs, [name], attributes));
        return new OnnxValue(name, shape, dtype);
    }

    /// <summary>A node whose output has its first input's shape and dtype (activations, Add, normalisations).</summary>
    public OnnxValue Same(string opType, OnnxValue input, string[]? more = null, params OnnxAttribute[] attributes) =>
        Node(opType, more is null ? [input.Name] : [input.Name, .. more], input.Shape, input.DType, attributes);

    /// <summary>The initializer name of a module's parameter or buffer: its state-dict key.</summary>
    public string Parameter(Tensor tensor)
    {
        Guard.NotNull(tensor, "OnnxExport", nameof(tensor));
        if (!_stateNames.TryGetValue(tensor, out var name))
            Guard.ThrowArg("OnnxExport", nameof(tensor), $"the tensor of shape {Guard.Shape(tensor.Shape.ToArray())} is not a parameter or buffer of the exported module.");
        if (_initializerNames.Add(name)) _initializers.Add((name, tensor));
        return name;
    }

    /// <summary>
    /// A Constant node (shapes for Reshape, the scales of a composed GELU), named after the scope. Not an initializer:
    /// initializers are the model's state (what an importer trains), constants are part of the computation.
    /// </summary>
    public string Constant(Tensor value, string hint)
    {
        Guard.NotNull(value, "OnnxExport", nameof(value));
        string name = Unique((Scope.Length == 0 ? "" : Scope + "/") + hint);
        _nodes.Add(("Constant", name, [], [name], [OnnxAttribute.Tensor("value", value)]));
        return name;
    }

    /// <summary>An int64 vector constant.</summary>
    public string Int64s(string hint, params long[] values) => Constant(Tensor.FromArray(values, values.Length), hint);

    /// <summary>A float scalar constant of <paramref name="dtype"/>.</summary>
    public string Scalar(string hint, double value, DType dtype) => Constant(Tensor.Scalar(value, dtype), hint);

    /// <summary>Reshapes to <paramref name="shape"/> (-1 at the one dynamic axis).</summary>
    public OnnxValue Reshape(OnnxValue input, int[] shape) =>
        Node("Reshape", [input.Name, Int64s("shape", [.. shape.Select(d => (long)d)])], shape, input.DType);

    /// <summary>
    /// The graph's second input when the model is exported with a key padding mask (bool (N, S), true for a padded
    /// key), for the self-attention converters to add to their scores; null otherwise.
    /// </summary>
    public OnnxValue? KeyPaddingMask { get; internal set; }

    /// <summary>The module path the current converter works for (initializer and node names start with it).</summary>
    public string Scope { get; internal set; } = "";

    private string Unique(string name)
    {
        int n = _used.GetValueOrDefault(name);
        _used[name] = n + 1;
        return n == 0 ? name : $"{name}_{n}";
    }

    internal byte[] Encode(OnnxValue input, OnnxValue result, string graphName)
    {
        // The graph's output is named "output" whatever node made it: an Identity costs nothing in a runtime.
        var output = result with { Name = "output" };
        _nodes.Add(("Identity", Unique("output/Identity"), [result.Name], [output.Name], []));
        var graph = new ProtoWriter();
        var scratch = new ProtoWriter();
        foreach (var (opType, name, inputs, outputs, attributes) in _nodes)
        {
            scratch.Clear();
            foreach (var i in inputs) scratch.WriteString(OnnxProto.Node.Input, i);
            foreach (var o in outputs) scratch.WriteString(OnnxProto.Node.Output, o);
            scratch.WriteString(OnnxProto.Node.Name, name);
            scratch.WriteString(OnnxProto.Node.OpType, opType);
            var attr = new ProtoWriter();
            foreach (var a in attributes)
            {
                attr.Clear();
                a.WriteTo(attr);
                scratch.WriteMessage(OnnxProto.Node.Attribute, attr);
            }
            graph.WriteMessage(OnnxProto.Graph.Node, scratch);
        }
        graph.WriteString(OnnxProto.Graph.Name, graphName);
        foreach (var (name, value) in _initializers)
        {
            scratch.Clear();
            WriteTensor(scratch, name, value);
            graph.WriteMessage(OnnxProto.Graph.Initializer, scratch);
        }
        foreach (var graphInput in KeyPaddingMask is { } mask ? [input, mask] : new[] { input })
        {
            scratch.Clear();
            WriteValueInfo(scratch, graphInput);
            graph.WriteMessage(OnnxProto.Graph.Input, scratch);
        }
        scratch.Clear();
        WriteValueInfo(scratch, output);
        graph.WriteMessage(OnnxProto.Graph.Output, scratch);

        var model = new ProtoWriter();
        model.WriteInt64(OnnxProto.Model.IrVersion, OnnxProto.IrVersion);
        model.WriteString(OnnxProto.Model.ProducerName, "GradFlow");
        model.WriteString(OnnxProto.Model.ProducerVersion, typeof(OnnxExportContext).Assembly.GetName().Version?.ToString() ?? "0");
        model.WriteMessage(OnnxProto.Model.Graph, graph);
        scratch.Clear();
        scratch.WriteString(OnnxProto.OpsetId.Domain, "");
        scratch.WriteInt64(OnnxProto.OpsetId.Version, OnnxProto.Opset);
        model.WriteMessage(OnnxProto.Model.OpsetImport, scratch);
        return model.Written.ToArray();
    }

    internal static void WriteTensor(ProtoWriter w, string name, Tensor t)
    {
        foreach (int d in t.Shape) w.WriteInt64(OnnxProto.TensorField.Dims, d);
        w.WriteInt64(OnnxProto.TensorField.DataType, OnnxProto.ElementType(t.DType));
        if (name.Length > 0) w.WriteString(OnnxProto.TensorField.Name, name);
        // raw_data is little-endian by the ONNX spec.
        switch (t.DType)
        {
            case DType.Float32: w.WriteBytes(OnnxProto.TensorField.RawData, LittleEndian(t.ToArray<float>())); break;
            case DType.Float64: w.WriteBytes(OnnxProto.TensorField.RawData, LittleEndian(t.ToArray<double>())); break;
            case DType.Int64: w.WriteBytes(OnnxProto.TensorField.RawData, LittleEndian(t.ToArray<long>())); break;
            default: throw new NotSupportedException($"OnnxExport: initializer '{name}' has dtype {t.DType}; float32, float64 and int64 are written.");
        }
    }

    private static ReadOnlySpan<byte> LittleEndian<T>(T[] values) where T : unmanaged
    {
        if (!BitConverter.IsLittleEndian) Endian.Reverse(values);
        return MemoryMarshal.AsBytes(values.AsSpan());
    }

    private static void WriteValueInfo(ProtoWriter w, OnnxValue v)
    {
        var shape = new ProtoWriter();
        var dim = new ProtoWriter();
        foreach (int d in v.Shape)
        {
            dim.Clear();
            if (d < 0) dim.WriteString(OnnxProto.ShapeField.DimParam, "batch");
            else dim.WriteInt64(OnnxProto.ShapeField.DimValue, d);
            shape.WriteMessage(OnnxProto.ShapeField.Dim, dim);
        }
        var tensorType = new ProtoWriter();
        tensorType.WriteInt64(OnnxProto.TypeField.ElemType, OnnxProto.ElementType(v.DType));
        tensorType.WriteMessage(OnnxProto.TypeField.Shape, shape);
        var type = new ProtoWriter();
        type.WriteMessage(OnnxProto.TypeField.TensorType, tensorType);
        w.WriteString(OnnxProto.ValueInfo.Name, v.Name);
        w.WriteMessage(OnnxProto.ValueInfo.Type, type);
    }
}
