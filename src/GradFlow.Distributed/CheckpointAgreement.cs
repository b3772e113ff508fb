using System.Globalization;
using System.Text;
using GradFlow.Formats;
using GradFlow.Training;

namespace GradFlow.Distributed;

/// <summary>
/// Writes a checkpoint from rank 0 and confirms, collectively, that it holds every rank's state. Every rank captures
/// its own state and reduces it to a digest: a CRC-32C per entry (each model and optimiser tensor with its name, dtype
/// and shape; the optimiser's and scheduler's settings, the generators, the step and the metadata). Rank 0 writes the
/// file, reads it back and digests what it read. One allgather then gives every rank every rank's digest (rank 0's
/// being the file's) and any error, so all reach the same verdict from the same bytes: all return, or all throw the
/// same <see cref="MpiException"/> (<see cref="MpiException.AllRanks"/>) naming the ranks and the first entry that
/// differs. A failure on one rank (a write, a capture) is caught and sent instead of thrown, so no rank is left
/// waiting in the allgather: a failed write or ranks whose weights parted are an error, never a hang.
/// </summary>
internal static class CheckpointAgreement
{
    private const string Op = "DistributedDataParallel.SaveCheckpoint";

    /// <param name="comm">The ranks.</param>
    /// <param name="path">Where rank 0 writes.</param>
    /// <param name="capture">Each rank's state.</param>
    /// <param name="ownEntries">Entries each rank keeps its own on purpose (buffers under BufferSync.None): written from
    /// rank 0, not compared across ranks.</param>
    public static void Save(Communicator comm, string path, Func<Checkpoint> capture, IReadOnlySet<string> ownEntries)
    {
        string error = "";
        List<(string Name, uint Crc)> digest = [];
        try
        {
            var mine = capture();
            digest = Digest(mine);
            if (comm.IsRoot)
            {
                mine.Save(path);
                // Load verifies every CRC the file carries, so this is what rank 0 wrote, byte for byte.
                var written = Digest(Checkpoint.Load(path));
                if (FirstDifference(digest, written) is { } entry)
                    error = $"the file read back differs from rank 0's state at {entry}";
                digest = written;
            }
            digest.RemoveAll(e => ownEntries.Contains(e.Name));
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Any failure must travel with the allgather below: thrown here, it would leave the other ranks waiting.
            error = $"{e.GetType().Name}: {e.Message}";
            digest = [];
        }

        var all = comm.AllGatherBytes(Encoding.UTF8.GetBytes(Serialize(error, path, digest)));
        var ranks = all.Select(b => Deserialize(Encoding.UTF8.GetString(b))).ToArray();
        path = ranks[0].Path; // the file is rank 0's: every rank names it alike
        var failures = ranks.Select((r, i) => (r.Error, Rank: i)).Where(r => r.Error.Length > 0)
            .Select(r => r.Rank == 0 && comm.Size > 1 ? $"rank 0 could not write it ({r.Error})" : $"rank {r.Rank}: {r.Error}").ToList();
        if (failures.Count > 0)
            throw new MpiException($"{Op}: checkpoint '{path}' is not confirmed: {string.Join("; ", failures)}.", allRanks: true);
        var parted = new List<string>();
        for (int r = 1; r < ranks.Length; r++)
            if (FirstDifference(ranks[0].Digest, ranks[r].Digest) is { } entry) parted.Add($"rank {r}'s at {entry}");
        if (parted.Count > 0)
            throw new MpiException($"{Op}: checkpoint '{path}' holds rank 0's state, which differs from {string.Join(", ", parted)}: "
                + "the ranks no longer train the same model.", allRanks: true);
    }

    /// <summary>One CRC-32C per part of the checkpoint, in a fixed order, so that two digests compare entry by entry.</summary>
    internal static List<(string Name, uint Crc)> Digest(Checkpoint c)
    {
        var d = new List<(string, uint)>();
        foreach (var (name, t) in c.Model.OrderBy(kv => kv.Key, StringComparer.Ordinal)) d.Add(("model." + name, TensorCrc(name, t)));
        if (c.Optimizer is { } o)
        {
            foreach (var (name, t) in o.ToTensors("optimizer.").OrderBy(kv => kv.Key, StringComparer.Ordinal)) d.Add((name, TensorCrc(name, t)));
            d.Add(("optimizer settings", TextCrc(o.ToJson().ToJsonString())));
        }
        if (c.Scheduler is { } s) d.Add(("scheduler", TextCrc(s.ToJsonString())));
        foreach (var (name, words) in c.Generators.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            d.Add(($"generator '{name}'", Crc32C.AppendLittleEndian<ulong>(0, words)));
        d.Add(("step", TextCrc(c.Step.ToString(CultureInfo.InvariantCulture))));
        d.Add(("metadata", TextCrc(string.Concat(c.Metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}\0{kv.Value}\0")))));
        return d;
    }

    private static uint TextCrc(string text) => Crc32C.Compute(Encoding.UTF8.GetBytes(text));

    private static uint TensorCrc(string name, Tensor t)
    {
        uint crc = TextCrc($"{name}\0{t.DType.Name()}\0{t.Shape}\0");
        var c = t.Contiguous();
        return t.DType switch
        {
            DType.Float32 => Crc32C.AppendLittleEndian<float>(crc, c.Span<float>()),
            DType.Float64 => Crc32C.AppendLittleEndian<double>(crc, c.Span<double>()),
            _ => Crc32C.AppendLittleEndian<long>(crc, c.Span<long>()),
        };
    }

    // "'model.0.weight' (CRC-32C 1a2b3c4d, not 5e6f7a8b)": the first entry where the two differ, or null.
    private static string? FirstDifference(List<(string Name, uint Crc)> root, List<(string Name, uint Crc)> other)
    {
        int common = Math.Min(root.Count, other.Count);
        for (int i = 0; i < common; i++)
            if (root[i].Name != other[i].Name) return $"'{root[i].Name}' (where the other has '{other[i].Name}')";
            else if (root[i].Crc != other[i].Crc) return $"'{root[i].Name}' (CRC-32C {root[i].Crc:x8} against {other[i].Crc:x8})";
        if (root.Count != other.Count) return $"'{(root.Count > other.Count ? root : other)[common].Name}' (present on one side only)";
        return null;
    }

    // The error on the first line, the path on the second, then "name\tcrc" per entry.
    private static string Serialize(string error, string path, List<(string Name, uint Crc)> digest) =>
        error.ReplaceLineEndings(" ") + "\n" + path.ReplaceLineEndings(" ") + "\n" + string.Join("\n", digest.Select(e => $"{e.Name}\t{e.Crc:x8}"));

    private static (string Error, string Path, List<(string Name, uint Crc)> Digest) Deserialize(string text)
    {
        var lines = text.Split('\n');
        var digest = lines.Skip(2).Where(l => l.Length > 0).Select(l =>
        {
            int tab = l.LastIndexOf('\t');
            return (l[..tab], uint.Parse(l[(tab + 1)..], NumberStyles.HexNumber, CultureInfo.InvariantCulture));
        }).ToList();
        return (lines[0], lines[1], digest);
    }
}
