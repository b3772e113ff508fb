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
}

/// <summary>
/// Reads and writes the safetensors format (huggingface/safetensors): an 8-byte little-endian header
/// length N, N bytes of JSON mapping each name to {"dtype", "shape", "data_offsets": [begin, end]} (plus
/// an optional "__metadata__" object of strings), then the raw little-endian data. Supports F32, F64 and
/// I64. Reading trusts nothing: every size is checked against the file before anything is allocated, so
/// a truncated, corrupt or hostile file gives an InvalidDataException naming the problem, never a crash,
/// a hang or an allocation larger than the file.
/// </summary>
public static class SafeTensors
{
    /// <summary>The largest header accepted (as the reference implementation's 100 MB).</summary>
    public const int MaxHeaderSize = 100_000_000;

    private const string MetadataKey = "__metadata__";

    /// <summary>Writes a file atomically (see <see cref="AtomicFile"/>).</summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        AtomicFile.Write(path, s => Write(s, tensors, metadata));

    /// <summary>Reads a file; damage gives an InvalidDataException naming the file.</summary>
    public static SafeTensorsContent Load(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            return Read(fs);
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"{path}: {ex.Message}", ex);
        }
    }

    /// <summary>Writes tensors (each made contiguous) and metadata to a stream, in the dictionary's order.</summary>
    public static void Write(Stream stream, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        Guard.NotNull(stream, "SafeTensors.Write", nameof(stream));
        Guard.NotNull(tensors, "SafeTensors.Write", nameof(tensors));
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
                if (string.IsNullOrEmpty(name) || name == MetadataKey)
                    Guard.ThrowArg("SafeTensors.Write", nameof(tensors), $"invalid tensor name '{name}'.");
                Guard.NotNull(t, "SafeTensors.Write", $"tensors[{name}]");
                long size = (long)t.NumEl * t.DType.ElementSize();
                w.WriteStartObject(name);
                w.WriteString("dtype", DTypeCode(t.DType));
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
        // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
        while ((header.Length & 7) != 0) header.WriteByte((byte)' ');
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
        stream.Write(len);
        header.Position = 0;
        header.CopyTo(stream);
        foreach (var t in tensors.Values) WriteData(stream, t);
    }

    // A strided tensor is copied without recording an op: saving a checkpoint mid-step is not a step's op.
    private static void WriteData(Stream stream, Tensor t)
    {
        switch (t.DType)
        {
            case DType.Float32: WriteLittleEndian(stream, t.IsContiguous ? t.Span<float>() : t.CopyElements<float>()); break;
            case DType.Float64: WriteLittleEndian(stream, t.IsContiguous ? t.Span<double>() : t.CopyElements<double>()); break;
            default: WriteLittleEndian(stream, t.IsContiguous ? t.Span<long>() : t.CopyElements<long>()); break;
        }
    }

    private static void WriteLittleEndian<T>(Stream stream, Span<T> data) where T : unmanaged
    {
        if (BitConverter.IsLittleEndian) { stream.Write(MemoryMarshal.AsBytes(data)); return; }
        var copy = data.ToArray();
        Endian.Reverse<T>(copy);
        stream.Write(MemoryMarshal.AsBytes(copy.AsSpan()));
    }

    /// <summary>Reads from a seekable stream positioned at the start of the file; the stream's length bounds every size.</summary>
    public static SafeTensorsContent Read(Stream stream)
    {
        Guard.NotNull(stream, "SafeTensors.Read", nameof(stream));
        if (!stream.CanSeek) Guard.ThrowArg("SafeTensors.Read", nameof(stream), "the stream must be seekable, so sizes can be checked before reading.");
        long available = stream.Length - stream.Position;
        if (available < 8) throw Bad($"the file has {available} bytes, fewer than the 8-byte header length.");
        Span<byte> len = stackalloc byte[8];
        stream.ReadExactly(len);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(len);
        if (n > MaxHeaderSize) throw Bad($"header length {n} exceeds the limit of {MaxHeaderSize} bytes.");
        if (n > (ulong)(available - 8)) throw Bad($"header length {n} is larger than the {available - 8} bytes after it (truncated file?).");
        if (n < 2) throw Bad($"header length {n} is too small for a JSON object.");
        var headerBytes = new byte[n];
        stream.ReadExactly(headerBytes);
        long dataLength = available - 8 - (long)n;
        var (entries, metadata) = ParseHeader(headerBytes, dataLength);
        var tensors = new Dictionary<string, Tensor>(entries.Count);
        long position = 0;
        foreach (var e in entries.OrderBy(e => e.Begin))
        {
            if (e.Begin != position) throw Bad($"tensor '{e.Name}' starts at byte {e.Begin} of the data, expected {position} (overlapping or gapped offsets).");
            position = e.End;
        }
        if (position != dataLength) throw Bad($"the tensors cover {position} bytes of data but the file holds {dataLength} after the header.");
        long dataStart = stream.Position;
        foreach (var e in entries)
        {
            stream.Position = dataStart + e.Begin;
            tensors[e.Name] = ReadTensor(stream, e);
        }
        return new SafeTensorsContent { Tensors = tensors, Metadata = metadata };
    }

    private sealed record Entry(string Name, DType DType, int[] Shape, long Begin, long End);

    private static (List<Entry>, Dictionary<string, string>) ParseHeader(byte[] header, long dataLength)
    {
        if (!System.Text.Unicode.Utf8.IsValid(header)) throw Bad("the header is not valid UTF-8.");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 8, AllowDuplicateProperties = false });
        }
        catch (JsonException ex)
        {
            // The header starts at byte 8 of the file.
            throw Bad($"the header is not valid JSON at byte {8 + (ex.BytePositionInLine ?? 0)} ({ex.Message}).", ex);
        }
        catch (InvalidOperationException ex)
        {
            throw BadText(ex);
        }
        using (doc)
        {
            try
            {
                return ReadHeader(doc.RootElement, dataLength);
            }
            catch (InvalidOperationException ex)
            {
                throw BadText(ex);
            }
        }
    }

    // Valid UTF-8 can still escape a lone UTF-16 surrogate ("\ud800"), which no .NET string can hold.
    private static InvalidDataException BadText(InvalidOperationException ex) =>
        Bad($"the header holds a string that is not valid Unicode ({ex.Message}).", ex);

    private static (List<Entry>, Dictionary<string, string>) ReadHeader(JsonElement root, long dataLength)
    {
        if (root.ValueKind != JsonValueKind.Object) throw Bad($"the header is a JSON {root.ValueKind}, not an object.");
        var entries = new List<Entry>();
        var metadata = new Dictionary<string, string>();
        var names = new HashSet<string>();
        foreach (var prop in root.EnumerateObject())
        {
            if (!names.Add(prop.Name)) throw Bad($"the header names '{prop.Name}' twice.");
            if (prop.Name == MetadataKey)
            {
                if (prop.Value.ValueKind != JsonValueKind.Object) throw Bad("__metadata__ is not an object.");
                foreach (var m in prop.Value.EnumerateObject())
                {
                    if (m.Value.ValueKind != JsonValueKind.String) throw Bad($"metadata '{m.Name}' is not a string.");
                    if (!metadata.TryAdd(m.Name, m.Value.GetString()!)) throw Bad($"metadata names '{m.Name}' twice.");
                }
                continue;
            }
            entries.Add(ParseEntry(prop.Name, prop.Value, dataLength));
        }
        return (entries, metadata);
    }

    private static Entry ParseEntry(string name, JsonElement e, long dataLength)
    {
        if (e.ValueKind != JsonValueKind.Object) throw Bad($"tensor '{name}' is not an object.");
        if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String) throw Bad($"tensor '{name}' has no dtype string.");
        var dtype = dt.GetString() switch
        {
            "F32" => DType.Float32,
            "F64" => DType.Float64,
            "I64" => DType.Int64,
            var other => throw Bad($"tensor '{name}' has dtype {other}; GradFlow reads F32, F64 and I64."),
        };
        if (!e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array) throw Bad($"tensor '{name}' has no shape array.");
        if (sh.GetArrayLength() > 32) throw Bad($"tensor '{name}' has {sh.GetArrayLength()} dimensions (at most 32).");
        var shape = new int[sh.GetArrayLength()];
        long count = 1;
        int k = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out int v) || v < 0) throw Bad($"tensor '{name}' has an invalid dimension {d}.");
            shape[k++] = v;
            count = v == 0 ? 0 : count > int.MaxValue / v ? long.MaxValue : count * v;
        }
        if (count > int.MaxValue) throw Bad($"tensor '{name}' shape [{string.Join(", ", shape)}] has too many elements.");
        if (!e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw Bad($"tensor '{name}' has no [begin, end] data_offsets.");
        if (off[0].ValueKind != JsonValueKind.Number || off[1].ValueKind != JsonValueKind.Number
            || !off[0].TryGetInt64(out long begin) || !off[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            throw Bad($"tensor '{name}' has invalid data_offsets {off}.");
        if (end > dataLength) throw Bad($"tensor '{name}' ends at byte {end} but the data section has {dataLength} bytes (truncated file?).");
        long expected = count * dtype.ElementSize();
        if (end - begin != expected) throw Bad($"tensor '{name}' spans {end - begin} bytes but {dtype.Name()} [{string.Join(", ", shape)}] needs {expected}.");
        return new Entry(name, dtype, shape, begin, end);
    }

    private static Tensor ReadTensor(Stream stream, Entry e)
    {
        int n = (int)((e.End - e.Begin) / e.DType.ElementSize());
        try
        {
            switch (e.DType)
            {
                // The array read is the tensor's storage: no second copy.
                case DType.Float32: return new Tensor(new Storage(ReadArray<float>(stream, n), DType.Float32), e.Shape);
                case DType.Float64: return new Tensor(new Storage(ReadArray<double>(stream, n), DType.Float64), e.Shape);
                default: return new Tensor(new Storage(ReadArray<long>(stream, n), DType.Int64), e.Shape);
            }
        }
        catch (EndOfStreamException ex)
        {
            throw Bad($"the file ended inside tensor '{e.Name}'.", ex);
        }
    }

    private static T[] ReadArray<T>(Stream stream, int n) where T : unmanaged
    {
        var a = GC.AllocateUninitializedArray<T>(n);
        stream.ReadExactly(MemoryMarshal.AsBytes(a.AsSpan()));
        if (!BitConverter.IsLittleEndian) Endian.Reverse<T>(a);
        return a;
    }

    private static string DTypeCode(DType d) => d switch
    {
        DType.Float32 => "F32",
        DType.Float64 => "F64",
        _ => "I64",
    };

    private static InvalidDataException Bad(string message, Exception? inner = null) => new($"SafeTensors: {message}", inner);
}

/// <summary>Byte-order reversal for big-endian hosts (files are always little-endian).</summary>
internal static class Endian
{
    public static void Reverse<T>(T[] a) where T : unmanaged
    {
        var bytes = MemoryMarshal.AsBytes(a.AsSpan());
        int size = System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        for (int i = 0; i < bytes.Length; i += size) bytes.Slice(i, size).Reverse();
    }
}
