namespace GradFlow.Onnx;

/// <summary>A node attribute (AttributeProto): one int, float, string, or a list of ints or floats.</summary>
public sealed class OnnxAttribute
{
    private OnnxAttribute(string name, int type) => (Name, Type) = (name, type);

    /// <summary>The attribute's name ("kernel_shape", "epsilon", ...).</summary>
    public string Name { get; }

    internal int Type { get; }

    internal long IntValue { get; private init; }

    internal float FloatValue { get; private init; }

    internal string? StringValue { get; private init; }

    internal long[]? IntsValue { get; private init; }

    internal string[]? StringsValue { get; private init; }

    internal float[]? FloatsValue { get; private init; }

    internal Tensor? TensorValue { get; private init; }

    /// <summary>An int64 attribute.</summary>
    public static OnnxAttribute Int(string name, long value) => new(name, OnnxProto.Attribute.TypeInt) { IntValue = value };

    /// <summary>A float attribute (ONNX attributes are float32).</summary>
    public static OnnxAttribute Float(string name, double value) => new(name, OnnxProto.Attribute.TypeFloat) { FloatValue = (float)value };

    /// <summary>A string attribute.</summary>
    public static OnnxAttribute String(string name, string value) => new(name, OnnxProto.Attribute.TypeString) { StringValue = value };

    /// <summary>A list of int64.</summary>
    public static OnnxAttribute Ints(string name, params long[] values) => new(name, OnnxProto.Attribute.TypeInts) { IntsValue = values };

    /// <summary>A list of strings (the activations of a recurrent op).</summary>
    public static OnnxAttribute Strings(string name, params string[] values) => new(name, OnnxProto.Attribute.TypeStrings) { StringsValue = values };

    /// <summary>A list of floats.</summary>
    public static OnnxAttribute Floats(string name, params float[] values) => new(name, OnnxProto.Attribute.TypeFloats) { FloatsValue = values };

    /// <summary>A tensor attribute (the value of a Constant node).</summary>
    public static OnnxAttribute Tensor(string name, Tensor value) => new(name, OnnxProto.Attribute.TypeTensor) { TensorValue = value };

    internal void WriteTo(Formats.ProtoWriter w)
    {
        w.WriteString(OnnxProto.Attribute.Name, Name);
        w.WriteInt64(OnnxProto.Attribute.Type, Type);
        switch (Type)
        {
            case OnnxProto.Attribute.TypeInt: w.WriteInt64(OnnxProto.Attribute.I, IntValue); break;
            case OnnxProto.Attribute.TypeFloat: w.WriteFloat(OnnxProto.Attribute.F, FloatValue); break;
            case OnnxProto.Attribute.TypeString: w.WriteString(OnnxProto.Attribute.S, StringValue!); break;
            case OnnxProto.Attribute.TypeInts: foreach (long v in IntsValue!) w.WriteInt64(OnnxProto.Attribute.Ints, v); break;
            case OnnxProto.Attribute.TypeFloats: foreach (float v in FloatsValue!) w.WriteFloat(OnnxProto.Attribute.Floats, v); break;
            case OnnxProto.Attribute.TypeStrings: foreach (string v in StringsValue!) w.WriteString(OnnxProto.Attribute.Strings, v); break;
            case OnnxProto.Attribute.TypeTensor:
                var t = new Formats.ProtoWriter();
                OnnxExportContext.WriteTensor(t, "", TensorValue!);
                w.WriteMessage(OnnxProto.Attribute.T, t);
                break;
        }
    }
}
