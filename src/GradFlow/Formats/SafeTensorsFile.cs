using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace GradFlow.Formats;

/// <summary>
/// An open safetensors file whose header has been read and checked, and whose tensors are read only when asked:
/// a 10 GB checkpoint can give one layer's weights without reading the rest (each <see cref="Read"/> seeks to the
/// tensor's bytes). The header is validated whole on open: types, shapes, sizes, offsets tiling the data section
/// exactly, unique names. Errors are InvalidDataException naming the file and the byte.
/// </summary>
public sealed class SafeTensorsFile : IDisposable
{
    private readonly Stream _stream;
    private readonly string? _path;
    private readonly bool _ownsStream;
    private readonly Dictionary<string, Entry> _entries = [];
    private readonly List<string> _names = [];
    private readonly Dictionary<string, string> _metadata = [];
    private readonly long _dataStart, _dataLength;

    private sealed record Entry(string Name, SafeTensorsDType Type, int[] Shape, long Begin, long End);

    /// <summary>Opens <paramref name="path"/> and reads its header.</summary>
    public static SafeTensorsFile Open(string path)
    {
        Guard.NotNull(path, "SafeTensorsFile.Open", nameof(path));
        var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            return new SafeTensorsFile(fs, path, ownsStream: true);
        }
        catch
        {
            fs.Dispose();
            throw;
        }
    }

    internal SafeTensorsFile(Stream stream, string? path, bool ownsStream)
    {
        (_stream, _path, _ownsStream) = (stream, path, ownsStream);
        long start = stream.Position;
        long available = stream.Length - start;
        if (available < 8) throw Bad($"the file has {available} bytes, fewer than the 8-byte header length.");
        Span<byte> len = stackalloc byte[8];
        stream.ReadExactly(len);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(len);
        if (n > SafeTensors.MaxHeaderSize) throw Bad($"header length {n} (byte 0) exceeds the limit of {SafeTensors.MaxHeaderSize} bytes.");
        if (n > (ulong)(available - 8)) throw Bad($"header length {n} (byte 0) is larger than the {available - 8} bytes after it (truncated file?).");
        if (n < 2) throw Bad($"header length {n} (byte 0) is too small for a JSON object.");
        var header = new byte[n];
        stream.ReadExactly(header);
        _dataStart = start + 8 + (long)n;
        _dataLength = available - 8 - (long)n;
        ParseHeader(header);
        long position = 0;
        foreach (var e in _entries.Values.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (e.Begin != position)
                throw Bad($"tensor '{e.Name}' starts at byte {e.Begin} of the data (file byte {_dataStart + e.Begin}), expected {position} (overlapping or gapped offsets).");
            position = e.End;
        }
        if (position != _dataLength) throw Bad($"the tensors cover {position} bytes of data but the file holds {_dataLength} after the header.");
    }

    /// <summary>The tensor names, in header order.</summary>
    public IReadOnlyList<string> Names => _names;

    /// <summary>The "__metadata__" strings (empty if none).</summary>
    public IReadOnlyDictionary<string, string> Metadata => _metadata;

    /// <summary>The element type a tensor has in the file.</summary>
    public SafeTensorsDType StoredAs(string name) => Get(name).Type;

    /// <summary>A tensor's shape.</summary>
    public int[] Shape(string name) => (int[])Get(name).Shape.Clone();

    /// <summary>Reads one tensor (F16/BF16 widened to float32, narrow integers to int64, BOOL to bool).</summary>
    public Tensor Read(string name)
    {
        var e = Get(name);
        var dtype = e.Type.ReadAs();
        int count = (int)((e.End - e.Begin) / e.Type.Size());
        var array = Storage.NewArray(dtype, count, zeroed: false);
        try
        {
            _stream.Position = _dataStart + e.Begin;
            if (e.Type == SafeTensorsTypes.Natural(dtype) && e.Type != SafeTensorsDType.BOOL)
            {
                // The array read is the tensor's storage: no second copy.
                var bytes = array switch
                {
                    float[] f => MemoryMarshal.AsBytes(f.AsSpan()),
                    double[] d => MemoryMarshal.AsBytes(d.AsSpan()),
                    _ => MemoryMarshal.AsBytes(((long[])array).AsSpan()),
                };
                _stream.ReadExactly(bytes);
                if (!BitConverter.IsLittleEndian) SafeTensorsTypes.Decode(e.Type, bytes.ToArray(), array, 0);
            }
            else
            {
                // Widened block by block from a small buffer: memory is the tensor plus 64 KB.
                var buffer = new byte[1 << 16];
                int per = buffer.Length / e.Type.Size();
                for (int at = 0; at < count; at += per)
                {
                    int k = Math.Min(per, count - at);
                    var chunk = buffer.AsSpan(0, k * e.Type.Size());
                    _stream.ReadExactly(chunk);
                    if (!SafeTensorsTypes.Decode(e.Type, chunk, array, at))
                        throw Bad($"BOOL tensor '{name}' holds a byte other than 0 or 1 near file byte {_dataStart + e.Begin + (long)at * e.Type.Size()}.");
                }
            }
        }
        catch (EndOfStreamException ex)
        {
            throw Bad($"the file ended inside tensor '{name}' (file bytes {_dataStart + e.Begin} to {_dataStart + e.End}).", ex);
        }
        return new Tensor(new Storage(array, dtype), (int[])e.Shape.Clone());
    }

    /// <summary>Reads every tensor, in header order.</summary>
    public SafeTensorsContent ReadAll()
    {
        var tensors = new Dictionary<string, Tensor>(_names.Count);
        var stored = new Dictionary<string, SafeTensorsDType>(_names.Count);
        foreach (var name in _names)
        {
            tensors[name] = Read(name);
            stored[name] = _entries[name].Type;
        }
        return new SafeTensorsContent { Tensors = tensors, Metadata = new Dictionary<string, string>(_metadata), StoredAs = stored };
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsStream) _stream.Dispose();
    }

    private Entry Get(string name)
    {
        Guard.NotNull(name, "SafeTensorsFile.Read", nameof(name));
        if (!_entries.TryGetValue(name, out var e))
            Guard.ThrowArg("SafeTensorsFile.Read", nameof(name), $"'{name}' is not in {_path ?? "the file"} ({_names.Count} tensors).");
        return e!;
    }

    private InvalidDataException Bad(string message, Exception? inner = null) =>
        new(_path is null ? $"SafeTensors: {message}" : $"{_path}: SafeTensors: {message}", inner);

    private void ParseHeader(byte[] header)
    {
        if (!System.Text.Unicode.Utf8.IsValid(header)) throw Bad("the header (from byte 8) is not valid UTF-8.");
        JsonDocument doc;
        try
        {
            // Duplicates are found below, to name them.
            doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 8, AllowDuplicateProperties = true });
        }
        catch (JsonException ex)
        {
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
                ReadHeader(doc.RootElement);
            }
            catch (InvalidOperationException ex)
            {
                throw BadText(ex);
            }
        }
        if (header[0] != (byte)'{') throw Bad("the header does not begin with '{' at byte 8, as the format requires.");
    }

    // Valid UTF-8 can still escape a lone UTF-16 surrogate ("\ud800"), which no .NET string can hold.
    private InvalidDataException BadText(InvalidOperationException ex) => Bad($"the header holds a string that is not valid Unicode ({ex.Message}).", ex);

    private void ReadHeader(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) throw Bad($"the header is a JSON {root.ValueKind}, not an object.");
        bool sawMetadata = false;
        foreach (var prop in root.EnumerateObject())
        {
            if (prop.Name == SafeTensors.MetadataKey)
            {
                if (sawMetadata) throw Bad("the header names '__metadata__' twice.");
                sawMetadata = true;
                if (prop.Value.ValueKind != JsonValueKind.Object) throw Bad("__metadata__ is not an object.");
                foreach (var m in prop.Value.EnumerateObject())
                {
                    if (m.Value.ValueKind != JsonValueKind.String) throw Bad($"metadata '{m.Name}' is not a string.");
                    if (!_metadata.TryAdd(m.Name, m.Value.GetString()!)) throw Bad($"metadata names '{m.Name}' twice.");
                }
                continue;
            }
            if (_entries.ContainsKey(prop.Name)) throw Bad($"the header names '{prop.Name}' twice.");
            _entries[prop.Name] = ParseEntry(prop.Name, prop.Value);
            _names.Add(prop.Name);
        }
    }

    private Entry ParseEntry(string name, JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Object) throw Bad($"tensor '{name}' is not an object.");
        if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String) throw Bad($"tensor '{name}' has no dtype string.");
        if (!SafeTensorsTypes.TryParse(dt.GetString(), out var type))
            throw Bad($"tensor '{name}' has dtype {dt.GetString()}; GradFlow reads F64, F32, F16, BF16, I64, I32, I16, I8, U8 and BOOL.");
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
        if (end > _dataLength) throw Bad($"tensor '{name}' ends at byte {end} of the data but the data section has {_dataLength} bytes (truncated file?).");
        long expected = count * type.Size();
        if (end - begin != expected) throw Bad($"tensor '{name}' spans {end - begin} bytes but {type} [{string.Join(", ", shape)}] needs {expected}.");
        return new Entry(name, type, shape, begin, end);
    }
}
