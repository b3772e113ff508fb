using System.Runtime.InteropServices;
using GradFlow.Formats;
using P = GradFlow.Onnx.OnnxProto;

namespace GradFlow.Onnx;

/// <summary>A node attribute as read: one of its values is set, by <see cref="Type"/>.</summary>
internal sealed class OnnxAttributeValue
{
    public int Type;
    public long I;
    public float F;
    public string? S;
    public long[]? Ints;
    public float[]? Floats;
    public string[]? Strings;
    public Tensor? T;
}

internal sealed record OnnxNode(string OpType, string Name, string Domain, string[] Inputs, string[] Outputs, Dictionary<string, OnnxAttributeValue> Attributes);

internal sealed record OnnxValueInfo(string Name, int ElementType, string?[]? Dims);

/// <summary>A ModelProto's graph as read: nodes in file order, initializers, inputs and outputs, the default-domain opset.</summary>
internal sealed class OnnxGraphData
{
    public List<OnnxNode> Nodes { get; } = [];
    public List<(string Name, Tensor Value)> Initializers { get; } = [];
    public List<OnnxValueInfo> Inputs { get; } = [];
    public List<OnnxValueInfo> Outputs { get; } = [];
    public long Opset { get; set; }
    public long IrVersion { get; set; }
}

/// <summary>
/// Parses an ONNX ModelProto with <see cref="ProtoReader"/>. Sizes are checked against the bytes present before a
/// tensor is allocated: a TensorProto's element count must match its raw_data (or typed data) exactly. Unknown
/// fields are skipped, as protobuf requires; external data and subgraphs are refused (they are not in the
/// operator set GradFlow imports).
/// </summary>
internal static class OnnxModelReader
{
    private const int MaxRank = 32, MaxAttributeValues = 1 << 20;

    public static OnnxGraphData Read(ReadOnlySpan<byte> bytes)
    {
        var data = new OnnxGraphData();
        var r = new ProtoReader(bytes);
        bool sawGraph = false;
        while (r.Next(out int field, out int wire))
        {
            switch (field)
            {
                case P.Model.IrVersion: r.Expect(wire, ProtoReader.Varint, "ModelProto.ir_version"); data.IrVersion = r.ReadInt64(); break;
                case P.Model.Graph:
                    r.Expect(wire, ProtoReader.LengthDelimited, "ModelProto.graph");
                    var g = r.ReadMessage();
                    ReadGraph(ref g, data);
                    sawGraph = true;
                    break;
                case P.Model.OpsetImport:
                    r.Expect(wire, ProtoReader.LengthDelimited, "ModelProto.opset_import");
                    var o = r.ReadMessage();
                    string domain = "";
                    long version = 0;
                    while (o.Next(out int f2, out int w2))
                    {
                        if (f2 == P.OpsetId.Domain && w2 == ProtoReader.LengthDelimited) domain = o.ReadString();
                        else if (f2 == P.OpsetId.Version && w2 == ProtoReader.Varint) version = o.ReadInt64();
                        else o.Skip(w2);
                    }
                    if (domain is "" or "ai.onnx") data.Opset = version;
                    break;
                default: r.Skip(wire); break;
            }
        }
        if (!sawGraph) throw ProtoReader.Bad("the model has no graph", r.Offset);
        return data;
    }

    private static void ReadGraph(ref ProtoReader r, OnnxGraphData data)
    {
        while (r.Next(out int field, out int wire))
        {
            if (field is P.Graph.Node or P.Graph.Initializer or P.Graph.Input or P.Graph.Output)
            {
                r.Expect(wire, ProtoReader.LengthDelimited, "GraphProto field " + field);
                var m = r.ReadMessage();
                switch (field)
                {
                    case P.Graph.Node: data.Nodes.Add(ReadNode(ref m)); break;
                    case P.Graph.Initializer:
                        long at = m.Offset;
                        var (name, t) = ReadTensor(ref m);
                        if (name.Length == 0) throw ProtoReader.Bad("an initializer has no name", at);
                        data.Initializers.Add((name, t));
                        break;
                    case P.Graph.Input: data.Inputs.Add(ReadValueInfo(ref m)); break;
                    default: data.Outputs.Add(ReadValueInfo(ref m)); break;
                }
            }
            else r.Skip(wire);
        }
    }

