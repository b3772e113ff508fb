using System.Buffers.Binary;

namespace GradFlow.Formats;

/// <summary>
/// TFRecord framing, the container of TensorBoard event files. Each record is
/// <c>uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)</c>, all little-endian,
/// so a reader can tell a torn or corrupted record from a good one.
/// </summary>
internal sealed class TfRecordWriter(Stream stream) : IDisposable
{
    /// <summary>Frames and writes one record.</summary>
    public void Write(ReadOnlySpan<byte> data)
    {
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], Crc32C.MaskedCompute(header[..8]));
        Span<byte> footer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(footer, Crc32C.MaskedCompute(data));
        stream.Write(header);
        stream.Write(data);
        stream.Write(footer);
    }

    /// <summary>Pushes buffered records to the operating system.</summary>
    public void Flush() => stream.Flush();

    /// <summary>Closes the stream.</summary>
    public void Dispose() => stream.Dispose();
}
