using GradFlow.Formats;
using GradFlow.NN;
using GradFlow.Onnx;

namespace GradFlow.Onnx.Tests.Formats;

/// <summary>The protobuf reader against the writer, and against hostile bytes: errors name the offset, and nothing is allocated for a length that is not there.</summary>
public class ProtoReaderTests
{
    [Fact]
    public void ReadsWhatTheWriterWrote()
    {
        var inner = new ProtoWriter();
        inner.WriteString(1, "héllo");
        inner.WriteInt64(2, -5);
        var w = new ProtoWriter();
        w.WriteInt64(1, long.MaxValue);
        w.WriteFloat(2, 1.5f);
        w.WriteDouble(3, -2.25);
        w.WriteMessage(4, inner);
        w.WritePackedDoubles(5, [1, 2]);
        var r = new ProtoReader(w.Written.ToArray());
        Assert.True(r.Next(out int f, out int wire) && f == 1 && wire == ProtoReader.Varint);
        Assert.Equal(long.MaxValue, r.ReadInt64());
        Assert.True(r.Next(out f, out wire) && f == 2 && wire == ProtoReader.Fixed32);
        Assert.Equal(1.5f, r.ReadFloat());
        Assert.True(r.Next(out f, out _) && f == 3);
        Assert.Equal(-2.25, r.ReadDouble());
        Assert.True(r.Next(out f, out wire) && f == 4 && wire == ProtoReader.LengthDelimited);
        var m = r.ReadMessage();
        Assert.True(m.Next(out f, out _) && f == 1);
        Assert.Equal("héllo", m.ReadString());
        Assert.True(m.Next(out f, out _) && f == 2);
        Assert.Equal(-5, m.ReadInt64());
        Assert.False(m.Next(out _, out _));
        Assert.True(r.Next(out f, out wire) && f == 5);
        r.Skip(wire);
        Assert.False(r.Next(out _, out _));
    }

    private static string Error(byte[] bytes)
    {
        var ex = Assert.Throws<InvalidDataException>(() =>
        {
            var r = new ProtoReader(bytes);
            while (r.Next(out _, out int wire)) r.Skip(wire);
        });
        return ex.Message;
    }

    [Fact]
    public void HostileBytesNameTheOffset()
    {
        Assert.Contains("overflows 64 bits at byte 1", Error([0x08, .. Enumerable.Repeat((byte)0xFF, 11)]));
        Assert.Contains("ends inside a varint at byte 1", Error([0x08, 0x80]));
        Assert.Contains("wire type 3", Error([0x0B]));
        Assert.Contains("field number 0", Error([0x00, 0x00]));
        Assert.Contains("exceeds the 1 that remain", Error([0x0A, 0x05, 0x00]));
        Assert.Contains("short of a 8-byte value", Error([0x09, 1, 2, 3]));
    }

    [Fact]
    public void AHugeLengthIsRejectedBeforeAnythingIsAllocated()
    {
        // Field 1, length-delimited, declaring 2^62 bytes followed by three.
        byte[] bytes = [0x0A, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 1, 2, 3];
        long before = GC.GetAllocatedBytesForCurrentThread();
        string message = Error(bytes);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains("at byte 1", message);
        Assert.True(allocated < 64 << 10, $"allocated {allocated} bytes for a 13-byte input");
    }

    // An ONNX model holding one initializer whose dims and raw_data the test chooses.
    private static byte[] ModelWithTensor(long[] dims, int rawBytes)
    {
        var tensor = new ProtoWriter();
        foreach (long d in dims) tensor.WriteInt64(1, d);
        tensor.WriteInt64(2, 1);
        tensor.WriteString(8, "w");
        tensor.WriteBytes(9, new byte[rawBytes]);
        var graph = new ProtoWriter();
        graph.WriteMessage(5, tensor);
        var model = new ProtoWriter();
        model.WriteInt64(1, 8);
        model.WriteMessage(7, graph);
        return model.Written.ToArray();
    }

    [Fact]
    public void ATensorLargerThanItsDataIsRejectedBeforeItIsAllocated()
    {
        var bytes = ModelWithTensor([1 << 20, 1 << 10], 16);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var ex = Assert.Throws<InvalidDataException>(() => OnnxImporter.Load(bytes));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains("needs 4294967296 bytes of raw_data, has 16", ex.Message);
        Assert.True(allocated < 64 << 10, $"allocated {allocated} bytes");
        Assert.Contains("more than", Assert.Throws<InvalidDataException>(() => OnnxImporter.Load(ModelWithTensor([1 << 30, 1 << 30, 1 << 30], 4))).Message);
    }

    [Fact]
    public void EveryTruncationOfAnExportedModelIsAClearError()
    {
        var model = new Sequential(new Conv2d(1, 2, 3, generator: new Generator(1)), new ReLU(), new Flatten(), new Linear(8, 2, generator: new Generator(2)));
        var bytes = OnnxExporter.Export(model.Eval(), [1, 1, 4, 4]);
        string path = Path.Combine(Path.GetTempPath(), $"gradflow-trunc-{Guid.NewGuid():N}.onnx");
        try
        {
            for (int len = 0; len < bytes.Length; len++)
            {
                System.IO.File.WriteAllBytes(path, bytes[..len]);
                // A cut at a field boundary is valid protobuf missing its later fields (the graph, its output):
                // that is a NotSupportedException or InvalidDataException, naming the file either way.
                var ex = Assert.ThrowsAny<Exception>(() => OnnxImporter.Load(path));
                Assert.True(ex is InvalidDataException or NotSupportedException, $"length {len}: {ex}");
                Assert.Contains(path, ex.Message);
            }
        }
        finally
        {
            System.IO.File.Delete(path);
        }
    }
}
