using System.Buffers.Binary;
using System.Text;
using GradFlow.Formats;

namespace GradFlow.Tests.Formats;

public sealed class SafeTensorsTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "gradflow-st-" + Guid.NewGuid().ToString("N"));

    public SafeTensorsTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Dictionary<string, Tensor> Sample() => new()
    {
        ["layer.weight"] = Tensor.Randn([3, 4], DType.Float32, new Generator(1)),
        ["layer.bias"] = Tensor.Randn([4], DType.Float64, new Generator(2)),
        ["count"] = Tensor.FromArray(new long[] { 7, -3, long.MaxValue }),
        ["scalar"] = Tensor.Scalar(2.5),
        ["empty"] = Tensor.Zeros([0, 5]),
        ["transposed"] = Tensor.Randn([2, 3], DType.Float32, new Generator(3)).T,
    };

    private static byte[] Bytes(Dictionary<string, Tensor> tensors, Dictionary<string, string>? meta = null)
    {
        var ms = new MemoryStream();
        SafeTensors.Write(ms, tensors, meta);
        return ms.ToArray();
    }

    private static SafeTensorsContent ReadBytes(byte[] bytes) => SafeTensors.Read(new MemoryStream(bytes));

    /// <summary>A file from a hand-written header (as another writer would produce) and raw data.</summary>
    private static byte[] Raw(string header, byte[] data, ulong? declaredLength = null)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var b = new byte[8 + h.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(b, declaredLength ?? (ulong)h.Length);
        h.CopyTo(b, 8);
        data.CopyTo(b, 8 + h.Length);
        return b;
    }

    [Fact]
    public void RoundTripsEveryDTypeShapeAndMetadata()
    {
        var t = Sample();
        string path = Path.Combine(_dir, "a.safetensors");
        SafeTensors.Save(path, t, new Dictionary<string, string> { ["note"] = "héllo", ["format"] = "pt" });
        var back = SafeTensors.Load(path);
        Assert.Equal(t.Keys, back.Tensors.Keys);
        foreach (var (k, v) in t)
        {
            Assert.Equal(v.DType, back.Tensors[k].DType);
            Assert.True(v.Shape.SequenceEqual(back.Tensors[k].Shape), k);
            Assert.Equal(v.ToDoubleArray(), back.Tensors[k].ToDoubleArray());
        }
        Assert.Equal(long.MaxValue, back.Tensors["count"].ToArray<long>()[2]);
        Assert.Equal("héllo", back.Metadata["note"]);
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp"));
    }

    [Fact]
    public void HeaderIsPaddedSoDataIsAligned()
    {
        var b = Bytes(Sample());
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(b);
        Assert.Equal(0UL, (8 + n) % 8);
        Assert.Equal((byte)'{', b[8]);
    }

    [Fact]
    public void ReadsAFileFromAnotherWriter()
    {
        // The reference writer's layout: metadata first, compact JSON; offsets relative to the data section.
        var data = new byte[16 + 8];
        BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(0), 1.5f);
        BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(4), -2f);
        BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(8), 3f);
        BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(12), 4.25f);
        BinaryPrimitives.WriteInt64LittleEndian(data.AsSpan(16), 42);
        var file = Raw("{\"__metadata__\":{\"format\":\"pt\"},\"b\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[16,24]},"
            + "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}  ", data);
        var c = ReadBytes(file);
        Assert.Equal([1.5, -2, 3, 4.25], c.Tensors["a"].ToDoubleArray());
        Assert.Equal([42L], c.Tensors["b"].ToArray<long>());
        Assert.Equal("pt", c.Metadata["format"]);
    }

    public static IEnumerable<object[]> Hostile()
    {
        var f4 = new byte[16];
        yield return ["header length past the file", Raw("{}", [], declaredLength: 1000), "larger than"];
        yield return ["enormous header length", Raw("{}", [], declaredLength: ulong.MaxValue), "exceeds the limit"];
        yield return ["not JSON", Raw("{\"a\":", f4), "not valid JSON"];
        yield return ["JSON array", Raw("[1,2,3]", []), "not an object"];
        yield return ["deep nesting", Raw(new string('[', 5000) + new string(']', 5000), []), "not valid JSON"];
        yield return ["unknown dtype", Raw("{\"a\":{\"dtype\":\"F8_E5M2\",\"shape\":[8],\"data_offsets\":[0,16]}}", f4), "F8_E5M2"];
        yield return ["negative dim", Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", f4), "invalid dimension"];
        yield return ["huge dims", Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647],\"data_offsets\":[0,16]}}", f4), "too many elements"];
        yield return ["size mismatch", Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[0,16]}}", f4), "needs 20"];
        yield return ["offset past data", Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]}}", f4), "truncated"];
        yield return ["reversed offsets", Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", f4), "invalid data_offsets"];
        yield return ["overlap", Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", f4), "overlapping"];
        yield return ["gap at end", Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", f4), "cover 8 bytes"];
        yield return ["duplicate name", Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", f4), "names 'a' twice"];
        yield return ["metadata not strings", Raw("{\"__metadata__\":{\"k\":1}}", []), "not a string"];
        yield return ["missing offsets", Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[4]}}", f4), "data_offsets"];
        yield return ["fractional offset", Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0.5,16]}}", f4), "invalid data_offsets"];
        yield return ["tiny file", new byte[5], "fewer than"];
        yield return ["offset as a string", Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[\"0\",16]}}", f4), "invalid data_offsets"];
        yield return ["lone surrogate in a name", Raw("{\"\\ud800\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", f4), "not valid Unicode"];
        yield return ["lone surrogate in metadata", Raw("{\"__metadata__\":{\"k\":\"\\udfff\"}}", []), "not valid Unicode"];
    }

    [Theory]
    [MemberData(nameof(Hostile))]
    public void HostileInputGivesAClearError(string what, byte[] file, string expected)
    {
        var ex = Assert.Throws<InvalidDataException>(() => ReadBytes(file));
        Assert.True(ex.Message.Contains(expected), $"{what}: message was '{ex.Message}'");
    }

    [Fact]
    public void EveryTruncationGivesInvalidData()
    {
        var b = Bytes(Sample(), new Dictionary<string, string> { ["k"] = "v" });
        for (int len = 0; len < b.Length; len++)
            Assert.Throws<InvalidDataException>(() => ReadBytes(b.AsSpan(0, len).ToArray()));
    }

    [Fact]
    public void FlippedBytesGiveInvalidDataOrAValidFile()
    {
        var b = Bytes(Sample(), new Dictionary<string, string> { ["k"] = "v" });
        var rng = new Generator(9);
        for (int i = 0; i < b.Length; i++)
        {
            foreach (byte mask in new byte[] { 0x01, 0x80, (byte)(1 + rng.NextInt64(255)) })
            {
                var c = (byte[])b.Clone();
                c[i] ^= mask;
                try { ReadBytes(c); }
                catch (InvalidDataException) { }
            }
        }
    }

    [Fact]
    public void FailedWriteLeavesThePreviousFileIntact()
    {
        string path = Path.Combine(_dir, "ckpt.safetensors");
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["x"] = Tensor.Ones(4) });
        var before = File.ReadAllBytes(path);
        Assert.Throws<IOException>(() => AtomicFile.Write(path, s =>
        {
            s.Write(new byte[1000]);
            throw new IOException("simulated crash mid-write");
        }));
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Single(Directory.GetFiles(_dir));
    }

    [Fact]
    public void WriterRejectsBadNames() =>
        Assert.Throws<ArgumentException>(() => Bytes(new Dictionary<string, Tensor> { ["__metadata__"] = Tensor.Ones(1) }));
}
