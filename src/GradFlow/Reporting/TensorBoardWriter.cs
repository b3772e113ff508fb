using GradFlow.Diagnostics;
using GradFlow.Formats;

namespace GradFlow.Reporting;

/// <summary>
/// Writes a TensorBoard event file (<c>events.out.tfevents.&lt;unix seconds&gt;.&lt;hostname&gt;</c>) with no
/// dependency: TFRecord framing with CRC-32C and hand-encoded protobuf Events. The first record carries
/// <c>file_version = "brain.Event:2"</c>; each later one a Summary of scalars (simple_value) and histograms
/// (HistogramProto) at a step. Point <c>tensorboard --logdir</c> at the directory. Thread-safe.
/// Writes are buffered: call <see cref="Flush"/> (or <see cref="AddStep"/>, which flushes) to make them visible.
/// Buffered records go to the file in one write, so a write the file system refuses (disk full, ...) is
/// cut back to the last whole record, reported once (stderr and <see cref="Failed"/>) and stops the writer,
/// never the training that calls it: later additions do nothing, and <see cref="Dispose"/> does not throw.
/// </summary>
public sealed class TensorBoardWriter : IDisposable
{
    // Field numbers from tensorflow/core/util/event.proto and tensorflow/core/framework/summary.proto.
    private const int EventWallTime = 1, EventStep = 2, EventFileVersion = 3, EventSummary = 5;
    private const int SummaryValue = 1;
    private const int ValueTag = 1, ValueSimpleValue = 2, ValueHisto = 5;
    private const int HistoMin = 1, HistoMax = 2, HistoNum = 3, HistoSum = 4, HistoSumSquares = 5, HistoBucketLimit = 6, HistoBucket = 7;

    // Records are framed into _pending and written to _file whole, so a failed write can be cut back cleanly.
    private const int FlushThreshold = 64 * 1024;
    private readonly Stream _file;
    private readonly MemoryStream _pending = new();
    private readonly TfRecordWriter _records;
    private readonly SinkFailure _failure;
    private readonly Lock _gate = new();
    private readonly ProtoWriter _event = new(), _summary = new(), _value = new(), _histo = new();
    private bool _disposed;

    /// <summary>Creates the log directory if needed and a new event file in it.</summary>
    public TensorBoardWriter(string logDir)
    {
        Guard.NotBlank(logDir, "TensorBoardWriter", nameof(logDir));
        Directory.CreateDirectory(logDir);
        long seconds = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        string host = string.Concat(Environment.MachineName.Where(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'));
        string baseName = Path.Combine(logDir, $"events.out.tfevents.{seconds}.{(host.Length > 0 ? host : "localhost")}");
        FileStream? file = null;
        // Two writers in the same second on one host would collide: TensorBoard reads any "*tfevents*" file, so add a counter.
        for (int attempt = 0; file is null; attempt++)
        {
            FilePath = attempt == 0 ? baseName : $"{baseName}.{attempt}";
            try { file = new FileStream(FilePath, FileMode.CreateNew, FileAccess.Write, FileShare.Read, bufferSize: 0); }
            catch (IOException) when (attempt < 100 && File.Exists(FilePath)) { }
        }
        (_file, _records, _failure) = (file, new TfRecordWriter(_pending), new SinkFailure("TensorBoard event file", FilePath));
        WriteFileVersion();
    }

    /// <summary>A writer over any stream (tests give one that fails).</summary>
    internal TensorBoardWriter(Stream stream, string name)
    {
        FilePath = name;
        (_file, _records, _failure) = (stream, new TfRecordWriter(_pending), new SinkFailure("TensorBoard event file", name));
        WriteFileVersion();
    }

    // The first record, before training: its failure is the caller's to see.
    private void WriteFileVersion()
    {
        _event.WriteDouble(EventWallTime, WallTime());
        _event.WriteString(EventFileVersion, "brain.Event:2");
        _records.Write(_event.Written);
        try
        {
            FlushPending(absorbFailure: false);
        }
        catch
        {
            _file.Dispose();
            throw;
        }
    }

    /// <summary>Raised once, with the error, when a write fails and the writer stops.</summary>
    public event Action<Exception>? Failed;

    /// <summary>The error that stopped the writer, or null while it writes.</summary>
    public Exception? Failure => _failure.Error;

    /// <summary>The event file being written.</summary>
    public string FilePath { get; } = "";

    /// <summary>Adds a scalar (shown in TensorBoard's Scalars tab; stored as float32, as TensorBoard does).</summary>
    public void AddScalar(string tag, double value, long step)
    {
        Guard.NotEmpty(tag, "TensorBoardWriter.AddScalar", nameof(tag));
        lock (_gate)
        {
            BeginSummary();
            AddScalarValue(tag, value);
            EndSummary(step);
        }
    }

    /// <summary>
    /// Adds a gradient-monitor histogram: sign/exponent buckets become ascending signed ranges. Give the
    /// tensor's <see cref="TensorStats"/> to bound min and max by its max |x| and use its exact sum of squares.
    /// Nothing is written when the histogram holds no finite value.
    /// </summary>
    public void AddHistogram(string tag, Log2Histogram histogram, long step, TensorStats? stats = null)
    {
        Guard.NotEmpty(tag, "TensorBoardWriter.AddHistogram", nameof(tag));
        Guard.NotNull(histogram, "TensorBoardWriter.AddHistogram", nameof(histogram));
        AddHistogram(tag, TensorBoardHistogram.FromLog2(histogram, stats?.MaxAbs, stats is null ? null : stats.L2Norm * stats.L2Norm), step);
    }

    /// <summary>Adds a histogram of raw values (log2 buckets by sign, exact min, max, sum and sum of squares; non-finite values left out).</summary>
    public void AddHistogram(string tag, ReadOnlySpan<double> values, long step)
    {
        Guard.NotEmpty(tag, "TensorBoardWriter.AddHistogram", nameof(tag));
        AddHistogram(tag, TensorBoardHistogram.FromValues(values), step);
    }

    /// <summary>Adds a histogram of a tensor's values.</summary>
    public void AddHistogram(string tag, Tensor tensor, long step)
    {
        Guard.NotNull(tensor, "TensorBoardWriter.AddHistogram", nameof(tensor));
        AddHistogram(tag, tensor.ToDoubleArray(), step);
    }

    /// <summary>
    /// Writes one monitored step as a single event: loss, learning rate, global gradient norm (before and
    /// after clipping), each layer's gradient norm, update-to-weight ratio and input-gradient norm, activation
    /// dead and saturated fractions, and every layer's gradient histogram; then flushes. Tags are listed in docs/RUNLOG.md.
    /// </summary>
    public void AddStep(StepRecord record)
    {
        Guard.NotNull(record, "TensorBoardWriter.AddStep", nameof(record));
        lock (_gate)
        {
            BeginSummary();
            foreach (var (tag, value) in TensorBoard.Scalars(record)) AddScalarValue(tag, value);
            foreach (var layer in record.Layers)
                if (layer.Gradient.Histogram is { } h && TensorBoardHistogram.FromLog2(h, layer.Gradient.MaxAbs, layer.Gradient.L2Norm * layer.Gradient.L2Norm) is { } histo)
                    AddHistogramValue(TensorBoard.HistogramTag(layer.Layer), histo);
            EndSummary(record.Step);
            FlushPending();
        }
    }

    /// <summary>Pushes buffered events to the operating system, where TensorBoard can read them.</summary>
    public void Flush()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            FlushPending();
        }
    }

