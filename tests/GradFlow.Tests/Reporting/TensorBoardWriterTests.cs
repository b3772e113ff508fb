using GradFlow.Diagnostics;
using GradFlow.Reporting;

namespace GradFlow.Tests.Reporting;

public sealed class TensorBoardWriterTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "gradflow-tb-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void FileIsNamedAsTensorBoardExpectsAndStartsWithFileVersion()
    {
        string path;
        using (var w = new TensorBoardWriter(_dir)) path = w.FilePath;
        string name = Path.GetFileName(path);
        Assert.Matches(@"^events\.out\.tfevents\.\d{10}\.[A-Za-z0-9_-]+$", name);
        long seconds = long.Parse(name.Split('.')[3]);
        Assert.InRange(DateTimeOffset.UtcNow.ToUnixTimeSeconds() - seconds, 0, 60);
        var events = TfEventReader.ReadEvents(path);
        var first = Assert.Single(events);
        Assert.Equal("brain.Event:2", first.FileVersion);
        Assert.InRange(first.WallTime, seconds, seconds + 60);
    }

    [Fact]
    public void ScalarsReadBackWithTagValueAndStep()
    {
        string path;
        using (var w = new TensorBoardWriter(_dir))
        {
            path = w.FilePath;
            w.AddScalar("train/loss", 0.75, 1);
            w.AddScalar("train/loss", 0.0, 2);
            w.AddScalar("weird tag/é", -1.5e-3, 1L << 40);
        }
        var events = TfEventReader.ReadEvents(path).Skip(1).ToList();
        Assert.Equal([1L, 2L, 1L << 40], events.Select(e => e.Step));
        Assert.Equal(["train/loss", "train/loss", "weird tag/é"], events.Select(e => Assert.Single(e.Values).Tag));
        Assert.Equal([0.75f, 0f, -1.5e-3f], events.Select(e => e.Values[0].SimpleValue!.Value));
        Assert.All(events, e => Assert.Null(e.FileVersion));
    }

    [Fact]
    public void HistogramOfValuesPlacesEveryValueInItsTensorBoardBucket()
    {
        double[] values = [-3.3, -3.1, -0.7, 0, 0, 0.3, 0.31, 5.5, 1e-30, -1e9, double.NaN, double.PositiveInfinity];
        var h = WriteAndReadHistogram(w => w.AddHistogram("h", values, 7));
        var finite = values.Where(double.IsFinite).ToArray();
        Assert.Equal(finite.Min(), h.Min);
        Assert.Equal(finite.Max(), h.Max);
        Assert.Equal(finite.Length, h.Num);
        Assert.Equal(finite.Sum(), h.Sum, 6);
        Assert.Equal(finite.Sum(x => x * x), h.SumSquares, 6);
        AssertTensorBoardBuckets(h, finite);
    }

    [Fact]
    public void Log2HistogramMapsSignExponentBucketsToAscendingRanges()
    {
        // -3 lies in exponent 1 (|x| in [2, 4)), 0.3 in exponent -2 ([0.25, 0.5)), 5 in exponent 2.
        var log2 = new Log2Histogram { Zero = 4, NonFinite = 9 };
        log2.Negative[Log2Histogram.BucketOf(1)] = 2;
        log2.Positive[Log2Histogram.BucketOf(-2)] = 3;
        log2.Positive[Log2Histogram.BucketOf(2)] = 1;
        var h = WriteAndReadHistogram(w => w.AddHistogram("h", log2, 1));
        // Ranges (upper edges): (-4, -2] 2, (-2, 0] 4 zeros, (0, 0.25] empty, (0.25, 0.5] 3, (0.5, 4] empty, (4, 8] 1.
        Assert.Equal([-2, 0, 0.25, 0.5, 4, 8], h.BucketLimit);
        Assert.Equal([2, 4, 0, 3, 0, 1], h.Bucket);
        Assert.Equal(-4, h.Min);
        Assert.Equal(8, h.Max);
        Assert.Equal(10, h.Num);
        Assert.True(h.BucketLimit.Zip(h.BucketLimit.Skip(1)).All(p => p.First < p.Second), "limits ascend");
    }

    [Fact]
    public void Log2HistogramBoundsUseMaxAbsAndExactSumOfSquares()
    {
        var log2 = new Log2Histogram();
        log2.Positive[Log2Histogram.BucketOf(2)] = 2;  // values in [4, 8)
        log2.Positive[Log2Histogram.BucketOf(40)] = 1; // clamped into the top bucket: 1e6
        var stats = new TensorStats(3, Math.Sqrt(25 + 36 + 1e12), 0, 1e6, 0, 0, 0, 0, log2);
        var h = WriteAndReadHistogram(w => w.AddHistogram("h", log2, 1, stats));
        Assert.Equal(4, h.Min);
        Assert.Equal(1e6, h.Max);
        Assert.Equal(1e6, h.BucketLimit[^1]);
        Assert.Equal(25 + 36 + 1e12, h.SumSquares, 1);
    }

    [Fact]
    public void EmptyHistogramIsNotWritten()
    {
        string path;
        using (var w = new TensorBoardWriter(_dir))
        {
            path = w.FilePath;
            w.AddHistogram("h", [double.NaN], 1);
            w.AddHistogram("h", new Log2Histogram(), 1);
        }
        Assert.Single(TfEventReader.ReadEvents(path));
    }

    [Fact]
    public void EveryFlippedByteIsDetected()
    {
        string path;
        using (var w = new TensorBoardWriter(_dir))
        {
            path = w.FilePath;
            w.AddScalar("loss", 1.25, 3);
            w.AddHistogram("h", [1.0, -2.0, 3.5], 3);
        }
        byte[] good = File.ReadAllBytes(path);
        Assert.Equal(3, TfEventReader.ReadRecords(good).Count);
        for (int i = 0; i < good.Length; i++)
        {
            byte[] bad = (byte[])good.Clone();
            bad[i] ^= 0x10;
            Assert.Throws<InvalidDataException>(() => TfEventReader.ReadRecords(bad));
        }
    }

    [Fact]
    public void WritersStartedInTheSameSecondGetDistinctFiles()
    {
        using var a = new TensorBoardWriter(_dir);
        using var b = new TensorBoardWriter(_dir);
        using var c = new TensorBoardWriter(_dir);
        Assert.Equal(3, new[] { a.FilePath, b.FilePath, c.FilePath }.Distinct().Count());
        Assert.All(Directory.GetFiles(_dir), f => Assert.Contains("tfevents", f));
    }

    [Fact]
    public void AttachedMonitorWritesScalarsAndLayerHistogramsEachStep()
    {
        var g = new Generator(5);
        var w0 = Tensor.Randn([4, 8], DType.Float32, g, requiresGrad: true);
        var w1 = Tensor.Randn([8, 2], DType.Float32, g, requiresGrad: true);
        using var monitor = new GradientMonitor([new("0.weight", w0), new("1.weight", w1)]);
        using (TensorBoard.Attach(monitor, _dir))
        {
            for (int step = 0; step < 3; step++)
            {
                w0.Grad = null;
                w1.Grad = null;
                Tensor h;
                using (Autograd.Scope("0")) h = Tensor.Randn([16, 4], DType.Float32, g).MatMul(w0).Relu();
                using (Autograd.Scope("1")) h = h.MatMul(w1);
                h.Pow(2).Mean().Backward();
                monitor.ObserveClip(2.0, 1.0);
                monitor.EndStep(learningRate: 0.1);
            }
        }
        var events = TfEventReader.ReadEvents(Assert.Single(Directory.GetFiles(_dir))).Skip(1).ToList();
        Assert.Equal([1L, 2L, 3L], events.Select(e => e.Step));
        var tags = events[0].Values.Select(v => v.Tag).ToHashSet();
        foreach (string tag in new[] { "train/loss", "train/learning_rate", "train/grad_norm", "train/grad_norm_clipped",
                     "grad_norm/0", "grad_norm/1", "input_grad_norm/1", "dead_fraction/0/Relu", "grad/0", "grad/1" })
            Assert.Contains(tag, tags);
        var scalars = events[0].Values.Where(v => v.SimpleValue is not null).ToDictionary(v => v.Tag, v => v.SimpleValue!.Value);
        Assert.Equal(0.1f, scalars["train/learning_rate"]);
        Assert.Equal(2f, scalars["train/grad_norm"]);
        Assert.Equal(1f, scalars["train/grad_norm_clipped"]);
        var histo = events[0].Values.Single(v => v.Tag == "grad/0").Histo!;
        Assert.Equal(32, histo.Bucket.Sum());
        Assert.Equal(32, histo.Num);
    }

    private HistoProto WriteAndReadHistogram(Action<TensorBoardWriter> write)
    {
        string path;
        using (var w = new TensorBoardWriter(_dir))
        {
            path = w.FilePath;
            write(w);
        }
        var events = TfEventReader.ReadEvents(path);
        Assert.Equal(2, events.Count);
        var value = Assert.Single(events[1].Values);
        Assert.Null(value.SimpleValue);
        return value.Histo!;
    }

    // TensorBoard reads bucket i as (left_i, right_i] with lefts = [min] + limits[:-1] and rights = limits[:-1] + [max]
    // (tensorboard/data_compat.py, _migrate_histogram); the first bucket also holds min itself.
    private static void AssertTensorBoardBuckets(HistoProto h, double[] values)
    {
        int n = h.Bucket.Length;
        Assert.Equal(n, h.BucketLimit.Length);
        for (int i = 0; i < n; i++)
        {
            double left = i == 0 ? h.Min : h.BucketLimit[i - 1], right = i == n - 1 ? h.Max : h.BucketLimit[i];
            long inside = values.Count(x => (x > left || (i == 0 && x == left)) && x <= right);
            Assert.True(inside == h.Bucket[i], $"bucket {i} ({left}, {right}]: expected {inside}, wrote {h.Bucket[i]}");
        }
    }
}
