using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace GradFlow.Formats;

/// <summary>The tensors and string metadata of a safetensors file.</summary>
public sealed class SafeTensorsContent
{
    /// <summary>Tensors by name, in file order.</summary>
    public required Dictionary<string, Tensor> Tensors { get; init; }

    /// <summary>The "__metadata__" strings (empty if none).</summary>
    public required Dictionary<string, string> Metadata { get; init; }

    /// <summary>The element type each tensor had in the file (F16 is read as float32, I32 as int64, ...).</summary>
    public Dictionary<string, SafeTensorsDType> StoredAs { get; init; } = [];
}

/// <summary>
/// Reads and writes the safetensors format (huggingface/safetensors): an 8-byte little-endian header length N,
/// N bytes of JSON mapping each name to {"dtype", "shape", "data_offsets": [begin, end]} (plus an optional
/// "__metadata__" object of strings), then the raw little-endian data. All ten types GradFlow meets in practice
/// are read and written: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL (see <see cref="SafeTensorsDType"/>),
/// scalars (shape []) and empty tensors included. Reading trusts nothing: the tensors must tile the data section
/// exactly (no holes, no overlaps), names are unique, every size is checked against the file before anything is
/// allocated, so a truncated, corrupt or hostile file is an InvalidDataException naming the file and the byte,
/// never a crash, a hang or an allocation larger than the file. Tensors are read one at a time from the stream;
/// <see cref="SafeTensorsFile"/> reads only the tensors asked for.
/// </summary>
public static class SafeTensors
{
    /// <summary>The largest header accepted (as the reference implementation's 100 MB).</summary>
    public const int MaxHeaderSize = 100_000_000;

    internal const string MetadataKey = "__metadata__";

    /// <summary>Writes a file atomically (see <see cref="AtomicFile"/>).</summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null,
        IReadOnlyDictionary<string, SafeTensorsDType>? storeAs = null) =>
        AtomicFile.Write(path, s => Write(s, tensors, metadata, storeAs));

    /// <summary>Reads a file; damage gives an InvalidDataException naming the file.</summary>
    public static SafeTensorsContent Load(string path)
    {
        Guard.NotNull(path, "SafeTensors.Load", nameof(path));
        using var file = SafeTensorsFile.Open(path);
        return file.ReadAll();
    }

    /// <summary>
    /// Writes tensors (each made contiguous) and metadata to a stream, in the dictionary's order. Each tensor is
    /// stored in its own dtype (float32 as F32, bool as BOOL) unless <paramref name="storeAs"/> names a type:
    /// floats may be stored as F64/F32/F16/BF16 (rounded to nearest even), integers as I64/I32/I16/I8/U8 (a value
    /// out of range is an ArgumentException naming the tensor).
    /// </summary>
    public static void Write(Stream stream, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null,
        IReadOnlyDictionary<string, SafeTensorsDType>? storeAs = null)
    {
        const string op = "SafeTensors.Write";
        Guard.NotNull(stream, op, nameof(stream));
        Guard.NotNull(tensors, op, nameof(tensors));
        var types = new List<SafeTensorsDType>(tensors.Count);
        var header = new MemoryStream();
        using (var w = new Utf8JsonWriter(header))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject(MetadataKey);
                foreach (var (k, v) in metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, t) in tensors)
            {
                if (string.IsNullOrEmpty(name) || name == MetadataKey) Guard.ThrowArg(op, nameof(tensors), $"invalid tensor name '{name}'.");
                Guard.NotNull(t, op, $"tensors[{name}]");
                var type = storeAs is not null && storeAs.TryGetValue(name, out var st) ? st : SafeTensorsTypes.Natural(t.DType);
                if (!SafeTensorsTypes.Compatible(t.DType, type))
                    Guard.ThrowArg(op, nameof(storeAs), $"tensor '{name}' is {t.DType.Name()} {Guard.Shape(t)} and cannot be stored as {type}.");
                types.Add(type);
                long size = (long)t.NumEl * type.Size();
                w.WriteStartObject(name);
                w.WriteString("dtype", type.ToString());
                w.WriteStartArray("shape");
                foreach (int d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + size);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += size;
            }
            w.WriteEndObject();
        }
        if (storeAs is not null)
            foreach (var key in storeAs.Keys)
                if (!tensors.ContainsKey(key)) Guard.ThrowArg(op, nameof(storeAs), $"names '{key}', which is not among the tensors.");
        // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
        while ((header.Length & 7) != 0) header.WriteByte((byte)' ');
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
        stream.Write(len);
        header.Position = 0;
        header.CopyTo(stream);
        int i = 0;
        foreach (var (name, t) in tensors) WriteData(stream, name, t, types[i++]);
    }

    // A strided tensor is copied without recording an op: saving a checkpoint mid-step is not a step's op.
    private static void WriteData(Stream stream, string name, Tensor t, SafeTensorsDType type)
    {
        Array data = t.DType switch
        {
            DType.Float32 => Flat<float>(t),
            DType.Float64 => Flat<double>(t),
            _ => Flat<long>(t),
        };
        if (type == SafeTensorsTypes.Natural(t.DType) && type != SafeTensorsDType.BOOL && BitConverter.IsLittleEndian)
        {
            stream.Write(t.DType switch
            {
                DType.Float32 => MemoryMarshal.AsBytes(((float[])data).AsSpan()),
                DType.Float64 => MemoryMarshal.AsBytes(((double[])data).AsSpan()),
                _ => MemoryMarshal.AsBytes(((long[])data).AsSpan()),
            });
            return;
        }
        // Converted in blocks, so a narrowed copy of a large tensor never exists whole.
        const int block = 8192;
        var buffer = new byte[block * 8];
        for (int from = 0; from < t.NumEl; from += block)
        {
            int n = Math.Min(block, t.NumEl - from);
            SafeTensorsTypes.Encode(type, data, from, n, buffer, name);
            stream.Write(buffer, 0, n * type.Size());
        }
    }

    // The storage array itself when it is exactly the tensor's elements, else a contiguous copy.
    private static T[] Flat<T>(Tensor t) where T : unmanaged
    {
        if (t.IsContiguous && t.Offset == 0)
        {
            var data = t.Data<T>();
            if (data.Length == t.NumEl) return data;
        }
        return t.CopyElements<T>();
    }

    /// <summary>Reads from a seekable stream positioned at the start of the file; the stream's length bounds every size.</summary>
    public static SafeTensorsContent Read(Stream stream)
    {
        Guard.NotNull(stream, "SafeTensors.Read", nameof(stream));
        if (!stream.CanSeek) Guard.ThrowArg("SafeTensors.Read", nameof(stream), "the stream must be seekable, so sizes can be checked before reading.");
        return new SafeTensorsFile(stream, null, ownsStream: false).ReadAll();
    }

    internal static InvalidDataException Bad(string message, Exception? inner = null) => new($"SafeTensors: {message}", inner);
}

/// <summary>Byte-order reversal for big-endian hosts (files are always little-endian).</summary>
internal static class Endian
{
    public static void Reverse<T>(T[] a) where T : unmanaged => Reverse(a.AsSpan());

    public static void Reverse<T>(Span<T> a) where T : unmanaged
    {
        var bytes = MemoryMarshal.AsBytes(a);
        int size = System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        for (int i = 0; i < bytes.Length; i += size) bytes.Slice(i, size).Reverse();
    }
}
