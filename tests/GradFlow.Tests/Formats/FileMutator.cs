using System.Buffers.Binary;
using System.Text;

namespace GradFlow.Tests.Formats;

/// <summary>
/// Damages a file the way disks, truncated copies and careless edits do: bit flips, truncations, inserted
/// or deleted bytes, rewritten length fields, JSON edits (numbers turned into strings or huge values,
/// duplicate keys, lone surrogate escapes) and invalid UTF-8. Each case is a pure function of its seed, so
/// a failing case is reproduced from its number alone. Shared by the suite's fuzz test and the standalone
/// runner in tests/GradFlow.Fuzz.
/// </summary>
internal static class FileMutator
{
    private static readonly byte[] s_interestingBytes = [0, 0xFF, 0x7F, 0x80, .. "\"{}[],:\\\n\r -0e.9"u8];
    private static readonly long[] s_interestingNumbers = [0, 1, 2, 7, 8, -1, 255, 256, int.MaxValue, (long)int.MaxValue + 1, uint.MaxValue, long.MaxValue, long.MinValue, 100_000_000, 100_000_001];
    private static readonly string[] s_jsonValues = ["\"0\"", "\"8\"", "-1", "1e309", "-1e309", "99999999999999999999", "0.5", "null", "true", "[]", "{}", "[0]", "\"\\ud800\"", "\"NaN\"", "2147483648", "9223372036854775807"];
    private static readonly byte[][] s_badUtf8 = [[0xC0, 0x80], [0xFF], [0xED, 0xA0, 0x80], [0xE2, 0x82], [0xF4, 0x90, 0x80, 0x80], [0x80]];

    /// <summary>
    /// One damaged copy of <paramref name="original"/>. With <paramref name="safeTensorsFrame"/>, the JSON edits
    /// usually go to the header and fix up its 8-byte length, so they reach the JSON parser.
    /// </summary>
    public static byte[] Mutate(byte[] original, int seed, bool safeTensorsFrame = false)
    {
        var rng = new Random(seed);
        var bytes = original.ToList();
        int edits = 1 + rng.Next(3);
        for (int e = 0; e < edits; e++)
        {
            int kind = rng.Next(10);
            if (safeTensorsFrame && kind >= 6 && rng.Next(5) != 0) EditHeader(bytes, rng, kind);
            else Apply(bytes, rng, kind);
        }
        return [.. bytes];
    }

    private static void EditHeader(List<byte> bytes, Random rng, int kind)
    {
        if (bytes.Count < 8) { Apply(bytes, rng, kind); return; }
        long n = BinaryPrimitives.ReadInt64LittleEndian(bytes.Take(8).ToArray());
        if (n < 0 || n > bytes.Count - 8) { Apply(bytes, rng, kind); return; }
        var header = bytes.GetRange(8, (int)n);
        Apply(header, rng, kind);
        bytes.RemoveRange(8, (int)n);
        bytes.InsertRange(8, header);
        var len = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(len, header.Count);
        for (int i = 0; i < 8; i++) bytes[i] = len[i];
    }