    private static OnnxNode ReadNode(ref ProtoReader r)
    {
        List<string> inputs = [], outputs = [];
        string name = "", opType = "", domain = "";
        var attributes = new Dictionary<string, OnnxAttributeValue>();
        while (r.Next(out int field, out int wire))
        {
            if (field is P.Node.Input or P.Node.Output or P.Node.Name or P.Node.OpType or P.Node.Domain or P.Node.Attribute)
                r.Expect(wire, ProtoReader.LengthDelimited, "NodeProto field " + field);
            switch (field)
            {
                case P.Node.Input: inputs.Add(r.ReadString()); break;
                case P.Node.Output: outputs.Add(r.ReadString()); break;
                case P.Node.Name: name = r.ReadString(); break;
                case P.Node.OpType: opType = r.ReadString(); break;
                case P.Node.Domain: domain = r.ReadString(); break;
                case P.Node.Attribute:
                    var a = r.ReadMessage();
                    long at = a.Offset;
                    var (attrName, value) = ReadAttribute(ref a);
                    if (!attributes.TryAdd(attrName, value)) throw ProtoReader.Bad($"node '{name}' has attribute '{attrName}' twice", at);
                    break;
                default: r.Skip(wire); break;
            }
        }
        return new OnnxNode(opType, name, domain, [.. inputs], [.. outputs], attributes);
    }

    private static (string, OnnxAttributeValue) ReadAttribute(ref ProtoReader r)
    {
        string name = "";
        var v = new OnnxAttributeValue();
        List<long>? ints = null;
        List<float>? floats = null;
        List<string>? strings = null;
        while (r.Next(out int field, out int wire))
        {
            switch (field)
            {
                case P.Attribute.Name: r.Expect(wire, ProtoReader.LengthDelimited, "AttributeProto.name"); name = r.ReadString(); break;
                case P.Attribute.Type: r.Expect(wire, ProtoReader.Varint, "AttributeProto.type"); v.Type = r.ReadInt32(); break;
                case P.Attribute.I: r.Expect(wire, ProtoReader.Varint, "AttributeProto.i"); v.I = r.ReadInt64(); break;
                case P.Attribute.F: r.Expect(wire, ProtoReader.Fixed32, "AttributeProto.f"); v.F = r.ReadFloat(); break;
                case P.Attribute.S: r.Expect(wire, ProtoReader.LengthDelimited, "AttributeProto.s"); v.S = r.ReadString(); break;
                case P.Attribute.T:
                    r.Expect(wire, ProtoReader.LengthDelimited, "AttributeProto.t");
                    var t = r.ReadMessage();
                    v.T = ReadTensor(ref t).Value;
                    break;
                case P.Attribute.Ints: r.ReadRepeatedInt64(wire, ints ??= [], MaxAttributeValues); break;
                case P.Attribute.Floats: r.ReadRepeatedFloat(wire, floats ??= [], MaxAttributeValues); break;
                case P.Attribute.Strings:
                    r.Expect(wire, ProtoReader.LengthDelimited, "AttributeProto.strings");
                    if ((strings ??= []).Count >= MaxAttributeValues) throw ProtoReader.Bad($"attribute '{name}' has more than {MaxAttributeValues} strings", r.Offset);
                    strings.Add(r.ReadString());
                    break;
                default: r.Skip(wire); break;
            }
        }
        v.Ints = ints?.ToArray();
        v.Floats = floats?.ToArray();
        v.Strings = strings?.ToArray();
        return (name, v);
    }

