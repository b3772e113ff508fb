namespace GradFlow.Tests.Architecture;

/// <summary>
/// The layers of src/GradFlow, by top folder, lowest first. A layer may name any layer of lower rank;
/// layers of the same rank are siblings and may not name each other unless <see cref="SiblingsMayMeet"/> says so.
/// </summary>
internal static class LayerMap
{
    public static readonly IReadOnlyDictionary<string, int> Rank = new Dictionary<string, int>
    {
        ["Kernels"] = 0,
        ["Tensors"] = 1,
        ["Formats"] = 2,
        ["Autograd"] = 3,
        ["Ops"] = 3,
        ["NN"] = 4,
        ["Onnx"] = 5,
        ["Optim"] = 5,
        ["Data"] = 5,
        ["Training"] = 6,
        ["Diagnostics"] = 7,
        ["Reporting"] = 8,
    };

    /// <summary>
    /// Autograd and Ops are one layer in two folders: ops record themselves into the graph, and the engine's
    /// backward formulas are written with ops (that is what makes gradients of gradients free).
    /// </summary>
    public static bool SiblingsMayMeet(string a, string b) =>
        (a, b) is ("Autograd", "Ops") or ("Ops", "Autograd");

    /// <summary>Whether code in folder <paramref name="from"/> may name code in folder <paramref name="to"/>.</summary>
    public static bool Allowed(string from, string to)
    {
        if (from == to) return true;
        int rf = Rank[from], rt = Rank[to];
        return rt < rf || (rt == rf && SiblingsMayMeet(from, to));
    }

    /// <summary>The top folder under src/GradFlow of a source path, or null for a file outside it (generated code).</summary>
    public static string? FolderOf(string path)
    {
        string p = path.Replace('\\', '/');
        const string root = "src/GradFlow/";
        int at = p.LastIndexOf(root, StringComparison.Ordinal);
        if (at < 0) return null;
        string rest = p[(at + root.Length)..];
        int slash = rest.IndexOf('/');
        return slash < 0 ? null : rest[..slash];
    }
}