    private static void Apply(List<byte> b, Random rng, int kind)
    {
        if (b.Count == 0) { b.Add(s_interestingBytes[rng.Next(s_interestingBytes.Length)]); return; }
        switch (kind)
        {
            case 0: // bit flips
                for (int i = 1 + rng.Next(4); i > 0; i--) b[rng.Next(b.Count)] ^= (byte)(1 << rng.Next(8));
                break;
            case 1: // bytes set to values parsers care about
                for (int i = 1 + rng.Next(3); i > 0; i--) b[rng.Next(b.Count)] = s_interestingBytes[rng.Next(s_interestingBytes.Length)];
                break;
            case 2: // truncation
                {
                    int at = rng.Next(b.Count);
                    b.RemoveRange(at, b.Count - at);
                    break;
                }
            case 3: // a range deleted, or random bytes inserted
                {
                    int at = rng.Next(b.Count);
                    if (rng.Next(2) == 0) b.RemoveRange(at, Math.Min(b.Count - at, 1 + rng.Next(16)));
                    else b.InsertRange(at, Enumerable.Range(0, 1 + rng.Next(16)).Select(_ => (byte)rng.Next(256)));
                    break;
                }
            case 4: // a chunk duplicated or appended
                {
                    int at = rng.Next(b.Count), len = Math.Min(b.Count - at, 1 + rng.Next(64));
                    var chunk = b.GetRange(at, len);
                    b.InsertRange(rng.Next(2) == 0 ? b.Count : rng.Next(b.Count), chunk);
                    break;
                }
            case 5: // a length field rewritten: 4 or 8 bytes, either byte order, at an aligned offset
                {
                    int width = rng.Next(2) == 0 ? 4 : 8;
                    if (b.Count < width) goto case 0;
                    int at = rng.Next(b.Count / width) * width;
                    long v = rng.Next(3) == 0 ? b.Count + rng.Next(-9, 10) : s_interestingNumbers[rng.Next(s_interestingNumbers.Length)];
                    var field = new byte[8];
                    if (rng.Next(2) == 0) BinaryPrimitives.WriteInt64LittleEndian(field, v);
                    else BinaryPrimitives.WriteInt64BigEndian(field, v);
                    var slice = width == 8 ? field : (field[0] == 0 && field[1] == 0 && field[2] == 0 && field[3] == 0 ? field[4..] : field[..4]);
                    for (int i = 0; i < width; i++) b[at + i] = slice[i];
                    break;
                }
            case 6: // a JSON number replaced by another kind of value
                ReplaceNumber(b, rng);
                break;
            case 7: // a duplicate key: the first key of an object repeated at its start
                DuplicateKey(b, rng);
                break;
            case 8: // invalid UTF-8 bytes
                b.InsertRange(rng.Next(b.Count + 1), s_badUtf8[rng.Next(s_badUtf8.Length)]);
                break;
            default: // a lone surrogate escaped inside a string
                {
                    int quote = FindFrom(b, rng.Next(b.Count), (byte)'"');
                    if (quote < 0) goto case 8;
                    bool escaped = quote > 0 && b[quote - 1] == '\\';
                    b.InsertRange(quote + 1, Encoding.ASCII.GetBytes(escaped ? "\\\\ud800" : rng.Next(2) == 0 ? "\\ud800" : "\\udfff")); // inside an escaped string the backslash is itself escaped
                    break;
                }
        }
    }

    private static void ReplaceNumber(List<byte> b, Random rng)
    {
        int at = FindFrom(b, rng.Next(b.Count), c => c is >= (byte)'0' and <= (byte)'9');
        if (at < 0) { Apply(b, rng, 0); return; }
        int start = at, end = at;
        while (start > 0 && IsNumberByte(b[start - 1])) start--;
        while (end < b.Count && IsNumberByte(b[end])) end++;
        bool escaped = start > 1 && b[start - 1] == '"' && b[start - 2] == '\\';
        string value = s_jsonValues[rng.Next(s_jsonValues.Length)];
        if (escaped || InsideEscapedJson(b, start)) value = value.Replace("\\", "\\\\").Replace("\"", "\\\"");
        b.RemoveRange(start, end - start);
        b.InsertRange(start, Encoding.ASCII.GetBytes(value));
    }

    private static void DuplicateKey(List<byte> b, Random rng)
    {
        int open = FindFrom(b, rng.Next(b.Count), (byte)'{');
        if (open < 0 || open + 2 >= b.Count) { Apply(b, rng, 8); return; }
        // The object's first key: "name" or, inside a JSON string, \"name\".
        int keyStart = open + 1;
        bool escaped = b[keyStart] == '\\';
        int nameStart = keyStart + (escaped ? 2 : 1);
        if (nameStart > b.Count || b[keyStart + (escaped ? 1 : 0)] != '"') { Apply(b, rng, 8); return; }
        int nameEnd = FindFrom(b, nameStart, (byte)'"');
        if (nameEnd < 0) return;
        if (escaped) nameEnd--;
        string name = Encoding.UTF8.GetString(b.GetRange(nameStart, Math.Max(0, nameEnd - nameStart)).ToArray());
        string q = escaped ? "\\\"" : "\"";
        b.InsertRange(open + 1, Encoding.UTF8.GetBytes($"{q}{name}{q}:{(rng.Next(2) == 0 ? "0" : $"{q}x{q}")},"));
    }

    // A JSON document stored as a string value (a checkpoint's metadata) escapes its quotes.
    private static bool InsideEscapedJson(List<byte> b, int at)
    {
        for (int i = at - 1; i > 0 && at - i < 64; i--)
            if (b[i] == '"') return b[i - 1] == '\\';
        return false;
    }

    private static bool IsNumberByte(byte c) => c is (>= (byte)'0' and <= (byte)'9') or (byte)'-' or (byte)'+' or (byte)'.' or (byte)'e' or (byte)'E';

    private static int FindFrom(List<byte> b, int start, byte value) => FindFrom(b, start, c => c == value);

    private static int FindFrom(List<byte> b, int start, Func<byte, bool> match)
    {
        for (int i = start; i < b.Count; i++) if (match(b[i])) return i;
        for (int i = 0; i < start && i < b.Count; i++) if (match(b[i])) return i;
        return -1;
    }
}
