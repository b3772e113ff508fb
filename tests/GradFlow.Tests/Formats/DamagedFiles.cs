using System.Text;
using System.Text.Json.Nodes;
using GradFlow.Data;
using GradFlow.Diagnostics;
using GradFlow.Formats;
using GradFlow.NN;
using GradFlow.Onnx;
using GradFlow.Optim;
using GradFlow.Reporting;
using GradFlow.Training;

namespace GradFlow.Tests.Formats;

/// <summary>
/// For each file reader, a file GradFlow wrote itself and a read of a damaged copy. The contract checked:
/// a read either succeeds or throws InvalidDataException naming the file (a run log whose schema became a
/// later version gives the documented NotSupportedException); any other exception, or an
/// InvalidDataException that does not name the file, escapes as a <see cref="ContractBroken"/> or as itself.
/// Shared by the suite's fuzz test and the standalone runner (tests/GradFlow.Fuzz).
/// </summary>
internal sealed class DamagedFiles : IDisposable
{
    public static readonly string[] Readers = ["SafeTensors", "SafeTensorsAllTypes", "Checkpoint", "RunLog", "Idx", "IdxGzip", "Csv", "Onnx", "OnnxRecurrent"];

    private readonly string _dir = Path.Combine(Path.GetTempPath(), "gradflow-fuzz-" + Guid.NewGuid().ToString("N"));
    private readonly Dictionary<string, byte[]> _originals = [];
    private Checkpoint? _checkpoint;

    public DamagedFiles() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Thrown when a read breaks the contract in a way that is not an exception of its own.</summary>
    public sealed class ContractBroken(string message, Exception? inner = null) : Exception(message, inner);

    /// <summary>The bytes GradFlow wrote for <paramref name="reader"/>.</summary>
    public byte[] Original(string reader)
    {
        if (!_originals.TryGetValue(reader, out var bytes)) _originals[reader] = bytes = Write(reader);
        return bytes;
    }

