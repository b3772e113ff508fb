using System.Buffers.Binary;
using System.Text;
using GradFlow.Reporting;

namespace GradFlow.Tests.Reporting;

/// <summary>A test-side HistogramProto.</summary>
internal sealed record HistoProto(double Min, double Max, double Num, double Sum, double SumSquares, double[] BucketLimit, double[] Bucket);

/// <summary>A test-side Summary.Value: a scalar or a histogram.</summary>
internal sealed record ValueProto(string Tag, float? SimpleValue, HistoProto? Histo);

/// <summary>A test-side Event.</summary>
internal sealed record EventProto(double WallTime, long Step, string? FileVersion, List<ValueProto> Values);

/// <summary>
/// An independent reader of what TensorBoardWriter writes: TFRecord framing with both masked CRCs
/// checked, and a raw protobuf wire-format decoder for the Event fields GradFlow uses.
/// </summary>
internal static class TfEventReader
{
    public static List<byte[]> ReadRecords(byte[] file)
    {
        var records = new List<byte[]>();
        int pos = 0;
        while (pos < file.Length)
        {
            if (file.Length - pos < 12) throw new InvalidDataException($"truncated header at {pos}");
            ulong length = BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(pos));
            uint lengthCrc = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(pos + 8));
            if (lengthCrc != Mask(Crc32CReference(file.AsSpan(pos, 8)))) throw new InvalidDataException($"length CRC mismatch at {pos}");
            pos += 12;
            if ((ulong)(file.Length - pos) < length + 4) throw new InvalidDataException($"truncated record at {pos}");
            var data = file.AsSpan(pos, (int)length).ToArray();
            uint dataCrc = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(pos + (int)length));
            if (dataCrc != Mask(Crc32CReference(data))) throw new InvalidDataException($"data CRC mismatch at {pos}");
            records.Add(data);
            pos += (int)length + 4;
        }
        return records;
    }

    public static List<EventProto> ReadEvents(string path) => ReadRecords(File.ReadAllBytes(path)).Select(DecodeEvent).ToList();

    /// <summary>Bit-at-a-time CRC-32C, deliberately unlike the library's table and instruction paths.</summary>
    public static uint Crc32CReference(ReadOnlySpan<byte> data)
    {
        uint crc = ~0u;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        }
        return ~crc;
    }

    public static uint Mask(uint crc) => ((crc >> 15) | (crc << 17)) + 0xa282ead8u;

    public static EventProto DecodeEvent(byte[] data)
    {
        double wall = 0; long step = 0; string? version = null; var values = new List<ValueProto>();
        foreach (var f in Fields(data))
            switch (f.Number, f.WireType)
            {
                case (1, 1): wall = BitConverter.Int64BitsToDouble((long)f.Scalar); break;
                case (2, 0): step = (long)f.Scalar; break;
                case (3, 2): version = Encoding.UTF8.GetString(f.Bytes); break;
                case (5, 2):
                    foreach (var v in Fields(f.Bytes))
                        if (v is { Number: 1, WireType: 2 }) values.Add(DecodeValue(v.Bytes));
                        else throw new InvalidDataException($"unexpected Summary field {v.Number}");
                    break;
                default: throw new InvalidDataException($"unexpected Event field {f.Number}/{f.WireType}");
            }
        return new EventProto(wall, step, version, values);
    }

    private static ValueProto DecodeValue(byte[] data)
    {
        string tag = ""; float? simple = null; HistoProto? histo = null;
        foreach (var f in Fields(data))
            switch (f.Number, f.WireType)
            {
                case (1, 2): tag = Encoding.UTF8.GetString(f.Bytes); break;
                case (2, 5): simple = BitConverter.Int32BitsToSingle((int)f.Scalar); break;
                case (5, 2): histo = DecodeHisto(f.Bytes); break;
                default: throw new InvalidDataException($"unexpected Value field {f.Number}/{f.WireType}");
            }
        return new ValueProto(tag, simple, histo);
    }

    private static HistoProto DecodeHisto(byte[] data)
    {
        var d = new double[5]; double[] limits = [], buckets = [];
        foreach (var f in Fields(data))
            switch (f.Number, f.WireType)
            {
                case ( >= 1 and <= 5, 1): d[f.Number - 1] = BitConverter.Int64BitsToDouble((long)f.Scalar); break;
                case (6, 2): limits = Packed(f.Bytes); break;
                case (7, 2): buckets = Packed(f.Bytes); break;
                default: throw new InvalidDataException($"unexpected HistogramProto field {f.Number}/{f.WireType}");
            }
        return new HistoProto(d[0], d[1], d[2], d[3], d[4], limits, buckets);
    }

    private static double[] Packed(byte[] bytes)
    {
        if (bytes.Length % 8 != 0) throw new InvalidDataException("packed doubles not a multiple of 8 bytes");
        return Enumerable.Range(0, bytes.Length / 8).Select(i => BinaryPrimitives.ReadDoubleLittleEndian(bytes.AsSpan(i * 8))).ToArray();
    }

    private readonly record struct Field(int Number, int WireType, ulong Scalar, byte[] Bytes);

    private static List<Field> Fields(byte[] data)
    {
        var fields = new List<Field>();
        int pos = 0;
        while (pos < data.Length)
        {
            ulong key = Varint(data, ref pos);
            int number = (int)(key >> 3), wire = (int)(key & 7);
            switch (wire)
            {
                case 0: fields.Add(new Field(number, wire, Varint(data, ref pos), [])); break;
                case 1: fields.Add(new Field(number, wire, BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(pos, 8)), [])); pos += 8; break;
                case 5: fields.Add(new Field(number, wire, BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(pos, 4)), [])); pos += 4; break;
                case 2:
                    int len = checked((int)Varint(data, ref pos));
                    fields.Add(new Field(number, wire, 0, data.AsSpan(pos, len).ToArray()));
                    pos += len;
                    break;
                default: throw new InvalidDataException($"wire type {wire}");
            }
        }
        return fields;
    }

    private static ulong Varint(byte[] data, ref int pos)
    {
        ulong value = 0;
        for (int shift = 0; ; shift += 7)
        {
            if (shift > 63) throw new InvalidDataException("varint too long");
            byte b = data[pos++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return value;
        }
    }
}
