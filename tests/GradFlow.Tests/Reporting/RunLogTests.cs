using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using GradFlow.Diagnostics;
using GradFlow.Reporting;

namespace GradFlow.Tests.Reporting;

public sealed class RunLogTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gradflow-runlog-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string NewPath() => Path.Combine(_dir, Guid.NewGuid().ToString("N") + ".jsonl");

    private string WriteLog(int steps, RunLogWriterOptions? options = null)
    {
        string path = NewPath();
        using var w = new RunLogWriter(path, options);
        for (int s = 1; s <= steps; s++) w.Write(RunLogTestData.Record(s));
        return path;
    }

    [Fact]
    public void RecordsRoundTripWithEveryField()
    {
        var metadata = new JsonObject { ["model"] = "mlp", ["lr"] = 0.01, ["layers"] = new JsonArray(64, 32), ["seed"] = 7 };
        var before = DateTimeOffset.UtcNow;
        string path = WriteLog(4, new RunLogWriterOptions { Metadata = metadata });
        using var reader = RunLog.Open(path);
        Assert.InRange(reader.Header.StartTime, before.AddSeconds(-1), DateTimeOffset.UtcNow);
        Assert.Equal(RunLog.GradFlowVersion, reader.Header.GradFlowVersion);
        Assert.Equal(metadata.ToJsonString(), reader.Header.Metadata.ToJsonString());
        var entries = reader.ReadEntries().ToList();
        Assert.Equal(4, entries.Count);
        for (int s = 1; s <= 4; s++) RunLogTestData.AssertSame(RunLogTestData.Record(s), entries[s - 1].Record);
        Assert.All(entries, e => Assert.InRange(e.Time, before.AddSeconds(-1), DateTimeOffset.UtcNow));
        Assert.Empty(reader.Warnings);
    }

    [Fact]
    public void EveryLineCarriesTheSchemaAndTheFirstIsTheHeader()
    {
        var lines = File.ReadAllLines(WriteLog(3));
        Assert.Equal(4, lines.Length);
        var docs = lines.Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.All(docs, d => Assert.Equal("gradflow.runlog/2", d.GetProperty("schema").GetString()));
        Assert.Equal(["header", "step", "step", "step"], docs.Select(d => d.GetProperty("type").GetString()));
        // Histograms are [exponent, count] pairs of the non-empty buckets only.
        var hist = docs[1].GetProperty("parameters")[0].GetProperty("gradient").GetProperty("histogram");
        Assert.Equal("[[-40,2],[15,5]]", hist.GetProperty("positive").GetRawText());
        Assert.Equal("[[-7,12]]", hist.GetProperty("negative").GetRawText());
        Assert.Equal("NaN", docs[3].GetProperty("globalGradNorm").GetString());
        Assert.False(docs[1].TryGetProperty("loss", out _), "a null optional field is left out");
        Assert.Equal("[1E-09,0.5,\"NaN\",2.25]", docs[1].GetProperty("recurrentSteps")[0].GetProperty("gradNorms").GetRawText());
        Assert.False(docs[2].TryGetProperty("recurrentSteps", out _), "a model without recurrent layers writes no recurrentSteps");
    }

    [Fact]
    public void MonitorStepsRoundTripThroughAttach()
    {
        var g = new Generator(11);
        var w0 = Tensor.Randn([3, 5], DType.Float32, g, requiresGrad: true);
        var b0 = Tensor.Zeros([5], DType.Float32, requiresGrad: true);
        using var monitor = new GradientMonitor([new("0.weight", w0), new("0.bias", b0)]);
        var seen = new List<StepRecord>();
        monitor.StepRecorded += seen.Add;
        string path = NewPath();
        using (RunLog.Attach(monitor, path, new RunLogWriterOptions { Metadata = new JsonObject { ["run"] = "attach" } }))
        {
            for (int step = 0; step < 3; step++)
            {
                w0.Grad = b0.Grad = null;
                using (Autograd.Scope("0")) Tensor.Randn([4, 3], DType.Float32, g).MatMul(w0).Add(b0).Tanh().Sum().Backward();
                monitor.EndStep(learningRate: 0.05);
            }
        }
        monitor.EndStep(); // detached: not logged
        using var reader = RunLog.Open(path);
        Assert.Equal("attach", reader.Header.Metadata["run"]!.GetValue<string>());
        var records = reader.ReadRecords().ToList();
        Assert.Equal(3, records.Count);
        for (int i = 0; i < 3; i++) RunLogTestData.AssertSame(seen[i], records[i]);
        Assert.NotNull(records[0].Layers[0].Gradient.Histogram);
        Assert.NotEmpty(records[0].Activations);
    }

    [Fact]
    public void TruncationAtEveryByteOfTheLastLineKeepsAllCompleteRecordsWithOneWarning()
    {
        byte[] full = File.ReadAllBytes(WriteLog(3));
        int lastStart = Array.LastIndexOf(full, (byte)'\n', full.Length - 2) + 1;
        for (int cut = lastStart; cut < full.Length; cut++)
        {
            var warnings = new List<RunLogWarning>();
            using var reader = new RunLogReader(new MemoryStream(full, 0, cut), new RunLogReaderOptions { OnWarning = warnings.Add });
            var records = reader.ReadRecords().ToList();
            Assert.Equal([1L, 2L], records.Select(r => r.Step));
            Assert.Equal(cut == lastStart ? 0 : 1, reader.Warnings.Count);
            Assert.Equal(reader.Warnings, warnings);
            if (cut > lastStart) Assert.Equal(4, reader.Warnings[0].Line);
        }
    }

    [Fact]
    public void CorruptLastLineIsSkippedWithAWarning()
    {
        string path = WriteLog(3);
        var lines = File.ReadAllLines(path);
        lines[^1] = lines[^1].Replace("\"step\":3,", "\"step\":\"x\",");
        File.WriteAllLines(path, lines);
        using var reader = RunLog.Open(path);
        Assert.Equal(2, reader.ReadRecords().Count());
        var warning = Assert.Single(reader.Warnings);
        Assert.Equal(4, warning.Line);
        Assert.Contains("'step'", warning.Message);
    }

    public static TheoryData<string, string, string> DamagedStepLines => new()
    {
        // A histogram that is not an object, a lone surrogate escape, and a duplicate key each escaped as an
        // InvalidOperationException or an ArgumentException once.
        { "histogram not an object", "\"histogram\":{", "\"histogram\":[1],\"ignored\":{" },
        { "lone surrogate", "\"name\":\"enc", "\"name\":\"\\ud800enc" },
        { "duplicate key", "\"step\":", "\"step\":0,\"step\":" },
    };

    [Theory]
    [MemberData(nameof(DamagedStepLines))]
    public void DamagedJsonIsCorruptionInTheMiddleAndSkippedAtTheEnd(string what, string find, string replace)
    {
        var lines = File.ReadAllLines(WriteLog(3));
        Assert.Contains(find, lines[2]);
        foreach (int at in new[] { 2, lines.Length - 1 })
        {
            var damaged = (string[])lines.Clone();
            damaged[at] = damaged[at].Replace(find, replace);
            string path = NewPath();
            File.WriteAllLines(path, damaged);
            using var reader = RunLog.Open(path);
            if (at == lines.Length - 1)
            {
                Assert.Equal(lines.Length - 2, reader.ReadRecords().Count());
                Assert.Equal(at + 1, Assert.Single(reader.Warnings).Line);
                continue;
            }
            var e = Assert.Throws<InvalidDataException>(() => reader.ReadRecords().ToList());
            Assert.True(e.Message.Contains($"line {at + 1}") && e.Message.Contains(path), $"{what}: {e.Message}");
        }
    }

    [Fact]
    public void InvalidUtf8IsCorruption()
    {
        var bytes = File.ReadAllBytes(WriteLog(3)).ToList();
        int secondLine = bytes.IndexOf((byte)'\n') + 1;
        int quote = bytes.IndexOf((byte)'"', bytes.IndexOf((byte)'"', secondLine + 20) + 1);
        bytes.InsertRange(quote + 1, new byte[] { 0xC0, 0x80 });
        string path = NewPath();
        File.WriteAllBytes(path, [.. bytes]);
        using var reader = RunLog.Open(path);
        Assert.Contains("line 2", Assert.Throws<InvalidDataException>(() => reader.ReadRecords().ToList()).Message);
    }

    [Fact]
    public void HeaderMetadataWithADuplicateKeyIsRejectedOnOpen()
    {
        var lines = File.ReadAllLines(WriteLog(1, new RunLogWriterOptions { Metadata = new JsonObject { ["lr"] = 0.1 } }));
        lines[0] = lines[0].Replace("\"lr\":0.1", "\"lr\":0.1,\"lr\":0.2");
        string path = NewPath();
        File.WriteAllLines(path, lines);
        Assert.Contains("line 1", Assert.Throws<InvalidDataException>(() => RunLog.Open(path)).Message);
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("{\"schema\":\"gradflow.runlog/1\",\"type\":\"step\"")]
    [InlineData("{\"schema\":\"gradflow.runlog/1\",\"type\":\"step\",\"step\":1}")]
    [InlineData("{\"type\":\"step\"}")]
    [InlineData("[1,2]")]
    [InlineData("{\"schema\":\"gradflow.runlog/1\",\"type\":\"header\",\"startTime\":\"2024-01-01T00:00:00Z\",\"gradflowVersion\":\"1\"}")]
    public void CorruptMiddleLineThrowsNamingTheLine(string bad)
    {
        var lines = File.ReadAllLines(WriteLog(3)).ToList();
        lines[2] = bad;
        string path = NewPath();
        File.WriteAllLines(path, lines);
        using var reader = RunLog.Open(path);
        var e = Assert.Throws<InvalidDataException>(() => reader.ReadRecords().ToList());
        Assert.Contains("line 3", e.Message);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void CrLfLineEndsAndBlankLinesAreAccepted()
    {
        var lines = File.ReadAllLines(WriteLog(2));
        string text = string.Join("\r\n", lines[0], "", lines[1], "   ", lines[2]) + "\r\n\r\n";
        using var reader = new RunLogReader(new MemoryStream(Encoding.UTF8.GetBytes(text)));
        Assert.Equal([1L, 2L], reader.ReadRecords().Select(r => r.Step));
        Assert.Empty(reader.Warnings);
        Assert.Throws<InvalidOperationException>(() => reader.ReadRecords().ToList());
    }

    [Fact]
    public void FlippedByteInAMiddleLineIsReported()
    {
        byte[] bytes = File.ReadAllBytes(WriteLog(3));
        int secondStep = Array.IndexOf(bytes, (byte)'\n', Array.IndexOf(bytes, (byte)'\n') + 1) + 1;
        bytes[secondStep] = (byte)'[';
        using var reader = new RunLogReader(new MemoryStream(bytes));
        Assert.Contains("line 3", Assert.Throws<InvalidDataException>(() => reader.ReadRecords().ToList()).Message);
    }

    [Fact]
    public void AVersion1LogIsRead()
    {
        // Version 2 only made the curvature's "sharpness" optional, so a version 1 log reads as written.
        string path = WriteLog(3);
        List<StepRecord> expected;
        using (var current = RunLog.Open(path)) expected = current.ReadRecords().ToList();
        File.WriteAllLines(path, File.ReadAllLines(path).Select(l => l.Replace("\"gradflow.runlog/2\"", "\"gradflow.runlog/1\"", StringComparison.Ordinal)));
        Assert.Contains("gradflow.runlog/1", File.ReadAllText(path));
        using var reader = RunLog.Open(path);
        var read = reader.ReadRecords().ToList();
        Assert.Equal(expected.Count, read.Count);
        Assert.Equal(expected.Select(r => r.Curvature), read.Select(r => r.Curvature));
    }

    [Fact]
    public void ALogWrittenBeforeTheDropoutsFieldReadsWithThemUnknown()
    {
        // Logs from before RunSetup.Dropouts have no "dropouts" in their setup: they read, with the dropouts null (unknown), not empty.
        string path = WriteLog(8);
        string text = File.ReadAllText(path);
        Assert.Contains("\"dropouts\":[{", text, StringComparison.Ordinal);
        Assert.Contains("\"dropouts\":[]", text, StringComparison.Ordinal);
        File.WriteAllLines(path, File.ReadAllLines(path).Select(l => Regex.Replace(l, ",?\"dropouts\":\\[[^\\]]*\\]", "")));
        Assert.DoesNotContain("dropouts", File.ReadAllText(path), StringComparison.Ordinal);
        using var reader = RunLog.Open(path);
        var setups = reader.ReadRecords().Where(r => r.Setup is not null).Select(r => r.Setup!).ToList();
        Assert.Equal(4, setups.Count);
        Assert.All(setups, s => Assert.Null(s.Dropouts));
        Assert.Equal(new OptimizerSettings("AdamW", 1e-3, 0.01, null, 0.9, 0.999, true), setups[0].Optimizer);
        Assert.Equal(2, setups[0].Parameters.Count);
    }

    [Theory]
    [InlineData("\"weightDecay\":0.01", "\"weightDecay\":-1", "weightDecay")]
    [InlineData("\"weightDecay\":0.01", "\"weightDecay\":\"Infinity\"", "weightDecay")]
    [InlineData("\"training\":true", "\"training\":1", "training")]
    [InlineData("\"p\":0.95", "\"p\":\"high\"", "p")]
    [InlineData(",\"layerType\":\"Dropout\"", "", "layerType")]
    public void ABadSetupEntryIsCorruptionNamingTheField(string find, string replace, string field)
    {
        string path = WriteLog(3);
        string[] lines = File.ReadAllLines(path);
        int first = Array.FindIndex(lines, l => l.Contains(find, StringComparison.Ordinal));
        lines[first] = lines[first].Replace(find, replace, StringComparison.Ordinal);
        File.WriteAllLines(path, lines);
        using var reader = RunLog.Open(path);
        var error = Assert.Throws<InvalidDataException>(() => reader.ReadRecords().ToList());
        Assert.Contains(field, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FutureSchemaVersionGivesAClearError()
    {
        string header = "{\"schema\":\"gradflow.runlog/3\",\"type\":\"header\"}\n";
        var e = Assert.Throws<NotSupportedException>(() => new RunLogReader(new MemoryStream(Encoding.UTF8.GetBytes(header))));
        Assert.Contains("gradflow.runlog/3", e.Message);
        Assert.Contains("gradflow.runlog/2", e.Message);
        Assert.Contains("line 1", e.Message);

        var lines = File.ReadAllLines(WriteLog(2)).ToList();
        lines.Add(lines[^1].Replace("gradflow.runlog/2", "gradflow.runlog/7"));
        string path = NewPath();
        File.WriteAllLines(path, lines);
        using var reader = RunLog.Open(path);
        Assert.Contains("line 4", Assert.Throws<NotSupportedException>(() => reader.ReadRecords().ToList()).Message);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("{\"schema\":\"gradflow.runlog/1\",\"type\":\"hea", "incomplete")]
    [InlineData("{\"schema\":\"other/1\",\"type\":\"header\"}\n", "not a GradFlow run log")]
    [InlineData("{\"schema\":\"gradflow.runlog/1\",\"type\":\"step\"}\n", "expected the header")]
    public void BadHeaderIsRejected(string content, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => new RunLogReader(new MemoryStream(Encoding.UTF8.GetBytes(content))));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void OverlongLineIsRejectedWithoutBufferingIt()
    {
        var stream = new MemoryStream();
        string header = File.ReadAllLines(WriteLog(0))[0];
        stream.Write(Encoding.UTF8.GetBytes(header + "\n"));
        stream.Write(new byte[1 << 20]); // 1 MiB with no newline
        stream.Position = 0;
        using var reader = new RunLogReader(stream, new RunLogReaderOptions { MaxLineBytes = 4096 });
        var e = Assert.Throws<InvalidDataException>(() => reader.ReadRecords().ToList());
        Assert.Contains("line 2 is longer than the limit of 4096 bytes", e.Message);
        Assert.True(stream.Position < 64 * 1024, $"read {stream.Position} bytes before giving up");
    }

    [Fact]
    public void ConcurrentWritesFromOneWriterAreWholeLines()
    {
        string path = NewPath();
        const int threads = 8, perThread = 40;
        using (var w = new RunLogWriter(path))
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
            {
                for (int i = 0; i < perThread; i++) w.Write(RunLogTestData.Record(t * 1000 + i));
            });
        using var reader = RunLog.Open(path);
        var steps = reader.ReadRecords().Select(r => r.Step).Order().ToList();
        Assert.Empty(reader.Warnings);
        Assert.Equal(Enumerable.Range(0, threads).SelectMany(t => Enumerable.Range(t * 1000, perThread)).Select(s => (long)s), steps);
    }

    [Fact]
    public void ReopeningAppendsAfterTheHeaderAndCutsATornTail()
    {
        string path = WriteLog(2, new RunLogWriterOptions { Metadata = new JsonObject { ["first"] = true } });
        const string torn = "{\"schema\":\"gradflow.runlog/1\",\"ty"; // a crash mid-line
        File.AppendAllText(path, torn);
        RunLogHeader original;
        using (var w = new RunLogWriter(path, new RunLogWriterOptions { Metadata = new JsonObject { ["second"] = true }, Durability = RunLogDurability.FlushToDisk }))
        {
            Assert.Equal(torn.Length, w.DiscardedTailBytes);
            original = w.Header;
            w.Write(RunLogTestData.Record(3));
        }
        using var reader = RunLog.Open(path);
        Assert.Equal(original.StartTime, reader.Header.StartTime);
        Assert.True(reader.Header.Metadata["first"]!.GetValue<bool>());
        Assert.Equal([1L, 2L, 3L], reader.ReadRecords().Select(r => r.Step));
        Assert.Empty(reader.Warnings);
    }

    [Fact]
    public void WriterRefusesToAppendToAFileThatIsNotARunLog()
    {
        string path = NewPath();
        File.WriteAllText(path, "name,value\nloss,1\n");
        Assert.Throws<InvalidDataException>(() => new RunLogWriter(path));
        Assert.Equal("name,value\nloss,1\n", File.ReadAllText(path));
    }

    [Theory]
    [InlineData(RunLogDurability.Process)]
    [InlineData(RunLogDurability.FlushToDisk)]
    [InlineData(RunLogDurability.WriteThrough)]
    public void EveryDurabilityModeWritesReadableLines(RunLogDurability durability)
    {
        using var reader = RunLog.Open(WriteLog(2, new RunLogWriterOptions { Durability = durability }));
        Assert.Equal(2, reader.ReadRecords().Count());
    }

    [Fact]
    public void LinesAreReadableWhileTheWriterIsOpen()
    {
        string path = NewPath();
        using var w = new RunLogWriter(path);
        w.Write(RunLogTestData.Record(1));
        using (var reader = RunLog.Open(path)) Assert.Single(reader.ReadRecords());
        w.Write(RunLogTestData.Record(2));
        using (var reader = RunLog.Open(path)) Assert.Equal(2, reader.ReadRecords().Count());
    }

    [Fact]
    public void LineOverTheWriterLimitIsRefusedAndNothingIsWritten()
    {
        string path = NewPath();
        using var w = new RunLogWriter(path, new RunLogWriterOptions { MaxLineBytes = 1024 });
        long length = new FileInfo(path).Length;
        Assert.Throws<InvalidOperationException>(() => w.Write(RunLogTestData.Record(1)));
        Assert.Equal(length, new FileInfo(path).Length);
    }
}
