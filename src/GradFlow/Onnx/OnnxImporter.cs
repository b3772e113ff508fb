namespace GradFlow.Onnx;

/// <summary>
/// Reads an ONNX model (opsets 13-17, one or more inputs, one output) into an <see cref="OnnxModule"/> that runs and trains
/// in GradFlow. A damaged file is an InvalidDataException naming the file and the byte offset; an operator outside
/// the imported set is a NotSupportedException naming the operator type and the node.
/// </summary>
public static class OnnxImporter
{
    /// <summary>Loads the model at <paramref name="path"/>.</summary>
    public static OnnxModule Load(string path)
    {
        Guard.NotNull(path, nameof(Load), nameof(path));
        // The whole file is read: its length is what every size in it is checked against.
        var bytes = File.ReadAllBytes(path);
        try
        {
            return new OnnxModule(OnnxModelReader.Read(bytes));
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"{path}: {ex.Message}", ex);
        }
        catch (NotSupportedException ex)
        {
            throw new NotSupportedException($"{path}: {ex.Message}", ex);
        }
    }

    /// <summary>Loads a model from its bytes.</summary>
    public static OnnxModule Load(ReadOnlySpan<byte> bytes) => new(OnnxModelReader.Read(bytes));
}
