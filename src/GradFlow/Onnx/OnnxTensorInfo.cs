using P = GradFlow.Onnx.OnnxProto;

namespace GradFlow.Onnx;

/// <summary>
/// A graph input or output as the file declares it (ONNX Runtime's NodeMetadata): its name, the GradFlow dtype a tensor
/// passed for it must have, ONNX's element type, and its shape. <see cref="Dimensions"/> is -1 for a symbolic or unknown
/// axis, whose name (if any) is in <see cref="SymbolicDimensions"/>; both are null when the file declares no shape.
/// </summary>
public sealed class OnnxTensorInfo
{
    internal OnnxTensorInfo(OnnxValueInfo info)
    {
        Name = info.Name;
        ElementType = info.ElementType;
        // ONNX's integer types are read as GradFlow's int64, as the initializers are.
        DType = info.ElementType switch
        {
            P.Float => GradFlow.DType.Float32,
            P.Double => GradFlow.DType.Float64,
            P.Int64 or P.Int32 or P.Int8 or P.UInt8 => GradFlow.DType.Int64,
            P.Bool => GradFlow.DType.Bool,
            _ => null,
        };
        if (info.Dims is { } dims)
        {
            Dimensions = [.. dims.Select(d => long.TryParse(d, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long v) && v <= int.MaxValue ? (int)v : -1)];
            SymbolicDimensions = [.. dims.Select((d, i) => Dimensions[i] >= 0 ? "" : d ?? "")];
        }
    }

    /// <summary>The value's name in the graph.</summary>
    public string Name { get; }

    /// <summary>ONNX's TensorProto.DataType code (1 float, 11 double, 7 int64, 9 bool; 0 when undeclared).</summary>
    public int ElementType { get; }

    /// <summary>The dtype GradFlow computes this value in; null when the file declares none GradFlow reads.</summary>
    public DType? DType { get; }

    /// <summary>The declared sizes, -1 for a symbolic or unknown axis; null when no shape is declared.</summary>
    public IReadOnlyList<int>? Dimensions { get; }

    /// <summary>The symbolic axis names ("batch"), "" for a fixed or unnamed axis; null when no shape is declared.</summary>
    public IReadOnlyList<string>? SymbolicDimensions { get; }

    /// <inheritdoc />
    public override string ToString() =>
        $"{Name}: {DType?.ToString() ?? "type " + ElementType} [{(Dimensions is null ? "?" : string.Join(", ", Dimensions.Select((d, i) => d >= 0 ? d.ToString(System.Globalization.CultureInfo.InvariantCulture) : SymbolicDimensions![i].Length > 0 ? SymbolicDimensions[i] : "?")))}]";
}
