using System.Buffers.Binary;
using System.IO.Compression;
using GradFlow.Data;

namespace GradFlow.Tests.Data;

public sealed class IdxTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "gradflow-idx-" + Guid.NewGuid().ToString("N"));

    public IdxTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static byte[] Header(byte type, params uint[] dims)
    {
        var b = new byte[4 + 4 * dims.Length];
        b[2] = type;
        b[3] = (byte)dims.Length;
        for (int i = 0; i < dims.Length; i++) BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(4 + 4 * i), dims[i]);
        return b;
    }

    private static byte[] Gzip(byte[] data)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(data);
        return ms.ToArray();
    }

    private static Tensor ReadBytes(byte[] b, DType dtype = DType.Float32) => Idx.Read(new MemoryStream(b), dtype);

    [Fact]
    public void ReadsBytesPlainAndGzipped()
    {
        var file = Header(0x08, 2, 3).Concat(new byte[] { 0, 1, 2, 253, 254, 255 }).ToArray();
        foreach (var b in new[] { file, Gzip(file) })
        {
            var t = ReadBytes(b);
            Assert.Equal([2, 3], t.Shape.ToArray());
            Assert.Equal([0.0, 1, 2, 253, 254, 255], t.ToDoubleArray());
        }
        Assert.Equal([0L, 1, 2, 253, 254, 255], ReadBytes(file, DType.Int64).ToArray<long>());
    }

    [Fact]
    public void ReadsBigEndianWiderTypes()
    {
        var data = new byte[8];
        BinaryPrimitives.WriteInt32BigEndian(data, -5);
        BinaryPrimitives.WriteSingleBigEndian(data.AsSpan(4), 1.5f);
        Assert.Equal([-5.0], ReadBytes(Header(0x0C, 1).Concat(data[..4]).ToArray()).ToDoubleArray());
        Assert.Equal([1.5], ReadBytes(Header(0x0D, 1).Concat(data[4..]).ToArray()).ToDoubleArray());
    }

    [Fact]
    public void ReadsDataLongerThanOneReadChunk()
    {
        // 300,000 int32 values (1.2 MB) span two of the reader's 1 MB chunks, each converted in place.
        const int n = 300_000;
        var data = new byte[4 * n];
        for (int i = 0; i < n; i++) BinaryPrimitives.WriteInt32BigEndian(data.AsSpan(4 * i), i * 7 - 1000);
        var file = Header(0x0C, n).Concat(data).ToArray();
        foreach (var b in new[] { file, Gzip(file) })
        {
            var values = ReadBytes(b, DType.Int64).ToArray<long>();
            Assert.Equal(n, values.Length);
            for (int i = 0; i < n; i++)
                if (values[i] != i * 7L - 1000) Assert.Fail($"element {i} is {values[i]}, expected {i * 7L - 1000}");
        }
    }

    [Fact]
    public void WriterAndFileReaderRoundTrip()
    {
        var t = Tensor.FromArray(new float[] { 0, 7, 255, 128 }, 2, 2);
        foreach (bool gz in new[] { false, true })
        {
            string path = Path.Combine(_dir, gz ? "a.gz" : "a");
            Idx.WriteBytes(path, t, gz);
            Assert.Equal(t.ToDoubleArray(), Idx.Read(path).ToDoubleArray());
        }
    }

    public static IEnumerable<object[]> Broken()
    {
        var good = Header(0x08, 2, 2).Concat(new byte[] { 1, 2, 3, 4 }).ToArray();
        yield return ["empty", Array.Empty<byte>(), "magic"];
        yield return ["wrong magic", new byte[] { 1, 2, 8, 1, 0, 0, 0, 1, 5 }, "magic"];
        yield return ["unknown type", Header(0x07, 1).Concat(new byte[] { 1 }).ToArray(), "type code"];
        yield return ["zero dims", Header(0x08), "dimensions"];
        yield return ["truncated header", good[..6], "dimensions"];
        yield return ["truncated data", good[..^1], "holds 3"];
        yield return ["trailing bytes", good.Concat(new byte[] { 9 }).ToArray(), "holds 5"];
        yield return ["dims overflow", Header(0x08, 65536, 65536, 65536), "more than"];
        yield return ["dim above int", Header(0x08, 0x80000000), "dimension 0"];
        yield return ["huge promise, tiny file", Header(0x0E, 100000, 1000).Concat(new byte[16]).ToArray(), "promises"];
        yield return ["gzip truncated data", Gzip(good[..^2]), "truncated"];
        yield return ["gzip huge promise", Gzip(Header(0x0E, 100000, 1000).Concat(new byte[16]).ToArray()), "truncated"];
        yield return ["gzip trailing", Gzip(good.Concat(new byte[] { 9 }).ToArray()), "after"];
    }

    [Theory]
    [MemberData(nameof(Broken))]
    public void BrokenFilesGiveInvalidData(string what, byte[] bytes, string expected)
    {
        var ex = Assert.Throws<InvalidDataException>(() => ReadBytes(bytes));
        Assert.True(ex.Message.Contains(expected), $"{what}: message was '{ex.Message}'");
    }

    [Fact]
    public void HugePromiseInGzipAllocatesOnlyWhatArrives()
    {
        // The header claims 8 GB of doubles' worth of elements (capped at int.MaxValue elements) but the stream holds 16 bytes.
        var bomb = Gzip(Header(0x08, 46340, 46340).Concat(new byte[16]).ToArray());
        long before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Throws<InvalidDataException>(() => ReadBytes(bomb));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 4 << 20, "allocated far more than the stream holds");
    }

    [Fact]
    public void EveryTruncationOfAGzipFileIsInvalidData()
    {
        var file = Gzip(Header(0x08, 3, 4).Concat(Enumerable.Range(0, 12).Select(i => (byte)i)).ToArray());
        for (int len = 0; len < file.Length; len++)
            Assert.Throws<InvalidDataException>(() => ReadBytes(file[..len]));
    }

    [Fact]
    public void FashionMnistLayoutLoadsFromADirectoryAndMissingFilesExplainThemselves()
    {
        Idx.WriteBytes(Path.Combine(_dir, "t10k-images-idx3-ubyte.gz"), Tensor.Full([3, 28, 28], 255), gzip: true);
        Idx.WriteBytes(Path.Combine(_dir, "t10k-labels-idx1-ubyte.gz"), Tensor.FromArray(new float[] { 0, 9, 4 }), gzip: true);
        var test = FashionMnist.Load(_dir, train: false);
        Assert.Equal([3, 1, 28, 28], test.Inputs.Shape.ToArray());
        Assert.Equal(1.0, test.Inputs.Max().Item());
        Assert.Equal([0L, 9, 4], test.Targets.ToArray<long>());
        var ex = Assert.Throws<FileNotFoundException>(() => FashionMnist.Load(_dir, train: true));
        Assert.Contains("apt-get install dataset-fashion-mnist", ex.Message);
        Assert.Contains("train-images-idx3-ubyte", ex.Message);
    }

    [Fact]
    public void RealFashionMnistTestSetWhenInstalled()
    {
        if (!Directory.Exists(FashionMnist.DefaultDirectory))
        {
            // Optional on a developer machine; .ci/run installs Debian's dataset-fashion-mnist, so there it must be read.
            Assert.False(Environment.GetEnvironmentVariable("CI") == "true", $"{FashionMnist.DefaultDirectory} is missing on CI.");
            return;
        }
        var test = FashionMnist.Load(train: false);
        Assert.Equal([10000, 1, 28, 28], test.Inputs.Shape.ToArray());
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (long)i), test.Targets.ToArray<long>().Distinct().Order());
    }
}
