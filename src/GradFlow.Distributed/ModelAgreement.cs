using System.Text;

namespace GradFlow.Distributed;

/// <summary>
/// Checks, before any gradient collective, that every rank holds the same model (parameter and buffer names, dtypes,
/// shapes, in order) and the same options. Each rank sends its list to all (one allgather), so every rank finds the
/// same differences and throws the same error naming the parameter and the ranks: a mismatch never turns into
/// allreduces of different lengths, which MPI would hang on or mix silently.
/// </summary>
internal static class ModelAgreement
{
    public static void Check(Communicator comm, IReadOnlyList<string> entries)
    {
        var all = comm.AllGatherBytes(Encoding.UTF8.GetBytes(string.Join('\n', entries)));
        if (comm.Size == 1) return;
        var lists = all.Select(b => b.Length == 0 ? [] : Encoding.UTF8.GetString(b).Split('\n')).ToArray();
        var problems = new List<string>();
        for (int r = 1; r < lists.Length; r++)
            if (Difference(lists[0], lists[r], r) is { } d) problems.Add(d);
        if (problems.Count > 0)
            throw new MpiException("DistributedDataParallel: the ranks hold different models, so their gradients cannot be averaged: "
                + string.Join("; ", problems) + ". Build the same model (and options) on every rank.", allRanks: true);
    }

    private static string? Difference(string[] root, string[] other, int rank)
    {
        int common = Math.Min(root.Length, other.Length);
        for (int i = 0; i < common; i++)
            if (root[i] != other[i] && !root[i].Contains('\''))
                return $"the options differ ({root[i]} on rank 0, {other[i]} on rank {rank})";
            else if (root[i] != other[i])
                return $"{Name(root[i])} is {Shape(root[i])} on rank 0 but {(Name(other[i]) == Name(root[i]) ? "" : Name(other[i]) + " ")}{Shape(other[i])} on rank {rank}";
        if (root.Length > other.Length) return $"{Name(root[common])} ({Shape(root[common])}) is on rank 0 but missing on rank {rank}";
        if (other.Length > root.Length) return $"{Name(other[common])} ({Shape(other[common])}) is on rank {rank} but not on rank 0";
        return null;
    }

    // An entry is "kind 'name' dtype [shape]" (or an options line): the part up to the closing quote names it.
    private static string Name(string entry)
    {
        int q = entry.IndexOf('\'', entry.IndexOf('\'') + 1);
        return q < 0 ? entry.Split(' ')[0] : entry[..(q + 1)];
    }

    private static string Shape(string entry)
    {
        int q = entry.IndexOf('\'', entry.IndexOf('\'') + 1);
        return q < 0 ? entry : entry[(q + 2)..];
    }

    /// <summary>A parameter's or buffer's entry: "parameter 'fc1.weight' float32 [10, 64]".</summary>
    public static string Entry(string kind, string name, Tensor t) => $"{kind} '{name}' {t.DType.Name()} {t.Shape}";
}
