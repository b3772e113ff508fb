using System.Buffers.Binary;
using System.Text;

namespace GradFlow.Formats;

/// <summary>
/// Reads the protobuf wire format over bytes already in memory, trusting nothing: a varint longer than ten
/// bytes, a length beyond the bytes that remain, a group or an unknown wire type is an InvalidDataException
/// naming the byte offset in the file. Length-delimited fields are returned as slices of the input, so a
/// hostile length can never make the reader allocate: what it returns is at most what is present.
/// </summary>
internal ref struct ProtoReader
{
    public const int Varint = 0, Fixed64 = 1, LengthDelimited = 2, Fixed32 = 5;

    private readonly ReadOnlySpan<byte> _data;
    private readonly long _base;
    private int _pos;

    /// <summary>A reader over <paramref name="data"/>, which starts at byte <paramref name="fileOffset"/> of the file (for messages).</summary>
    public ProtoReader(ReadOnlySpan<byte> data, long fileOffset = 0)
    {
        _data = data;
        _base = fileOffset;
    }

    /// <summary>The file offset of the next byte.</summary>
    public readonly long Offset => _base + _pos;

    /// <summary>True when every byte has been read.</summary>
    public readonly bool End => _pos >= _data.Length;

    /// <summary>Reads the next key; false at the end of the message.</summary>
    public bool Next(out int field, out int wireType)
    {
        if (End)
        {
            (field, wireType) = (0, 0);
            return false;
        }
        long at = Offset;
        ulong key = ReadVarint();
        wireType = (int)(key & 7);
        ulong f = key >> 3;
        if (f == 0 || f > 536_870_911) throw Bad($"field number {f} is not valid", at);
        if (wireType is not (Varint or Fixed64 or LengthDelimited or Fixed32)) throw Bad($"wire type {wireType} of field {f} is not supported", at);
        field = (int)f;
        return true;
    }

    public ulong ReadVarint()
    {
        long at = Offset;
        ulong value = 0;
        // At most ten bytes: the tenth may only carry the 64th bit, so a longer varint fails as an overflow there.
        for (int shift = 0; ; shift += 7)
        {
            if (_pos >= _data.Length) throw Bad("the data ends inside a varint", at);
            byte b = _data[_pos++];
            if (shift == 63 && b > 1) throw Bad("a varint overflows 64 bits", at);
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return value;
        }
    }

    public long ReadInt64() => (long)ReadVarint();

    /// <summary>A varint that must fit an int (enums, int32 fields, counts).</summary>
    public int ReadInt32()
    {
        long at = Offset;
        long v = ReadInt64();
        if (v is < int.MinValue or > int.MaxValue) throw Bad($"value {v} does not fit 32 bits", at);
        return (int)v;
    }

    public float ReadFloat() => BinaryPrimitives.ReadSingleLittleEndian(Take(4));

    public double ReadDouble() => BinaryPrimitives.ReadDoubleLittleEndian(Take(8));

    /// <summary>A length-delimited field's bytes (a slice of the input: nothing is allocated).</summary>
    public ReadOnlySpan<byte> ReadBytes(out long fileOffset)
    {
        long at = Offset;
        ulong n = ReadVarint();
        if (n > (ulong)(_data.Length - _pos)) throw Bad($"a length of {n} bytes exceeds the {_data.Length - _pos} that remain", at);
        fileOffset = Offset;
        return Take((int)n);
    }

    public ReadOnlySpan<byte> ReadBytes() => ReadBytes(out _);

    /// <summary>A nested message, read by a reader that reports file offsets.</summary>
    public ProtoReader ReadMessage()
    {
        var bytes = ReadBytes(out long at);
        return new ProtoReader(bytes, at);
    }

    public string ReadString()
    {
        long at = Offset;
        var bytes = ReadBytes();
        try
        {
            return new UTF8Encoding(false, true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw Bad("a string is not valid UTF-8", at);
        }
    }

    /// <summary>Skips a field of <paramref name="wireType"/> whose key was just read.</summary>
    public void Skip(int wireType)
    {
        switch (wireType)
        {
            case Varint: ReadVarint(); break;
            case Fixed64: Take(8); break;
            case Fixed32: Take(4); break;
            default: ReadBytes(); break;
        }
    }

    /// <summary>
    /// Appends a repeated int64 field to <paramref name="into"/>, packed (one length-delimited run of varints) or
    /// not (one varint per key), as parsers must accept both.
    /// </summary>
    public void ReadRepeatedInt64(int wireType, List<long> into, int limit)
    {
        if (wireType == Varint)
        {
            if (into.Count >= limit) throw Bad($"more than {limit} values in a repeated field", Offset);
            into.Add(ReadInt64());
            return;
        }
        if (wireType != LengthDelimited) throw Bad($"wire type {wireType} for a repeated integer", Offset);
        var packed = ReadMessage();
        while (!packed.End)
        {
            if (into.Count >= limit) throw Bad($"more than {limit} values in a repeated field", packed.Offset);
            into.Add(packed.ReadInt64());
        }
    }

    /// <summary>Appends a repeated float field (fixed32), packed or not.</summary>
    public void ReadRepeatedFloat(int wireType, List<float> into, int limit)
    {
        if (wireType == Fixed32)
        {
            if (into.Count >= limit) throw Bad($"more than {limit} values in a repeated field", Offset);
            into.Add(ReadFloat());
            return;
        }
        if (wireType != LengthDelimited) throw Bad($"wire type {wireType} for a repeated float", Offset);
        var packed = ReadMessage();
        while (!packed.End)
        {
            if (into.Count >= limit) throw Bad($"more than {limit} values in a repeated field", packed.Offset);
            into.Add(packed.ReadFloat());
        }
    }

    /// <summary>Checks that a field has the wire type its schema gives.</summary>
    public readonly void Expect(int wireType, int expected, string field)
    {
        if (wireType != expected) throw Bad($"field {field} has wire type {wireType}, expected {expected}", Offset);
    }

    private ReadOnlySpan<byte> Take(int n)
    {
        if (n > _data.Length - _pos) throw Bad($"the data ends {n - (_data.Length - _pos)} bytes short of a {n}-byte value", Offset);
        var span = _data.Slice(_pos, n);
        _pos += n;
        return span;
    }

    /// <summary>An InvalidDataException naming the byte offset (the caller adds the file name).</summary>
    public static InvalidDataException Bad(string message, long offset) => new($"protobuf: {message} at byte {offset}.");
}