    private static OnnxValueInfo ReadValueInfo(ref ProtoReader r)
    {
        string name = "";
        int elem = 0;
        List<string?>? dims = null;
        while (r.Next(out int field, out int wire))
        {
            if (field == P.ValueInfo.Name && wire == ProtoReader.LengthDelimited) name = r.ReadString();
            else if (field == P.ValueInfo.Type && wire == ProtoReader.LengthDelimited)
            {
                var type = r.ReadMessage();
                while (type.Next(out int f1, out int w1))
                {
                    if (f1 != P.TypeField.TensorType || w1 != ProtoReader.LengthDelimited) { type.Skip(w1); continue; }
                    var tensorType = type.ReadMessage();
                    while (tensorType.Next(out int f2, out int w2))
                    {
                        if (f2 == P.TypeField.ElemType && w2 == ProtoReader.Varint) elem = tensorType.ReadInt32();
                        else if (f2 == P.TypeField.Shape && w2 == ProtoReader.LengthDelimited)
                        {
                            dims = [];
                            var shape = tensorType.ReadMessage();
                            while (shape.Next(out int f3, out int w3))
                            {
                                if (f3 != P.ShapeField.Dim || w3 != ProtoReader.LengthDelimited) { shape.Skip(w3); continue; }
                                if (dims.Count >= MaxRank) throw ProtoReader.Bad($"value '{name}' has more than {MaxRank} dimensions", shape.Offset);
                                var dim = shape.ReadMessage();
                                string? d = null;
                                while (dim.Next(out int f4, out int w4))
                                {
                                    if (f4 == P.ShapeField.DimValue && w4 == ProtoReader.Varint) d = dim.ReadInt64().ToString(System.Globalization.CultureInfo.InvariantCulture);
                                    else if (f4 == P.ShapeField.DimParam && w4 == ProtoReader.LengthDelimited) d = dim.ReadString();
                                    else dim.Skip(w4);
                                }
                                dims.Add(d);
                            }
                        }
                        else tensorType.Skip(w2);
                    }
                }
            }
            else r.Skip(wire);
        }
        return new OnnxValueInfo(name, elem, dims?.ToArray());
    }