    /// <summary>Flushes and closes the file; an error doing so is reported as a failed write, not thrown.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            FlushPending();
            try
            {
                _file.Dispose();
            }
            catch (Exception e) when (SinkFailure.IsWriteFailure(e))
            {
                _failure.Report(e, Failed);
            }
        }
    }

    private void FlushPending(bool absorbFailure = true)
    {
        if (_failure.Error is not null || _pending.Length == 0) return;
        long before = -1;
        try
        {
            if (_file.CanSeek) before = _file.Position;
            _file.Write(_pending.GetBuffer(), 0, (int)_pending.Length);
            _file.Flush();
        }
        catch (Exception e) when (SinkFailure.IsWriteFailure(e))
        {
            // Cut a partly written record off, so the file ends with whole records.
            if (before >= 0)
            {
                try { _file.SetLength(before); }
                catch (Exception cut) when (SinkFailure.IsWriteFailure(cut) || cut is NotSupportedException) { }
            }
            if (!absorbFailure) throw;
            _failure.Report(e, Failed);
        }
        finally
        {
            _pending.SetLength(0);
        }
    }

    private void AddHistogram(string tag, TensorBoardHistogram? histogram, long step)
    {
        if (histogram is null) return;
        lock (_gate)
        {
            BeginSummary();
            AddHistogramValue(tag, histogram);
            EndSummary(step);
        }
    }

    private void BeginSummary()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _summary.Clear();
    }

    private void AddScalarValue(string tag, double value)
    {
        _value.Clear();
        _value.WriteString(ValueTag, tag);
        _value.WriteFloat(ValueSimpleValue, (float)value);
        _summary.WriteMessage(SummaryValue, _value);
    }

    private void AddHistogramValue(string tag, TensorBoardHistogram h)
    {
        _histo.Clear();
        _histo.WriteDouble(HistoMin, h.Min);
        _histo.WriteDouble(HistoMax, h.Max);
        _histo.WriteDouble(HistoNum, h.Num);
        _histo.WriteDouble(HistoSum, h.Sum);
        _histo.WriteDouble(HistoSumSquares, h.SumSquares);
        _histo.WritePackedDoubles(HistoBucketLimit, h.BucketLimits);
        _histo.WritePackedDoubles(HistoBucket, h.BucketCounts);
        _value.Clear();
        _value.WriteString(ValueTag, tag);
        _value.WriteMessage(ValueHisto, _histo);
        _summary.WriteMessage(SummaryValue, _value);
    }

    private void EndSummary(long step)
    {
        _event.Clear();
        _event.WriteDouble(EventWallTime, WallTime());
        _event.WriteInt64(EventStep, step);
        _event.WriteMessage(EventSummary, _summary);
        if (_failure.Error is not null) return;
        _records.Write(_event.Written);
        if (_pending.Length >= FlushThreshold) FlushPending();
    }

    private static double WallTime() => (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).TotalSeconds;
}
