namespace GradFlow.Onnx;

/// <summary>
/// The field numbers and enums of onnx.proto (onnx/onnx, IR version 8) that GradFlow writes and reads.
/// Only these messages are touched: ModelProto, OperatorSetIdProto, GraphProto, NodeProto, AttributeProto,
/// TensorProto, ValueInfoProto, TypeProto(.Tensor), TensorShapeProto(.Dimension).
/// </summary>
internal static class OnnxProto
{
    /// <summary>IR version 8 goes with opsets up to 18; ONNX Runtime 1.x and onnx 1.13 read it.</summary>
    public const long IrVersion = 8;

    public const int Opset = 17;

    public static class Model
    {
        public const int IrVersion = 1, ProducerName = 2, ProducerVersion = 3, Domain = 4, ModelVersion = 5, DocString = 6, Graph = 7, OpsetImport = 8;
    }

    public static class OpsetId
    {
        public const int Domain = 1, Version = 2;
    }

    public static class Graph
    {
        public const int Node = 1, Name = 2, Initializer = 5, DocString = 10, Input = 11, Output = 12, ValueInfo = 13;
    }

    public static class Node
    {
        public const int Input = 1, Output = 2, Name = 3, OpType = 4, Attribute = 5, DocString = 6, Domain = 7;
    }

    public static class Attribute
    {
        public const int Name = 1, F = 2, I = 3, S = 4, T = 5, G = 6, Floats = 7, Ints = 8, Strings = 9, Type = 20;

        // AttributeProto.AttributeType
        public const int TypeFloat = 1, TypeInt = 2, TypeString = 3, TypeTensor = 4, TypeGraph = 5, TypeFloats = 6, TypeInts = 7, TypeStrings = 8;
    }

    public static class TensorField
    {
        public const int Dims = 1, DataType = 2, FloatData = 4, Int32Data = 5, StringData = 6, Int64Data = 7, Name = 8, RawData = 9, DoubleData = 10,
            ExternalData = 13, DataLocation = 14;
    }

    public static class ValueInfo
    {
        public const int Name = 1, Type = 2;
    }

    public static class TypeField
    {
        public const int TensorType = 1, ElemType = 1, Shape = 2;
    }

    public static class ShapeField
    {
        public const int Dim = 1, DimValue = 1, DimParam = 2;
    }

    // TensorProto.DataType
    public const int Float = 1, UInt8 = 2, Int8 = 3, Int32 = 6, Int64 = 7, Bool = 9, Float16 = 10, Double = 11;

    /// <summary>The ONNX element type of a GradFlow dtype.</summary>
    public static int ElementType(DType dtype) => dtype switch
    {
        DType.Float32 => Float,
        DType.Float64 => Double,
        DType.Int64 => Int64,
        DType.Bool => Bool,
        _ => throw new NotSupportedException($"ONNX: dtype {dtype} has no ONNX element type here."),
    };
}
