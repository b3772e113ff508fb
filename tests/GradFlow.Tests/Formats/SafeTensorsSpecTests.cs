using System.Buffers.Binary;
using System.Text;
using GradFlow.Formats;
using GradFlow.NN;
using GradFlow.Tests.Fixtures;

namespace GradFlow.Tests.Formats;

/// <summary>
/// The safetensors specification against files another writer made (tools/onnx/make_safetensors_fixtures.py packs
/// them itself, in the reference writer's layout): every dtype, scalars, empty tensors, metadata, PyTorch layers'
/// state dicts in and out byte for byte, lazy reads of large files, and the layout rules (holes, overlaps, duplicates).
/// </summary>
public sealed class SafeTensorsSpecTests : IDisposable
{
    private const string File = "safetensors.json";
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "gradflow-stspec-" + Guid.NewGuid().ToString("N"));

    public SafeTensorsSpecTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string FixturePath(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "safetensors", name + ".safetensors");

    [Fact]
    public void ReadsEveryDTypeScalarsAndEmptyTensors()
    {
        var c = Fixture.Get(File, "dtypes");
        var content = SafeTensors.Load(FixturePath("dtypes"));
        Assert.Equal(new Dictionary<string, string> { ["format"] = "pt", ["note"] = "every dtype" }, content.Metadata);
        var stored = c.Params.GetProperty("stored");
        foreach (var (name, expected) in c.Tensors)
        {
            var t = content.Tensors[name];
            Assert.Equal(stored.GetProperty(name).GetString(), content.StoredAs[name].ToString());
            Assert.Equal(expected.Shape.ToArray(), t.Shape.ToArray());
            // Widening is exact: F16/BF16 to float32, narrow integers to int64.
            if (expected.DType == DType.Int64) Assert.Equal(expected.ToArray<long>(), t.ToArray<long>());
            else Assert.Equal(expected.ToDoubleArray(), t.ToDoubleArray());
        }
        Assert.Equal(DType.Float32, content.Tensors["f16"].DType);
        Assert.Equal(DType.Bool, content.Tensors["bool"].DType);
        Assert.Equal(0, content.Tensors["scalar"].Rank);
        Assert.Equal(0, content.Tensors["empty_i32"].NumEl);
    }

    [Fact]
    public void WritesEveryDTypeByteForByteAsTheReferenceLayout()
    {
        string path = FixturePath("dtypes");
        using var file = SafeTensorsFile.Open(path);
        var tensors = file.Names.ToDictionary(n => n, file.Read);
        var storeAs = file.Names.ToDictionary(n => n, file.StoredAs);
        var ms = new MemoryStream();
        SafeTensors.Write(ms, tensors, file.Metadata.ToDictionary(), storeAs);
        Assert.Equal(System.IO.File.ReadAllBytes(path), ms.ToArray());
    }

    public static IEnumerable<object[]> Layers() => Fixture.Load(File).Where(c => c.Name != "dtypes").Select(c => new object[] { c.Name });

    private static Module Layer(string name) => name switch
    {
        "linear" or "linear_f16" or "linear_bf16" => new Linear(5, 4),
        "conv1d" => new Conv1d(3, 4, 3, padding: 1),
        "conv2d" => new Conv2d(2, 3, 3, stride: 2),
        "conv_transpose2d" => new ConvTranspose2d(3, 2, 3, stride: 2),
        "batchnorm2d" => new BatchNorm2d(3),
        "layernorm" => new LayerNorm(6),
        "groupnorm" => new GroupNorm(2, 4),
        "embedding" => new Embedding(10, 3),
        "prelu" => new PReLU(3),
        "rnn" => new RNN(4, 5, numLayers: 2),
        "lstm" => new LSTM(4, 5, bidirectional: true),
        "gru" => new GRU(4, 5, batchFirst: true),
        "multihead_attention" => new MultiheadAttention(8, 2),
        "transformer_encoder_layer" => new TransformerEncoderLayer(8, 2, dimFeedforward: 16, dropout: 0),
        "transformer_decoder_layer" => new TransformerDecoderLayer(8, 2, dimFeedforward: 16, dropout: 0),
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [MemberData(nameof(Layers))]
    public void PyTorchStateDictsLoadIntoTheLayerAndWriteBackTheSameBytes(string name)
    {
        var c = Fixture.Get(File, name);
        string path = FixturePath("layer_" + name);
        var content = SafeTensors.Load(path);
        var layer = Layer(name);
        var result = layer.LoadStateDict(content.Tensors);
        Assert.Empty(result.MissingKeys);
        Assert.Equal(c.Params.GetProperty("keys").EnumerateArray().Select(k => k.GetString()).Order(), content.Tensors.Keys.Order());
        layer.Eval();
        using (Autograd.NoGrad())
        {
            var y = layer is TransformerDecoderLayer d ? d.Call(c["in.x"], c["in.memory"]) : layer.Call(c["in.x"]);
            Fixture.AssertClose(c["out.y"], y, name, rtol: 1e-4, atol: 1e-5);
        }
        // GradFlow's own state dict, in the file's order and types, is the file PyTorch's state dict made.
        var state = layer.StateDict();
        var ordered = content.Tensors.Keys.ToDictionary(k => k, k => state[k]);
        var ms = new MemoryStream();
        SafeTensors.Write(ms, ordered, null, content.StoredAs);
        Assert.Equal(System.IO.File.ReadAllBytes(path), ms.ToArray());
    }

    [Fact]
    public void OneTensorOfALargeFileIsReadWithoutReadingTheRest()
    {
        string path = Path.Combine(_dir, "large.safetensors");
        var big = Tensor.Zeros([8 << 20]); // 32 MB
        var small = Tensor.FromArray(new float[] { 1, 2, 3 });
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["big"] = big, ["small"] = small });
        using var file = SafeTensorsFile.Open(path);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var t = file.Read("small");
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal([1.0, 2, 3], t.ToDoubleArray());
        Assert.True(allocated < 1 << 20, $"reading 12 bytes allocated {allocated} bytes");
        Assert.Equal([8 << 20], file.Shape("big"));
        Assert.Equal(SafeTensorsDType.F32, file.StoredAs("big"));
    }

    [Fact]
    public void NarrowingRoundsToNearestEvenAndRejectsOutOfRangeIntegers()
    {
        // 1 + 2^-8 is halfway between bfloat16's 1 and 1 + 2^-7: ties go to the even mantissa (1).
        var x = Tensor.FromArray(new float[] { 1 + 1f / 256, 1 + 3f / 256, float.NaN, 70000 });
        var ms = new MemoryStream();
        SafeTensors.Write(ms, new Dictionary<string, Tensor> { ["b"] = x, ["h"] = x }, null,
            new Dictionary<string, SafeTensorsDType> { ["b"] = SafeTensorsDType.BF16, ["h"] = SafeTensorsDType.F16 });
        ms.Position = 0;
        var back = SafeTensors.Read(ms);
        var b = back.Tensors["b"].ToArray<float>();
        Assert.Equal(1f, b[0]);
        Assert.Equal(1 + 4f / 256, b[1]);
        Assert.True(float.IsNaN(b[2]));
        Assert.True(float.IsPositiveInfinity(back.Tensors["h"].ToArray<float>()[3]));
        var ex = Assert.Throws<ArgumentException>(() => SafeTensors.Write(new MemoryStream(),
            new Dictionary<string, Tensor> { ["ids"] = Tensor.FromArray(new long[] { 1, 300 }) }, null,
            new Dictionary<string, SafeTensorsDType> { ["ids"] = SafeTensorsDType.U8 }));
        Assert.Contains("'ids' holds 300", ex.Message);
        Assert.Throws<ArgumentException>(() => SafeTensors.Write(new MemoryStream(),
            new Dictionary<string, Tensor> { ["w"] = Tensor.Ones(2) }, null, new Dictionary<string, SafeTensorsDType> { ["w"] = SafeTensorsDType.I32 }));
    }

    private static byte[] Raw(string header, byte[] data)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var b = new byte[8 + h.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)h.Length);
        h.CopyTo(b, 8);
        data.CopyTo(b, 8 + h.Length);
        return b;
    }

    public static IEnumerable<object[]> LayoutViolations()
    {
        var d8 = new byte[8];
        yield return ["hole between tensors", Raw("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}", d8), "expected 2"];
        yield return ["overlapping tensors", Raw("{\"a\":{\"dtype\":\"I16\",\"shape\":[3],\"data_offsets\":[0,6]},\"b\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[4,8]}}", d8), "overlapping"];
        yield return ["empty tensor inside another", Raw("{\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},\"e\":{\"dtype\":\"F16\",\"shape\":[0],\"data_offsets\":[4,4]}}", d8), "overlapping"];
        yield return ["duplicate key", Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", d8), "names 'a' twice"];
        yield return ["duplicate metadata", Raw("{\"__metadata__\":{},\"__metadata__\":{},\"a\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]}}", d8), "'__metadata__' twice"];
        yield return ["header not starting with {", Raw(" {\"a\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]}}", d8), "begin with '{'"];
        yield return ["unknown dtype", Raw("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[8],\"data_offsets\":[0,8]}}", d8), "F8_E4M3"];
        yield return ["lower-case dtype", Raw("{\"a\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", d8), "dtype f32"];
        yield return ["BOOL byte 2", Raw("{\"a\":{\"dtype\":\"BOOL\",\"shape\":[8],\"data_offsets\":[0,8]}}", [0, 1, 2, 0, 0, 0, 0, 0]), "other than 0 or 1"];
        yield return ["scalar of the wrong size", Raw("{\"a\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", d8), "needs 8"];
    }

    [Theory]
    [MemberData(nameof(LayoutViolations))]
    public void LayoutViolationsNameTheFile(string what, byte[] bytes, string expected)
    {
        string path = Path.Combine(_dir, "bad.safetensors");
        System.IO.File.WriteAllBytes(path, bytes);
        var ex = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));
        Assert.True(ex.Message.Contains(expected, StringComparison.Ordinal) && ex.Message.Contains(path, StringComparison.Ordinal), $"{what}: {ex.Message}");
    }
}
