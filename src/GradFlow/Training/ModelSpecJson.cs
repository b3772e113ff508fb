using System.Text.Json;
using System.Text.Json.Nodes;

namespace GradFlow.Training;

public sealed partial record ModelSpec
{
    private static readonly string[] s_modelKeys = ["input", "layers", "activation", "init", "norm", "residual", "dropout"];
    private static readonly string[] s_layerKeys = ["linear", "conv", "pool", "kernel", "activation", "norm", "residual", "dropout"];

    /// <summary>Reads a model from a JSON file (fields in docs/TRAIN.md); a malformed file throws InvalidDataException naming it.</summary>
    public static ModelSpec Load(string path)
    {
        Guard.NotEmpty(path, "ModelSpec.Load", nameof(path));
        string text = File.ReadAllText(path);
        try
        {
            return FromJson(text, $"file '{path}'");
        }
        catch (FormatException e)
        {
            throw new InvalidDataException(e.Message, e);
        }
    }

    /// <summary>
    /// Reads the JSON form: <c>{"input": [1, 28, 28], "layers": [{"conv": 16}, {"pool": 2}, {"linear": 128, "dropout": 0.2},
    /// {"linear": 10}], "activation": "relu", "init": "he", "norm": "batch", "residual": false, "dropout": 0}</c>. A layer
    /// may set its own activation, norm, residual and dropout; a conv layer its kernel. Unknown fields are refused
    /// (FormatException naming the field and <paramref name="source"/>), so a typo never passes silently.
    /// </summary>
    public static ModelSpec FromJson(string json, string source = "JSON")
    {
        Guard.NotNull(json, "ModelSpec.FromJson", nameof(json));
        JsonObject root;
        try
        {
            root = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { MaxDepth = 16, AllowDuplicateProperties = false, CommentHandling = JsonCommentHandling.Skip })
                as JsonObject ?? throw Bad(source, "the JSON must be an object with \"input\" and \"layers\".");
        }
        catch (JsonException e)
        {
            throw Bad(source, $"not valid JSON ({e.Message}).");
        }
        CheckKeys(source, "the model", root, s_modelKeys);
        var input = root["input"] switch
        {
            JsonArray a => a.Select(n => Int(source, "input", n)).ToArray(),
            JsonValue v => [Int(source, "input", v)],
            _ => throw Bad(source, "\"input\" is missing; give [features] or [channels, height, width]."),
        };
        var layers = root["layers"] as JsonArray ?? throw Bad(source, "\"layers\" must be an array, e.g. [{\"linear\": 128}, {\"linear\": 10}].");
        var spec = new ModelSpec
        {
            InputShape = input,
            Layers = layers.Select((n, i) => ParseLayer(source, i, n)).ToList(),
            Activation = Str(source, "activation", root["activation"]) ?? "relu",
            Init = Str(source, "init", root["init"]) ?? "default",
            Norm = NormName(Str(source, "norm", root["norm"])) ?? "none",
            Residual = Bool(source, "residual", root["residual"]) ?? false,
            Dropout = Num(source, "dropout", root["dropout"]) ?? 0,
        };
        spec.Validate(source);
        return spec;
    }

    /// <summary>The JSON form, which <see cref="FromJson"/> reads back to an equal spec.</summary>
    public string ToJson()
    {
        var layers = new JsonArray();
        foreach (var l in Layers)
        {
            var o = new JsonObject { [l.Kind.ToString().ToLowerInvariant()] = l.Size };
            if (l.Kind == LayerKind.Conv) o["kernel"] = l.Kernel;
            if (l.Activation is not null) o["activation"] = l.Activation;
            if (l.Norm is not null) o["norm"] = l.Norm;
            if (l.Residual is not null) o["residual"] = l.Residual;
            if (l.Dropout is not null) o["dropout"] = l.Dropout;
            layers.Add(o);
        }
        return new JsonObject
        {
            ["input"] = new JsonArray(InputShape.Select(d => (JsonNode?)d).ToArray()),
            ["layers"] = layers,
            ["activation"] = Activation,
            ["init"] = Init,
            ["norm"] = Norm,
            ["residual"] = Residual,
            ["dropout"] = Dropout,
        }.ToJsonString();
    }

    private static LayerSpec ParseLayer(string source, int index, JsonNode? node)
    {
        string where = $"layer {index + 1}";
        var o = node as JsonObject ?? throw Bad(source, $"{where} must be an object such as {{\"linear\": 128}}.");
        CheckKeys(source, where, o, s_layerKeys);
        var kinds = new[] { "linear", "conv", "pool" }.Where(o.ContainsKey).ToArray();
        if (kinds.Length != 1) throw Bad(source, $"{where} must have exactly one of \"linear\", \"conv\" or \"pool\" (its size).");
        var kind = Enum.Parse<LayerKind>(kinds[0], ignoreCase: true);
        if (o.ContainsKey("kernel") && kind != LayerKind.Conv) throw Bad(source, $"{where}: only a conv layer has a \"kernel\".");
        return new LayerSpec(kind, Int(source, $"{where} {kinds[0]}", o[kinds[0]]), o.ContainsKey("kernel") ? Int(source, $"{where} kernel", o["kernel"]) : 3)
        {
            Activation = Str(source, $"{where} activation", o["activation"]),
            Norm = NormName(Str(source, $"{where} norm", o["norm"])),
            Residual = Bool(source, $"{where} residual", o["residual"]),
            Dropout = Num(source, $"{where} dropout", o["dropout"]),
        };
    }

    private static string? NormName(string? norm) => norm switch
    {
        "bn" or "batchnorm" => "batch",
        "ln" or "layernorm" => "layer",
        _ => norm,
    };

    private static void CheckKeys(string source, string where, JsonObject o, string[] allowed)
    {
        foreach (var (key, _) in o)
            if (!allowed.Contains(key)) throw Bad(source, $"{where} has an unknown field \"{key}\"; the fields are {string.Join(", ", allowed.Select(k => $"\"{k}\""))}.");
    }

    private static int Int(string source, string what, JsonNode? n) =>
        n is JsonValue v && v.TryGetValue(out double d) && d == Math.Floor(d) && d is >= int.MinValue and <= int.MaxValue
            ? (int)d : throw Bad(source, $"{what} must be an integer, got {n?.ToJsonString() ?? "nothing"}.");

    private static double? Num(string source, string what, JsonNode? n) =>
        n is null ? null : n is JsonValue v && v.TryGetValue(out double d) ? d : throw Bad(source, $"{what} must be a number, got {n.ToJsonString()}.");

    private static bool? Bool(string source, string what, JsonNode? n) =>
        n is null ? null : n is JsonValue v && v.TryGetValue(out bool b) ? b : throw Bad(source, $"{what} must be true or false, got {n.ToJsonString()}.");

    private static string? Str(string source, string what, JsonNode? n) =>
        n is null ? null : n is JsonValue v && v.TryGetValue(out string? s) ? s.ToLowerInvariant() : throw Bad(source, $"{what} must be a string, got {n.ToJsonString()}.");
}
