using System.Buffers.Binary;
using System.Text;

namespace GradFlow.Formats;

/// <summary>
/// The few protobuf wire-format encodings TensorBoard's Event needs, written by hand: a key is
/// (field &lt;&lt; 3 | wire type); varints for integers (wire type 0), little-endian fixed64 doubles (1),
/// length-delimited strings, messages and packed repeated doubles (2), fixed32 floats (5).
/// Nested messages are encoded into their own writer first, then copied in behind their length.
/// </summary>
internal sealed class ProtoWriter
{
    private const int Varint = 0, Fixed64 = 1, LengthDelimited = 2, Fixed32 = 5;

    private byte[] _buffer = new byte[256];
    private int _length;

    /// <summary>The bytes written so far.</summary>
    public ReadOnlySpan<byte> Written => _buffer.AsSpan(0, _length);

    /// <summary>Forgets what was written, keeping the buffer.</summary>
    public void Clear() => _length = 0;

    public void WriteDouble(int field, double value)
    {
        WriteKey(field, Fixed64);
        BinaryPrimitives.WriteDoubleLittleEndian(Reserve(8), value);
    }

    public void WriteFloat(int field, float value)
    {
        WriteKey(field, Fixed32);
        BinaryPrimitives.WriteSingleLittleEndian(Reserve(4), value);
    }

    /// <summary>An int64 field: negative values take ten bytes (two's complement), as protobuf specifies.</summary>
    public void WriteInt64(int field, long value)
    {
        WriteKey(field, Varint);
        WriteVarint((ulong)value);
    }

    public void WriteString(int field, string value)
    {
        WriteKey(field, LengthDelimited);
        int count = Encoding.UTF8.GetByteCount(value);
        WriteVarint((ulong)count);
        Encoding.UTF8.GetBytes(value, Reserve(count));
    }

    public void WriteBytes(int field, ReadOnlySpan<byte> value)
    {
        WriteKey(field, LengthDelimited);
        WriteVarint((ulong)value.Length);
        value.CopyTo(Reserve(value.Length));
    }

    public void WriteMessage(int field, ProtoWriter message) => WriteBytes(field, message.Written);

    /// <summary>A packed repeated double: one key, the byte length, then the values as fixed64.</summary>
    public void WritePackedDoubles(int field, ReadOnlySpan<double> values)
    {
        WriteKey(field, LengthDelimited);
        WriteVarint((ulong)values.Length * 8);
        var span = Reserve(values.Length * 8);
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteDoubleLittleEndian(span[(i * 8)..], values[i]);
    }

    private void WriteKey(int field, int wireType) => WriteVarint((ulong)((field << 3) | wireType));

    private void WriteVarint(ulong value)
    {
        var span = Reserve(10);
        int n = 0;
        while (value >= 0x80)
        {
            span[n++] = (byte)(value | 0x80);
            value >>= 7;
        }
        span[n++] = (byte)value;
        _length -= 10 - n;
    }

    private Span<byte> Reserve(int count)
    {
        if (_length + count > _buffer.Length) Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + count));
        var span = _buffer.AsSpan(_length, count);
        _length += count;
        return span;
    }
}
