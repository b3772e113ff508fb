namespace GradFlow.Formats;

/// <summary>
/// Splits a stream into '\n'-terminated lines without ever buffering more than the line limit, so a file
/// with no newline (or a hostile gigabyte line) fails with a clear error instead of exhausting memory.
/// A returned line stays valid until the next call.
/// </summary>
internal sealed class JsonLineReader(Stream stream, string source, int maxLineBytes)
{
    private byte[] _buffer = new byte[Math.Min(64 * 1024, maxLineBytes + 1)];
    private int _start, _end, _scanned;
    private bool _eof;

    /// <summary>The 1-based number of the line last returned.</summary>
    public long LineNumber { get; private set; }

    /// <summary>Reads the next line (without its '\n' or a '\r' before it); <paramref name="terminated"/> tells whether it ended with '\n'.</summary>
    public bool TryReadLine(out ReadOnlyMemory<byte> line, out bool terminated)
    {
        while (true)
        {
            int newline = _buffer.AsSpan(_scanned, _end - _scanned).IndexOf((byte)'\n');
            if (newline >= 0)
            {
                int end = _scanned + newline;
                if (end - _start > maxLineBytes) ThrowTooLong();
                line = Trim(_start, end);
                _start = _scanned = end + 1;
                terminated = true;
                LineNumber++;
                return true;
            }
            _scanned = _end;
            if (_end - _start > maxLineBytes) ThrowTooLong();
            if (_eof)
            {
                terminated = false;
                line = Trim(_start, _end);
                bool any = _end > _start;
                _start = _scanned = _end;
                if (any) LineNumber++;
                return any;
            }
            Fill();
        }
    }

    /// <summary>True if nothing follows the line last returned.</summary>
    public bool AtEnd()
    {
        while (_start == _end && !_eof) Fill();
        return _start == _end;
    }

    private ReadOnlyMemory<byte> Trim(int start, int end) =>
        _buffer.AsMemory(start, end > start && _buffer[end - 1] == '\r' ? end - start - 1 : end - start);

    private void Fill()
    {
        if (_start > 0)
        {
            // Slide the partial line to the front before reading more.
            _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
            _end -= _start;
            _scanned -= _start;
            _start = 0;
        }
        if (_end == _buffer.Length) System.Array.Resize(ref _buffer, (int)Math.Min((long)_buffer.Length * 2, (long)maxLineBytes + 1));
        int read = stream.Read(_buffer, _end, _buffer.Length - _end);
        if (read == 0) _eof = true;
        _end += read;
    }

    private void ThrowTooLong() =>
        throw new InvalidDataException($"{source}: line {LineNumber + 1} is longer than the limit of {maxLineBytes} bytes; the file is corrupt or not a run log.");
}
