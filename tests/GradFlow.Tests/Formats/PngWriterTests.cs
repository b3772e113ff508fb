using System.Buffers.Binary;
using System.IO.Compression;
using GradFlow.Formats;

namespace GradFlow.Tests.Formats;

public class PngWriterTests
{
    [Fact]
    public void EncodesHeaderChunksAndRowsThatDecodeBack()
    {
        var rgb = new byte[3 * 2 * 3];
        for (int i = 0; i < rgb.Length; i++) rgb[i] = (byte)(i * 13);
        var png = PngWriter.EncodeRgb(3, 2, rgb);
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, png[..8]);
        // IHDR: length 13, width 3, height 2, depth 8, colour type 2; its CRC is the known CRC-32 of type + data.
        Assert.Equal(13, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(8)));
        Assert.Equal("IHDR"u8.ToArray(), png[12..16]);
        Assert.Equal(3, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)));
        Assert.Equal(2, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20)));
        Assert.Equal(new byte[] { 8, 2, 0, 0, 0 }, png[24..29]);
        Assert.Equal(Crc32(png.AsSpan(12, 17)), BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(29)));
        int idatLen = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(33));
        Assert.Equal("IDAT"u8.ToArray(), png[37..41]);
        using var z = new ZLibStream(new MemoryStream(png, 41, idatLen), CompressionMode.Decompress);
        var rows = new MemoryStream();
        z.CopyTo(rows);
        var raw = rows.ToArray();
        Assert.Equal(2 * (1 + 9), raw.Length);
        Assert.Equal(0, raw[0]);
        Assert.Equal(rgb[..9], raw[1..10]);
        Assert.Equal(rgb[9..], raw[11..20]);
        Assert.Equal("IEND"u8.ToArray(), png[^8..^4]);
    }

    [Fact]
    public void RefusesWrongSizes()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => PngWriter.EncodeRgb(0, 1, []));
        Assert.Contains("needs 6 bytes", Assert.Throws<ArgumentException>(() => PngWriter.EncodeRgb(2, 1, new byte[5])).Message, StringComparison.Ordinal);
    }

    // Bitwise CRC-32 (ISO-HDLC), independent of the writer's table.
    private static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        return ~c;
    }
}