    /// <summary>Reads case <paramref name="seed"/> (a damaged copy of the original) with the reader under test.</summary>
    public void ReadCase(string reader, int seed)
    {
        var bytes = FileMutator.Mutate(Original(reader), seed, safeTensorsFrame: reader is "SafeTensors" or "SafeTensorsAllTypes" or "Checkpoint");
        string path = Path.Combine(_dir, $"case-{seed}{Extension(reader)}");
        File.WriteAllBytes(path, bytes);
        try
        {
            Read(reader, path);
        }
        catch (InvalidDataException ex) when (!ex.Message.Contains(path, StringComparison.Ordinal))
        {
            throw new ContractBroken($"the error does not name the file: {ex.Message}", ex);
        }
        catch (InvalidDataException)
        {
        }
        catch (NotSupportedException ex) when (reader == "RunLog" && ex.Message.Contains(path, StringComparison.Ordinal) && ex.Message.Contains("newer", StringComparison.Ordinal))
        {
            // A flipped digit can make a later schema version: documented as NotSupportedException.
        }
        catch (NotSupportedException ex) when (reader is "Onnx" or "OnnxRecurrent" && ex.Message.Contains(path, StringComparison.Ordinal))
        {
            // A flipped letter in an op type or an opset number names an operator or opset GradFlow does not import:
            // documented as NotSupportedException naming the file (and the op and node).
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static string Extension(string reader) => reader switch
    {
        "RunLog" => ".jsonl",
        "Csv" => ".csv",
        "IdxGzip" => ".gz",
        "Idx" => ".idx",
        "Onnx" or "OnnxRecurrent" => ".onnx",
        _ => ".safetensors",
    };

    private void Read(string reader, string path)
    {
        switch (reader)
        {
            case "SafeTensors":
            case "SafeTensorsAllTypes":
                SafeTensors.Load(path);
                break;
            case "Onnx":
            case "OnnxRecurrent":
                OnnxImporter.Load(path);
                break;
            case "Checkpoint":
                CheckUnchanged(Checkpoint.Load(path));
                break;
            case "RunLog":
                using (var r = RunLogReader.Open(path))
                    foreach (var record in r.ReadRecords()) _ = record.Step;
                break;
            case "Idx":
            case "IdxGzip":
                Idx.Read(path);
                break;
            default:
                Csv.Read(path);
                break;
        }
    }

    // Every tensor and the state are checksummed, so a damaged checkpoint that loads must hold what was saved.
    private void CheckUnchanged(Checkpoint loaded)
    {
        var saved = _checkpoint!;
        if (loaded.Step != saved.Step || loaded.Model.Count != saved.Model.Count)
            throw new ContractBroken("a damaged checkpoint loaded with a different step or model.");
        foreach (var (name, t) in saved.Model)
            if (!loaded.Model.TryGetValue(name, out var l) || !l.Shape.SequenceEqual(t.Shape) || !l.ToDoubleArray().SequenceEqual(t.ToDoubleArray()))
                throw new ContractBroken($"a damaged checkpoint loaded with different values for '{name}'.");
        if (loaded.Optimizer!.ToJson().ToJsonString() != saved.Optimizer!.ToJson().ToJsonString())
            throw new ContractBroken("a damaged checkpoint loaded with a different optimizer state.");
        foreach (var (name, t) in saved.Optimizer.ToTensors())
            if (!loaded.Optimizer.ToTensors()[name].ToDoubleArray().SequenceEqual(t.ToDoubleArray()))
                throw new ContractBroken($"a damaged checkpoint loaded with different values for optimizer buffer '{name}'.");
    }

    private byte[] Write(string reader)
    {
        string path = Path.Combine(_dir, "original" + Extension(reader));
        switch (reader)
        {
            case "SafeTensors":
                SafeTensors.Save(path, new Dictionary<string, Tensor>
                {
                    ["layer.weight"] = Tensor.Randn([3, 4], DType.Float32, new Generator(1)),
                    ["layer.bias"] = Tensor.Randn([4], DType.Float64, new Generator(2)),
                    ["count"] = Tensor.FromArray(new long[] { 7, -3, long.MaxValue }),
                    ["scalar"] = Tensor.Scalar(2.5),
                    ["empty"] = Tensor.Zeros([0, 5]),
                }, new Dictionary<string, string> { ["note"] = "héllo", ["format"] = "pt" });
                break;
            case "SafeTensorsAllTypes":
                var types = Enum.GetValues<SafeTensorsDType>();
                var tensors = types.ToDictionary(t => t.ToString(), t => t switch
                {
                    SafeTensorsDType.F64 or SafeTensorsDType.F32 or SafeTensorsDType.F16 or SafeTensorsDType.BF16 => Tensor.Randn([2, 3], DType.Float32, new Generator((ulong)t)),
                    SafeTensorsDType.BOOL => Tensor.FromArray(new long[] { 1, 0, 1 }).Ne(0),
                    _ => Tensor.FromArray(new long[] { 0, 1, 100, 7 }),
                });
                tensors["scalar"] = Tensor.Scalar(-1);
                tensors["empty"] = Tensor.Zeros([3, 0]);
                SafeTensors.Save(path, tensors, new Dictionary<string, string> { ["format"] = "pt" }, types.ToDictionary(t => t.ToString(), t => t));
                break;
            case "Onnx":
                var g = new Generator(17);
                var model = new Sequential(new Conv2d(2, 3, 3, padding: 1, generator: g), new BatchNorm2d(3), new GELU(), new MaxPool2d(2), new Flatten(),
                    new Linear(12, 4, generator: g), new LayerNorm(4), new Softplus(2, 1), new Linear(4, 2, generator: g));
                OnnxExporter.Export(model.Eval(), path, [1, 2, 4, 4]);
                break;
            case "OnnxRecurrent":
                // Recurrent nodes: string-list attributes (the RNN's activations), gates re-ordered by Slice/Concat.
                var r = new Generator(18);
                OnnxExporter.Export(new Sequential(new GRU(3, 4, bidirectional: true, generator: r), new RNN(8, 3, relu: true, generator: r), new LSTM(3, 2, generator: r)).Eval(),
                    path, [5, 1, 3], dynamicAxis: 1);
                break;
            case "Checkpoint":
                _checkpoint = TrainedCheckpoint();
                _checkpoint.Save(path);
                break;
            case "RunLog":
                using (var w = new RunLogWriter(path, new RunLogWriterOptions { Metadata = new JsonObject { ["lr"] = 0.1, ["model"] = "mlp" } }))
                    for (int s = 0; s < 3; s++) w.Write(Record(s));
                break;
            case "Idx":
            case "IdxGzip":
                Idx.WriteBytes(path, Tensor.FromArray(Enumerable.Range(0, 2 * 5 * 4).Select(i => (float)(i * 7 % 256)).ToArray(), 2, 5, 4), gzip: reader == "IdxGzip");
                break;
            default:
                var csv = new StringBuilder("f1,f2,f3,label\n");
                for (int i = 0; i < 12; i++) csv.Append($"{i * 0.5},{-i},{i * 1e-3},{i % 3}\n");
                File.WriteAllText(path, csv.ToString());
                break;
        }
        return File.ReadAllBytes(path);
    }

    private static Checkpoint TrainedCheckpoint()
    {
        var model = new Dictionary<string, Tensor>
        {
            ["0.weight"] = Tensor.Randn([3, 2], DType.Float32, new Generator(13), requiresGrad: true),
            ["0.bias"] = Tensor.Zeros([2], DType.Float32, requiresGrad: true),
        };
        var opt = new Adam(model.Values, lr: 0.02, amsgrad: true);
        var sched = new StepLR(opt, 7, 0.5);
        var x = Tensor.Randn([4, 3], DType.Float32, new Generator(11));
        for (int i = 0; i < 2; i++)
        {
            opt.ZeroGrad();
            var y = x.MatMul(model["0.weight"]) + model["0.bias"];
            (y * y).Mean().Backward();
            opt.Step();
            sched.Step();
        }
        return Checkpoint.Capture(model, opt, sched, new Dictionary<string, Generator> { ["data"] = new(5) }, step: 2);
    }

    private static StepRecord Record(long step)
    {
        var h = new Log2Histogram { Zero = 3, NonFinite = 1 };
        h.Positive[0] = 2;
        h.Negative[Log2Histogram.BucketOf(-7)] = 11 + step;
        var grad = new TensorStats(22 + step, 1.5 + step, 0.1, 1e300, double.Epsilon, 3.0 / 22, 0, 1, h);
        return new StepRecord
        {
            Step = step,
            Loss = 0.1 * step,
            LearningRate = 3e-4,
            GlobalGradNorm = 1.0 / 3,
            Parameters = [new ParameterStats("enc.weight", "enc", grad, 2.5, 0.001), new ParameterStats("bias", "", null, 0, null)],
            Layers = [new LayerGradientStats("enc", 0, grad, 2.5, null)],
            Flow = [new FlowStats("enc", 0, 0.25, 0)],
            Activations = [new ActivationStats("enc", "Relu", 0, 64, 0.5, 0.25, null, 0.3, 0.7)],
        };
    }
}
