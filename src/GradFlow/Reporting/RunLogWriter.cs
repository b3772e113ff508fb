using System.Buffers;
using System.Text.Json;
using GradFlow.Diagnostics;

namespace GradFlow.Reporting;

/// <summary>
/// Appends <see cref="StepRecord"/>s to a JSONL run log (schema in docs/RUNLOG.md), one line per step.
/// Each line is serialised in memory and handed to the file in a single write, then flushed as
/// <see cref="RunLogWriterOptions.Durability"/> says, so a crash loses at most the line being written.
/// A new file gets a header line; an existing log is appended to after its header is checked, and a torn
/// last line left by an earlier crash is cut off first (see <see cref="DiscardedTailBytes"/>).
/// Thread-safe: concurrent <see cref="Write"/>s produce whole lines. One writer per file (others may read).
/// A write the file system refuses (disk full, ...) is cut off, reported once (stderr and <see cref="Failed"/>)
/// and ends the writer's output, never the training that calls it: later writes do nothing.
/// </summary>
/// <example><code>monitor.StepRecorded += writer.Write;</code></example>
public sealed class RunLogWriter : IDisposable
{
    private readonly Stream _file;
    private readonly SinkFailure _failure;
    private readonly RunLogDurability _durability;
    private readonly int _maxLineBytes;
    private readonly ArrayBufferWriter<byte> _line = new(16 * 1024);
    private readonly Utf8JsonWriter _json;
    private readonly Lock _gate = new();
    private bool _disposed;

    /// <summary>Opens (or creates) the log at <paramref name="path"/> for appending.</summary>
    public RunLogWriter(string path, RunLogWriterOptions? options = null)
    {
        Guard.NotEmpty(path, "RunLogWriter", nameof(path));
        options ??= new RunLogWriterOptions();
        RunLog.CheckMaxLineBytes(options.MaxLineBytes, nameof(options));
        (Path, _durability, _maxLineBytes) = (path, options.Durability, options.MaxLineBytes);
        _json = new Utf8JsonWriter(_line, RunLogJson.WriterOptions);
        // No FileStream buffer: each line goes to the OS in exactly the one write we make.
        var fileOptions = _durability == RunLogDurability.WriteThrough ? FileOptions.WriteThrough : FileOptions.None;
        _file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, bufferSize: 0, fileOptions);
        _failure = new SinkFailure("run log", path);
        Header = Open(options, path);
    }

    /// <summary>A writer over any read-write stream (tests give one that fails).</summary>
    internal RunLogWriter(Stream stream, string name, RunLogWriterOptions? options = null)
    {
        options ??= new RunLogWriterOptions();
        (Path, _durability, _maxLineBytes) = (name, options.Durability, options.MaxLineBytes);
        _json = new Utf8JsonWriter(_line, RunLogJson.WriterOptions);
        _file = stream;
        _failure = new SinkFailure("run log", name);
        Header = Open(options, name);
    }

    private RunLogHeader Open(RunLogWriterOptions options, string path)
    {
        try
        {
            DiscardedTailBytes = CutTornTail();
            if (_file.Length == 0)
            {
                var header = new RunLogHeader(DateTimeOffset.UtcNow, RunLog.GradFlowVersion, options.Metadata ?? []);
                // The header is written before training starts: its failure is the caller's to see.
                WriteLine(w => RunLogJson.WriteHeader(w, header), absorbFailure: false);
                return header;
            }
            _file.Position = 0;
            RunLogHeader existing;
            using (var reader = new RunLogReader(_file, new RunLogReaderOptions { MaxLineBytes = _maxLineBytes }, path, leaveOpen: true))
                existing = reader.Header;
            _file.Seek(0, SeekOrigin.End);
            return existing;
        }
        catch
        {
            _file.Dispose();
            throw;
        }
    }

    /// <summary>The log file.</summary>
    public string Path { get; }

    /// <summary>The log's header: the one written now for a new log, or the existing one when appending.</summary>
    public RunLogHeader Header { get; }

    /// <summary>Raised once, with the error, when a write fails and the writer stops.</summary>
    public event Action<Exception>? Failed;

    /// <summary>The error that stopped the writer, or null while it writes.</summary>
    public Exception? Failure => _failure.Error;

    /// <summary>Bytes of an unterminated last line (a write interrupted by a crash) removed when the log was opened.</summary>
    public long DiscardedTailBytes { get; private set; }

    /// <summary>Appends one step as one line (nothing once the writer has failed). Matches <see cref="GradientMonitor.StepRecorded"/>.</summary>
    public void Write(StepRecord record)
    {
        Guard.NotNull(record, "RunLogWriter.Write", nameof(record));
        var time = DateTimeOffset.UtcNow;
        WriteLine(w => RunLogJson.WriteStep(w, record, time));
    }

    /// <summary>Closes the file; an error closing it is reported as a failed write, not thrown.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _json.Dispose();
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

    private void WriteLine(Action<Utf8JsonWriter> write, bool absorbFailure = true)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_failure.Error is not null) return;
            _line.ResetWrittenCount();
            _json.Reset(_line);
            write(_json);
            _json.Flush();
            _line.GetSpan(1)[0] = (byte)'\n';
            _line.Advance(1);
            if (_line.WrittenCount > _maxLineBytes)
                throw new InvalidOperationException($"{nameof(RunLogWriter)}: a line of {_line.WrittenCount} bytes exceeds the limit of {_maxLineBytes} bytes (RunLogWriterOptions.MaxLineBytes); nothing was written.");
            long before = _file.Position;
            try
            {
                _file.Write(_line.WrittenSpan);
                if (_durability == RunLogDurability.FlushToDisk)
                {
                    if (_file is FileStream fs) fs.Flush(flushToDisk: true);
                    else _file.Flush();
                }
            }
            catch (Exception e) when (SinkFailure.IsWriteFailure(e))
            {
                // A failed write (disk full) may leave part of the line: cut it off so the log still reads back.
                TryTruncate(before);
                if (!absorbFailure) throw;
                _failure.Report(e, Failed);
            }
        }
    }

    private void TryTruncate(long length)
    {
        try
        {
            _file.SetLength(length);
            _file.Position = length;
        }
        catch (Exception e) when (SinkFailure.IsWriteFailure(e) || e is NotSupportedException)
        {
            // The log still reads back: the torn line is cut off the next time a writer opens it.
        }
    }

    // An earlier crash may have left a partial line; appending after it would bury it mid-file as corruption.
    private long CutTornTail()
    {
        long length = _file.Length;
        if (length == 0) return 0;
        Span<byte> chunk = stackalloc byte[4096];
        long end = length;
        while (end > 0)
        {
            int n = (int)Math.Min(chunk.Length, end);
            _file.Position = end - n;
            _file.ReadExactly(chunk[..n]);
            int newline = chunk[..n].LastIndexOf((byte)'\n');
            if (newline >= 0)
            {
                end = end - n + newline + 1;
                break;
            }
            end -= n;
        }
        if (end == length) return 0;
        _file.SetLength(end);
        if (_file is FileStream fs) fs.Flush(flushToDisk: true);
        return length - end;
    }
}
