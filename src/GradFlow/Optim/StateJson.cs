using System.Globalization;
using System.Text.Json.Nodes;

namespace GradFlow.Optim;

/// <summary>
/// Reads and writes the JSON form of optimiser and scheduler state. JSON has no infinity or NaN
/// (ReduceLROnPlateau starts from an infinite "best"), so non-finite numbers travel as strings.
/// Reading checks every node's kind and throws InvalidDataException naming the key.
/// </summary>
internal static class StateJson
{
    public static JsonNode Number(double v) =>
        double.IsFinite(v) ? JsonValue.Create(v) : JsonValue.Create(v.ToString(CultureInfo.InvariantCulture))!;

    public static double Double(JsonNode? node, string key)
    {
        if (node is JsonValue v)
        {
            if (v.TryGetValue(out double d)) return d;
            if (v.TryGetValue(out string? s) && double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out d)) return d;
        }
        throw new InvalidDataException($"State JSON: '{key}' should be a number, got {Describe(node)}.");
    }

    public static long Long(JsonNode? node, string key) =>
        node is JsonValue v && v.TryGetValue(out long l) ? l
            : throw new InvalidDataException($"State JSON: '{key}' should be an integer, got {Describe(node)}.");

    public static int Int(JsonNode? node, string key) =>
        node is JsonValue v && v.TryGetValue(out int i) ? i
            : throw new InvalidDataException($"State JSON: '{key}' should be an integer, got {Describe(node)}.");

    public static string String(JsonNode? node, string key) =>
        node is JsonValue v && v.TryGetValue(out string? s) ? s
            : throw new InvalidDataException($"State JSON: '{key}' should be a string, got {Describe(node)}.");

    public static JsonObject Object(JsonNode? node, string key) =>
        node as JsonObject ?? throw new InvalidDataException($"State JSON: '{key}' should be an object, got {Describe(node)}.");

    public static JsonArray Array(JsonObject parent, string key) =>
        parent[key] as JsonArray ?? throw new InvalidDataException($"State JSON: '{key}' should be an array, got {Describe(parent[key])}.");

    public static JsonArray DoubleArray(IEnumerable<double> values) => new(values.Select(v => (JsonNode?)Number(v)).ToArray());

    public static double[] Doubles(JsonObject parent, string key) => Array(parent, key).Select(n => Double(n, key)).ToArray();

    private static string Describe(JsonNode? node) => node is null ? "nothing" : node.GetValueKind().ToString();
}
