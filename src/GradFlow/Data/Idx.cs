using System.Buffers.Binary;
using System.IO.Compression;

namespace GradFlow.Data;

/// <summary>
/// Reads and writes the IDX format of MNIST and Fashion-MNIST: two zero bytes, a type code (0x08 unsigned
/// byte, 0x09 signed byte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions,
/// each dimension as a big-endian int32, then the big-endian data; plain or gzip-compressed (detected from
/// the content). Reading checks the header against the data actually present before allocating the
/// tensor, so a truncated, corrupt or hostile file gives an InvalidDataException, never a crash, a hang or
/// an allocation larger than the file's content.
/// </summary>
public static class Idx
{
    private const int Chunk = 1 << 20;

    /// <summary>Reads a file as a tensor of <paramref name="dtype"/> (values converted; bytes keep 0..255).</summary>
    public static Tensor Read(string path, DType dtype = DType.Float32)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            return Read(fs, dtype);
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"{path}: {ex.Message}", ex);
        }
    }

    /// <summary>Reads IDX content (plain or gzip) from a stream.</summary>
    public static Tensor Read(Stream stream, DType dtype = DType.Float32)
    {
        Guard.NotNull(stream, "Idx.Read", nameof(stream));
        var head = new byte[2];
        int got = stream.ReadAtLeast(head, 2, throwOnEndOfStream: false);
        var rest = new PrefixedStream(head.AsSpan(0, got).ToArray(), stream);
        if (got == 2 && head[0] == 0x1F && head[1] == 0x8B)
        {
            // A gzip stream cut inside its 8-byte trailer still inflates completely, so check the trailer's
            // ISIZE (uncompressed length mod 2^32) ourselves when the file can be read from the end.
            uint? isize = stream.CanSeek ? TrailerSize(stream) : null;
            using var gz = new GZipStream(rest, CompressionMode.Decompress, leaveOpen: true);
            var (t, total) = ReadPlain(gz, dtype, knownLength: null);
            return isize is null || (uint)total == isize ? t : throw Bad("the gzip trailer does not match the data (truncated or corrupt file).");
        }
        long? length = stream.CanSeek ? stream.Length - stream.Position + got : null;
        return ReadPlain(rest, dtype, length).Tensor;
    }

    private static uint? TrailerSize(Stream stream)
    {
        long here = stream.Position;
        if (stream.Length - here < 18 - 2) return null; // shorter than a gzip header and trailer: let inflation report it
        stream.Position = stream.Length - 4;
        var b = new byte[4];
        stream.ReadExactly(b);
        stream.Position = here;
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    private static (Tensor Tensor, long TotalBytes) ReadPlain(Stream s, DType dtype, long? knownLength)
    {
        try
        {
            var magic = new byte[4];
            ReadAll(s, magic, "the 4-byte magic number");
            if (magic[0] != 0 || magic[1] != 0) throw Bad($"bad magic number {Convert.ToHexString(magic)}: an IDX file starts with two zero bytes.");
            if (magic[2] is not (0x08 or 0x09 or 0x0B or 0x0C or 0x0D or 0x0E)) throw Bad($"unknown IDX type code 0x{magic[2]:X2}.");
            int elementSize = ElementSize(magic[2]);
            int rank = magic[3];
            if (rank is 0 or > 8) throw Bad($"{rank} dimensions (IDX files here have 1 to 8).");
            var dimBytes = new byte[4 * rank];
            ReadAll(s, dimBytes, $"the {rank} dimensions");
            var shape = new int[rank];
            long count = 1;
            for (int i = 0; i < rank; i++)
            {
                uint d = BinaryPrimitives.ReadUInt32BigEndian(dimBytes.AsSpan(4 * i));
                if (d > int.MaxValue) throw Bad($"dimension {i} is {d}.");
                shape[i] = (int)d;
                count *= d;
                if (count > int.MaxValue) throw Bad($"dimensions [{string.Join(", ", shape.Take(i + 1))}...] hold more than {int.MaxValue} elements.");
            }
            long bytes = count * elementSize;
            if (knownLength is long len && len != 4 + 4L * rank + bytes)
                throw Bad($"the header promises {bytes} bytes of data for shape [{string.Join(", ", shape)}], the file holds {len - 4 - 4L * rank}.");
            var data = ReadExactly(s, bytes, shape);
            if (s.ReadByte() != -1) throw Bad($"there are bytes after the {bytes} bytes of data the header promises.");
            return (ToTensor(data, magic[2], shape, dtype), 4 + 4L * rank + bytes);
        }
        catch (EndOfStreamException ex)
        {
            throw Bad("the file ended early.", ex);
        }
    }

    // Reads in chunks as the data arrives, so a header that promises more than a (compressed) stream holds
    // costs no more memory than the stream actually delivers. The chunks are converted as they are, without
    // first being joined into one array (that copy was 47 MB for Fashion-MNIST's training images).
    private static List<byte[]> ReadExactly(Stream s, long bytes, int[] shape)
    {
        var chunks = new List<byte[]>();
        long have = 0;
        while (have < bytes)
        {
            var c = GC.AllocateUninitializedArray<byte>((int)Math.Min(Chunk, bytes - have));
            int n = s.ReadAtLeast(c, c.Length, throwOnEndOfStream: false);
            if (n < c.Length)
                throw Bad($"the data ends after {have + n} of the {bytes} bytes that shape [{string.Join(", ", shape)}] needs (truncated file?).");
            chunks.Add(c);
            have += n;
        }
        return chunks;
    }

    // Chunk boundaries fall on element boundaries: Chunk is a multiple of every element size.
    private static Tensor ToTensor(List<byte[]> chunks, byte type, int[] shape, DType dtype)
    {
        var t = Tensor.Empty(shape, dtype);
        int at = 0;
        foreach (var raw in chunks)
        {
            int count = raw.Length / ElementSize(type);
            switch (dtype)
            {
                case DType.Float32: { var d = t.Span<float>().Slice(at, count); for (int i = 0; i < count; i++) d[i] = (float)Value(raw, type, i); break; }
                case DType.Float64: { var d = t.Span<double>().Slice(at, count); for (int i = 0; i < count; i++) d[i] = Value(raw, type, i); break; }
                default: { var d = t.Span<long>().Slice(at, count); for (int i = 0; i < count; i++) d[i] = (long)Value(raw, type, i); break; }
            }
            at += count;
        }
        return t;
    }

    private static int ElementSize(byte type) => type switch
    {
        0x08 or 0x09 => 1,
        0x0B => 2,
        0x0C or 0x0D => 4,
        _ => 8,
    };

    private static double Value(byte[] raw, byte type, int i) => type switch
    {
        0x08 => raw[i],
        0x09 => (sbyte)raw[i],
        0x0B => BinaryPrimitives.ReadInt16BigEndian(raw.AsSpan(2 * i)),
        0x0C => BinaryPrimitives.ReadInt32BigEndian(raw.AsSpan(4 * i)),
        0x0D => BinaryPrimitives.ReadSingleBigEndian(raw.AsSpan(4 * i)),
        _ => BinaryPrimitives.ReadDoubleBigEndian(raw.AsSpan(8 * i)),
    };

    /// <summary>Writes a tensor as unsigned bytes (type 0x08; values must be integers in 0..255), optionally gzip-compressed.</summary>
    public static void WriteBytes(string path, Tensor t, bool gzip = false)
    {
        Guard.NotNull(t, "Idx.WriteBytes", nameof(t));
        var values = t.ToDoubleArray();
        if (t.Rank is 0 or > 8) Guard.ThrowArg(nameof(WriteBytes), nameof(t), $"IDX holds 1 to 8 dimensions, got shape {Guard.Shape(t)}.");
        var bytes = new byte[4 + 4 * t.Rank + values.Length];
        bytes[2] = 0x08;
        bytes[3] = (byte)t.Rank;
        for (int i = 0; i < t.Rank; i++) BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * i), t.Size(i));
        for (int i = 0; i < values.Length; i++)
        {
            if (values[i] is < 0 or > 255 || values[i] != Math.Floor(values[i]))
                Guard.ThrowArg(nameof(WriteBytes), nameof(t), $"element {i} is {values[i]}, not a byte.");
            bytes[4 + 4 * t.Rank + i] = (byte)values[i];
        }
        GradFlow.Formats.AtomicFile.Write(path, s =>
        {
            if (!gzip) { s.Write(bytes); return; }
            using var gz = new GZipStream(s, CompressionLevel.Fastest, leaveOpen: true);
            gz.Write(bytes);
        });
    }

    private static void ReadAll(Stream s, byte[] buffer, string what)
    {
        if (s.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false) < buffer.Length) throw Bad($"the file ends inside {what}.");
    }

    private static InvalidDataException Bad(string message, Exception? inner = null) => new($"IDX: {message}", inner);

    /// <summary>A read-only stream that replays a few bytes already read (the gzip sniff) before the rest.</summary>
    private sealed class PrefixedStream(byte[] prefix, Stream inner) : Stream
    {
        private int _pos;

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (_pos < prefix.Length)
            {
                int n = Math.Min(buffer.Length, prefix.Length - _pos);
                prefix.AsSpan(_pos, n).CopyTo(buffer);
                _pos += n;
                return n;
            }
            return inner.Read(buffer);
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
