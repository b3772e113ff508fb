using System.Text.Json;

namespace GradFlow.Tests.Fixtures;

/// <summary>One case of a PyTorch fixture file (see tools/fixtures/common.py for the format).</summary>
public sealed class FixtureCase
{
    public required string Name { get; init; }
    public required JsonElement Params { get; init; }
    public required Dictionary<string, Tensor> Tensors { get; init; }

    public Tensor this[string key] => Tensors.TryGetValue(key, out var t)
        ? t : throw new KeyNotFoundException($"Fixture case '{Name}' has no tensor '{key}' (has: {string.Join(", ", Tensors.Keys)}).");

    public double Param(string key) => Params.GetProperty(key).GetDouble();
    public int IntParam(string key) => Params.GetProperty(key).GetInt32();
    public bool Has(string key) => Tensors.ContainsKey(key);

    public override string ToString() => Name;
}

/// <summary>Loads the committed fixture files written by the PyTorch scripts in tools/fixtures.</summary>
public static class Fixture
{
    private static readonly Dictionary<string, IReadOnlyList<FixtureCase>> s_cache = [];

    public static IReadOnlyList<FixtureCase> Load(string fileName)
    {
        lock (s_cache)
        {
            if (s_cache.TryGetValue(fileName, out var cached)) return cached;
            string path = Path.Combine(AppContext.BaseDirectory, "Fixtures", fileName);
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var cases = new List<FixtureCase>();
            foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
            {
                var tensors = new Dictionary<string, Tensor>();
                foreach (var t in c.GetProperty("tensors").EnumerateObject()) tensors[t.Name] = ReadTensor(t.Value);
                cases.Add(new FixtureCase { Name = c.GetProperty("name").GetString()!, Params = c.GetProperty("params").Clone(), Tensors = tensors });
            }
            return s_cache[fileName] = cases;
        }
    }

    /// <summary>The case names of a file, for [MemberData] theories.</summary>
    public static IEnumerable<object[]> Names(string fileName) => Load(fileName).Select(c => new object[] { c.Name });

    public static FixtureCase Get(string fileName, string caseName) =>
        Load(fileName).FirstOrDefault(c => c.Name == caseName) ?? throw new KeyNotFoundException($"{fileName} has no case '{caseName}'.");

    private static Tensor ReadTensor(JsonElement e)
    {
        var shape = e.GetProperty("shape").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        var data = e.GetProperty("data");
        var t = e.GetProperty("dtype").GetString() switch
        {
            "float32" => Tensor.FromArray(data.EnumerateArray().Select(ReadSingle).ToArray(), shape),
            "float64" => Tensor.FromArray(data.EnumerateArray().Select(ReadDouble).ToArray(), shape),
            "int64" => Tensor.FromArray(data.EnumerateArray().Select(x => x.GetInt64()).ToArray(), shape),
            "bool" => Tensor.FromArray(data.EnumerateArray().Select(x => x.GetBoolean()).ToArray(), shape),
            var d => throw new InvalidDataException($"Unknown fixture dtype {d}."),
        };
        // FromArray reads an empty shape as "1-d"; a 0-d fixture (a full reduction) is reshaped to a scalar.
        return shape.Length == 0 ? t.Reshape() : t;
    }

    // JSON has no NaN/Infinity: Python's json writes them as bare NaN/Infinity tokens, which System.Text.Json rejects,
    // so scripts avoid non-finite values in fixtures.
    private static float ReadSingle(JsonElement x) => (float)x.GetDouble();
    private static double ReadDouble(JsonElement x) => x.GetDouble();

    /// <summary>Asserts two tensors agree within rtol/atol, naming the fixture case and the first bad element.</summary>
    public static void AssertClose(Tensor expected, Tensor actual, string what, double rtol = 1e-5, double atol = 1e-6)
    {
        Assert.True(expected.Shape.SequenceEqual(actual.Shape),
            $"{what}: shape {Guard.Shape(actual)} differs from PyTorch's {Guard.Shape(expected)}.");
        var e = expected.ToDoubleArray();
        var a = actual.ToDoubleArray();
        for (int i = 0; i < e.Length; i++)
        {
            double tol = atol + rtol * Math.Abs(e[i]);
            Assert.True(Math.Abs(e[i] - a[i]) <= tol,
                $"{what}: element {i} is {a[i]:R}, PyTorch gives {e[i]:R} (|diff| {Math.Abs(e[i] - a[i]):G3} > {tol:G3}).");
        }
    }
}
