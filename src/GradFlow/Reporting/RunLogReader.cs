using System.Text.Json;
using GradFlow.Diagnostics;
using GradFlow.Formats;

namespace GradFlow.Reporting;

/// <summary>
/// Streams a run log back into <see cref="StepRecord"/>s, one line at a time. A line is committed when its
/// newline is written, so an unterminated last line is a write the crash interrupted: it is skipped with a
/// warning, as is a last line that does not parse. A bad line anywhere else is corruption and throws an
/// <see cref="InvalidDataException"/> naming the line; a log written by a newer schema version throws
/// <see cref="NotSupportedException"/>. The header is read on construction.
/// </summary>
public sealed class RunLogReader : IDisposable
{
    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly string _source;
    private readonly JsonLineReader _lines;
    private readonly List<RunLogWarning> _warnings = [];
    private readonly Action<RunLogWarning>? _onWarning;
    private bool _enumerated;

    /// <summary>Reads a run log from a stream positioned at its start.</summary>
    /// <param name="stream">The log.</param>
    /// <param name="options">Line limit and warning callback.</param>
    /// <param name="sourceName">How errors name the log (a file name); "run log" by default.</param>
    /// <param name="leaveOpen">Keep the stream open when the reader is disposed.</param>
    public RunLogReader(Stream stream, RunLogReaderOptions? options = null, string? sourceName = null, bool leaveOpen = false)
    {
        Guard.NotNull(stream, "RunLogReader", nameof(stream));
        options ??= new RunLogReaderOptions();
        RunLog.CheckMaxLineBytes(options.MaxLineBytes, nameof(options));
        (_stream, _leaveOpen, _source, _onWarning) = (stream, leaveOpen, sourceName ?? "run log", options.OnWarning);
        _lines = new JsonLineReader(stream, _source, options.MaxLineBytes);
        try
        {
            Header = ReadHeader();
        }
        catch
        {
            if (!leaveOpen) stream.Dispose();
            throw;
        }
    }

    /// <summary>Opens a run log file for reading (other processes may keep appending to it).</summary>
    public static RunLogReader Open(string path, RunLogReaderOptions? options = null)
    {
        Guard.NotEmpty(path, "RunLogReader.Open", nameof(path));
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 64 * 1024);
        return new RunLogReader(file, options, path);
    }

    /// <summary>The log's header line.</summary>
    public RunLogHeader Header { get; }

    /// <summary>Lines skipped so far (a torn or corrupt last line).</summary>
    public IReadOnlyList<RunLogWarning> Warnings => _warnings;

    /// <summary>The steps with the time each was written, streamed (the log can be read once).</summary>
    public IEnumerable<RunLogEntry> ReadEntries()
    {
        if (_enumerated) throw new InvalidOperationException($"{nameof(RunLogReader)}: the log of {_source} has already been read; open it again to reread.");
        _enumerated = true;
        return Entries();
    }

    /// <summary>The steps, streamed (the log can be read once).</summary>
    public IEnumerable<StepRecord> ReadRecords() => ReadEntries().Select(e => e.Record);

    /// <summary>Closes the stream unless told to leave it open.</summary>
    public void Dispose()
    {
        if (!_leaveOpen) _stream.Dispose();
    }

    private IEnumerable<RunLogEntry> Entries()
    {
        while (_lines.TryReadLine(out var line, out bool terminated))
        {
            if (IsBlank(line.Span)) continue;
            long number = _lines.LineNumber;
            if (!terminated)
            {
                Warn(number, $"the last line has no newline ({line.Length} bytes): the writer stopped while writing it; skipped.");
                yield break;
            }
            if (Parse(line, number, expectHeader: false) is not { } entry) yield break;
            yield return (RunLogEntry)entry;
        }
    }

    private RunLogHeader ReadHeader()
    {
        ReadOnlyMemory<byte> line;
        bool terminated;
        do
        {
            if (!_lines.TryReadLine(out line, out terminated)) throw new InvalidDataException($"{_source}: the run log is empty (no header line).");
        } while (IsBlank(line.Span));
        if (!terminated)
            throw new InvalidDataException($"{_source}: line {_lines.LineNumber}: the header line is incomplete (no newline); the writer stopped while writing it.");
        return (RunLogHeader)Parse(line, _lines.LineNumber, expectHeader: true)!;
    }

    // Parses one terminated line. A bad last line gives a warning and null; a bad line elsewhere throws.
    private object? Parse(ReadOnlyMemory<byte> line, long number, bool expectHeader)
    {
        try
        {
            if (!System.Text.Unicode.Utf8.IsValid(line.Span)) throw new InvalidDataException("the line is not valid UTF-8.");
            using var doc = JsonDocument.Parse(line, RunLogJson.DocumentOptions);
            string type = RunLogJson.LineType(doc.RootElement);
            return (type, expectHeader) switch
            {
                ("header", true) => RunLogJson.ReadHeader(doc.RootElement),
                ("step", false) => RunLogJson.ReadStep(doc.RootElement),
                (_, true) => throw new InvalidDataException($"expected the header line, found type '{type}'."),
                ("header", false) => throw new InvalidDataException("a second header line; a run log has one, on line 1."),
                _ => throw new InvalidDataException($"unknown line type '{type}'."),
            };
        }
        catch (NotSupportedException e)
        {
            throw new NotSupportedException($"{_source}: line {number}: {e.Message}", e);
        }
        // InvalidOperationException: a string escapes a lone UTF-16 surrogate, which no .NET string can hold.
        catch (Exception e) when (e is JsonException or InvalidDataException or InvalidOperationException)
        {
            if (!expectHeader && _lines.AtEnd())
            {
                Warn(number, $"the last line is corrupt ({e.Message}); skipped.");
                return null;
            }
            throw new InvalidDataException($"{_source}: line {number} is corrupt: {e.Message}", e);
        }
    }

    private void Warn(long line, string message)
    {
        var warning = new RunLogWarning(line, message);
        _warnings.Add(warning);
        _onWarning?.Invoke(warning);
    }

    private static bool IsBlank(ReadOnlySpan<byte> line) => line.IndexOfAnyExcept((byte)' ', (byte)'\t', (byte)'\r') < 0;
}
