using GradFlow.Diagnostics;
using GradFlow.Reporting;

namespace GradFlow.Tests.Reporting;

/// <summary>A full disk (a stream that refuses writes past a budget) under the run log and TensorBoard sinks.</summary>
public sealed class SinkFailureTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "gradflow-sink-" + Guid.NewGuid().ToString("N"));

    public SinkFailureTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A file that fills up: writes past <paramref name="budget"/> bytes write what fits, then throw.</summary>
    private sealed class FullDisk(long budget, bool failOnClose = false) : MemoryStream
    {
        public long Budget { get; set; } = budget;

        public override void Write(ReadOnlySpan<byte> buffer) => Write(buffer.ToArray(), 0, buffer.Length);

        public override void Write(byte[] buffer, int offset, int count)
        {
            int fits = (int)Math.Clamp(Budget - Length, 0, count);
            base.Write(buffer, offset, fits);
            if (fits < count) throw new IOException("No space left on device");
        }

        protected override void Dispose(bool disposing)
        {
            if (failOnClose) throw new IOException("No space left on device (close)");
            base.Dispose(disposing);
        }
    }

    /// <summary>Trains a one-layer model for <paramref name="steps"/> monitored steps; the sink sees every step.</summary>
    private static void Train(Action<StepRecord> sink, int steps)
    {
        var g = new Generator(5);
        var w = Tensor.Randn([3, 4], DType.Float32, g, requiresGrad: true);
        using var monitor = new GradientMonitor([new("0.weight", w)]);
        monitor.StepRecorded += sink;
        var opt = new GradFlow.Optim.SGD([w], lr: 0.1);
        using var _ = opt.AddObserver(monitor);
        for (int i = 0; i < steps; i++)
        {
            opt.ZeroGrad();
            using (Autograd.Scope("0")) Tensor.Randn([2, 3], DType.Float32, g).MatMul(w).Tanh().Sum().Backward();
            opt.Step();
            monitor.EndStep(learningRate: 0.1);
        }
    }

    private static (T Result, string[] Lines) CaptureStderr<T>(Func<T> run)
    {
        var before = Console.Error;
        var capture = new StringWriter();
        Console.SetError(capture);
        try
        {
            return (run(), capture.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        }
        finally
        {
            Console.SetError(before);
        }
    }

    [Fact]
    public void AFullDiskStopsTheRunLogOnceAndTrainingGoesOn()
    {
        string name = "full-" + Guid.NewGuid().ToString("N") + ".jsonl";
        var disk = new FullDisk(long.MaxValue);
        var failures = new List<Exception>();
        int written = 0;
        var (writer, stderr) = CaptureStderr(() =>
        {
            var w = new RunLogWriter(disk, name);
            w.Failed += failures.Add;
            Train(r => { w.Write(r); written++; }, 1);
            disk.Budget = disk.Length + 100; // the next line does not fit
            Train(w.Write, 4);
            w.Dispose();
            w.Dispose();
            return w;
        });
        Assert.IsType<IOException>(Assert.Single(failures));
        Assert.Same(failures[0], writer.Failure);
        Assert.Single(stderr, l => l.Contains(name));
        // What reached the disk is the header and the whole lines written before: the torn line was cut off.
        string path = Path.Combine(_dir, "back.jsonl");
        File.WriteAllBytes(path, disk.ToArray());
        using var reader = RunLog.Open(path);
        Assert.True(written > 0);
        Assert.Equal(written, reader.ReadRecords().Count());
        Assert.Empty(reader.Warnings);
    }

    [Fact]
    public void AFullDiskStopsTheTensorBoardFileOnceWithWholeRecords()
    {
        string name = "events-" + Guid.NewGuid().ToString("N");
        var disk = new FullDisk(long.MaxValue);
        var failures = new List<Exception>();
        int written = 0;
        var (writer, stderr) = CaptureStderr(() =>
        {
            var w = new TensorBoardWriter(disk, name);
            w.Failed += failures.Add;
            Train(r => { w.AddStep(r); written++; }, 2);
            disk.Budget = disk.Length + 50;
            Train(w.AddStep, 3);
            w.AddScalar("after", 1, 9);
            w.Dispose();
            w.Dispose();
            return w;
        });
        Assert.IsType<IOException>(Assert.Single(failures));
        Assert.Same(failures[0], writer.Failure);
        Assert.Single(stderr, l => l.Contains(name));
        string path = Path.Combine(_dir, "events.out.tfevents.1.test");
        File.WriteAllBytes(path, disk.ToArray());
        var events = TfEventReader.ReadEvents(path); // checks every record's framing and CRCs
        Assert.Equal(1 + written, events.Count); // the file version and the steps before the disk filled
    }

    [Fact]
    public void AFailureOnCloseIsReportedNotThrown()
    {
        string name = "close-" + Guid.NewGuid().ToString("N");
        var failures = new List<Exception>();
        var (_, stderr) = CaptureStderr(() =>
        {
            var log = new RunLogWriter(new FullDisk(long.MaxValue, failOnClose: true), name + ".jsonl");
            log.Failed += failures.Add;
            log.Dispose();
            var tb = new TensorBoardWriter(new FullDisk(long.MaxValue, failOnClose: true), name + ".events");
            tb.Failed += failures.Add;
            tb.Dispose();
            tb.Dispose();
            return 0;
        });
        Assert.Equal(2, failures.Count);
        Assert.Equal(2, stderr.Count(l => l.Contains(name)));
    }
}