    /// <summary>Reads a TensorProto; the element count is checked against the data present before anything is allocated.</summary>
    public static (string Name, Tensor Value) ReadTensor(ref ProtoReader r)
    {
        long start = r.Offset;
        var dims = new List<long>();
        int dataType = 0;
        string name = "";
        ReadOnlySpan<byte> raw = default;
        bool hasRaw = false;
        List<float>? floats = null;
        List<long>? longs = null;
        List<double>? doubles = null;
        while (r.Next(out int field, out int wire))
        {
            switch (field)
            {
                case P.TensorField.Dims: r.ReadRepeatedInt64(wire, dims, MaxRank); break;
                case P.TensorField.DataType: r.Expect(wire, ProtoReader.Varint, "TensorProto.data_type"); dataType = r.ReadInt32(); break;
                case P.TensorField.Name: r.Expect(wire, ProtoReader.LengthDelimited, "TensorProto.name"); name = r.ReadString(); break;
                case P.TensorField.RawData: r.Expect(wire, ProtoReader.LengthDelimited, "TensorProto.raw_data"); raw = r.ReadBytes(); hasRaw = true; break;
                case P.TensorField.FloatData: r.ReadRepeatedFloat(wire, floats ??= [], int.MaxValue); break;
                case P.TensorField.Int64Data or P.TensorField.Int32Data: r.ReadRepeatedInt64(wire, longs ??= [], int.MaxValue); break;
                case P.TensorField.DoubleData:
                    if (wire == ProtoReader.Fixed64) (doubles ??= []).Add(r.ReadDouble());
                    else
                    {
                        r.Expect(wire, ProtoReader.LengthDelimited, "TensorProto.double_data");
                        var packed = r.ReadMessage();
                        doubles ??= [];
                        while (!packed.End) doubles.Add(packed.ReadDouble());
                    }
                    break;
                case P.TensorField.DataLocation:
                    r.Expect(wire, ProtoReader.Varint, "TensorProto.data_location");
                    if (r.ReadInt64() != 0) throw new NotSupportedException($"ONNX: tensor '{name}' keeps its data in an external file, which GradFlow does not read.");
                    break;
                default: r.Skip(wire); break;
            }
        }
        long count = 1;
        foreach (long d in dims)
        {
            if (d < 0 || d > int.MaxValue) throw ProtoReader.Bad($"tensor '{name}' has dimension {d}", start);
            count = d == 0 ? 0 : count > int.MaxValue / d ? long.MaxValue : count * d;
        }
        if (count > int.MaxValue) throw ProtoReader.Bad($"tensor '{name}' has more than {int.MaxValue} elements", start);
        int n = (int)count;
        int[] shape = [.. dims.Select(d => (int)d)];
        int size = dataType switch { P.Float => 4, P.Double => 8, P.Int64 => 8, P.Int32 => 4, P.Bool or P.UInt8 or P.Int8 => 1, _ => 0 };
        if (size == 0) throw new NotSupportedException($"ONNX: tensor '{name}' has data type {dataType}; GradFlow imports float, double, int64, int32, int8, uint8 and bool.");
        if (hasRaw)
        {
            if ((long)raw.Length != count * size) throw ProtoReader.Bad($"tensor '{name}' of shape [{string.Join(", ", shape)}] needs {count * size} bytes of raw_data, has {raw.Length}", start);
            return (name, FromRaw(raw, dataType, n, shape));
        }
        int present = floats?.Count ?? longs?.Count ?? doubles?.Count ?? 0;
        if (present != n) throw ProtoReader.Bad($"tensor '{name}' of shape [{string.Join(", ", shape)}] holds {present} values, needs {n}", start);
        return (name, dataType switch
        {
            P.Float when floats is not null => Wrap(floats.ToArray(), DType.Float32, shape),
            P.Double when doubles is not null => Wrap(doubles.ToArray(), DType.Float64, shape),
            P.Int64 or P.Int32 or P.Int8 or P.UInt8 when longs is not null => Wrap(longs.ToArray(), DType.Int64, shape),
            P.Bool when longs is not null => Wrap(longs.ToArray(), DType.Int64, shape).Ne(0),
            _ when n == 0 => Tensor.Zeros(shape, dataType == P.Double ? DType.Float64 : dataType == P.Float ? DType.Float32 : DType.Int64),
            _ => throw ProtoReader.Bad($"tensor '{name}' keeps its values in a field that does not match data type {dataType}", start),
        });
    }

    // The array read becomes the tensor's storage (FromArray would copy it again); shape [] is a scalar.
    private static Tensor Wrap(Array data, DType dtype, int[] shape) => new(new Storage(data, dtype), shape);

    private static Tensor FromRaw(ReadOnlySpan<byte> raw, int dataType, int n, int[] shape)
    {
        switch (dataType)
        {
            case P.Float:
                var f = GC.AllocateUninitializedArray<float>(n);
                raw.CopyTo(MemoryMarshal.AsBytes(f.AsSpan()));
                if (!BitConverter.IsLittleEndian) Endian.Reverse(f);
                return Wrap(f, DType.Float32, shape);
            case P.Double:
                var d = GC.AllocateUninitializedArray<double>(n);
                raw.CopyTo(MemoryMarshal.AsBytes(d.AsSpan()));
                if (!BitConverter.IsLittleEndian) Endian.Reverse(d);
                return Wrap(d, DType.Float64, shape);
            case P.Int64:
                var l = GC.AllocateUninitializedArray<long>(n);
                raw.CopyTo(MemoryMarshal.AsBytes(l.AsSpan()));
                if (!BitConverter.IsLittleEndian) Endian.Reverse(l);
                return Wrap(l, DType.Int64, shape);
            default:
                var w = new long[n];
                for (int i = 0; i < n; i++)
                    w[i] = dataType switch
                    {
                        P.Int32 => System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(raw[(i * 4)..]),
                        P.Int8 => (sbyte)raw[i],
                        _ => raw[i],
                    };
                var t = Wrap(w, DType.Int64, shape);
                return dataType == P.Bool ? t.Ne(0) : t;
        }
    }
}
