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
/// </summary>
/// <example><code>monitor.StepRecorded += writer.Write;</code></example>
public sealed class RunLogWriter : IDisposable
{
    private readonly FileStream _file;
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
        try
        {
            DiscardedTailBytes = CutTornTail();
            if (_file.Length == 0)
            {
                Header = new RunLogHeader(DateTimeOffset.UtcNow, RunLog.GradFlowVersion, options.Metadata ?? []);
                WriteLine(w => RunLogJson.WriteHeader(w, Header));
            }
            else
            {
                _file.Position = 0;
                using (var reader = new RunLogReader(_file, new RunLogReaderOptions { MaxLineBytes = _maxLineBytes }, path, leaveOpen: true))
                    Header = reader.Header;
                _file.Seek(0, SeekOrigin.End);
            }
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

    /// <summary>Bytes of an unterminated last line (a write interrupted by a crash) removed when the log was opened.</summary>
    public long DiscardedTailBytes { get; }

    /// <summary>Appends one step as one line. Matches <see cref="GradientMonitor.StepRecorded"/>.</summary>
    public void Write(StepRecord record)
    {
        Guard.NotNull(record, "RunLogWriter.Write", nameof(record));
        var time = DateTimeOffset.UtcNow;
        WriteLine(w => RunLogJson.WriteStep(w, record, time));
    }

    /// <summary>Closes the file.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _json.Dispose();
            _file.Dispose();
        }
    }

    private void WriteLine(Action<Utf8JsonWriter> write)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
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
                if (_durability == RunLogDurability.FlushToDisk) _file.Flush(flushToDisk: true);
            }
            catch
            {
                // A failed write (disk full) may leave part of the line: cut it off so later lines do not follow garbage.
                TryTruncate(before);
                throw;
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
        catch (IOException)
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
        _file.Flush(flushToDisk: true);
        return length - end;
    }
}
