using System.Text.Json.Nodes;

namespace GradFlow.Optim;

/// <summary>The hyper-parameters of one group and the indices of its parameters, as in PyTorch's state_dict["param_groups"].</summary>
public sealed record ParamGroupState(IReadOnlyDictionary<string, double> Options, IReadOnlyList<int> Params);

/// <summary>
/// An optimiser's state (PyTorch's <c>optimizer.state_dict()</c>): groups with their hyper-parameters and
/// parameter indices, and per-parameter state keyed by index across all groups. It owns copies of the
/// buffers, so it stays valid while training continues. For files it splits into named tensors
/// (<see cref="ToTensors"/>) and JSON (<see cref="ToJson"/>), and joins back with <see cref="FromParts"/>.
/// </summary>
public sealed class OptimizerStateDict
{
    /// <summary>One entry per parameter group.</summary>
    public required IReadOnlyList<ParamGroupState> ParamGroups { get; init; }

    /// <summary>Per-parameter state by parameter index (parameters never updated have none).</summary>
    public required IReadOnlyDictionary<int, ParamState> State { get; init; }

    /// <summary>The buffers as "state.{index}.{name}" -> tensor (with an optional prefix such as "optimizer.").</summary>
    public Dictionary<string, Tensor> ToTensors(string prefix = "")
    {
        var d = new Dictionary<string, Tensor>();
        foreach (var (i, s) in State.OrderBy(kv => kv.Key))
            foreach (var (name, t) in s.Buffers) d[$"{prefix}state.{i}.{name}"] = t;
        return d;
    }

    /// <summary>Everything but the buffers' data: groups, steps, scalars and buffer names.</summary>
    public JsonObject ToJson()
    {
        var groups = new JsonArray();
        foreach (var g in ParamGroups)
        {
            var o = new JsonObject();
            foreach (var (k, v) in g.Options) o[k] = StateJson.Number(v);
            o["params"] = new JsonArray(g.Params.Select(i => (JsonNode?)JsonValue.Create(i)).ToArray());
            groups.Add(o);
        }
        var state = new JsonObject();
        foreach (var (i, s) in State.OrderBy(kv => kv.Key))
        {
            var scalars = new JsonObject();
            foreach (var (k, v) in s.Scalars) scalars[k] = StateJson.Number(v);
            state[i.ToString(System.Globalization.CultureInfo.InvariantCulture)] = new JsonObject
            {
                ["step"] = s.Step,
                ["buffers"] = new JsonArray(s.Buffers.Keys.Select(k => (JsonNode?)JsonValue.Create(k)).ToArray()),
                ["scalars"] = scalars,
            };
        }
        return new JsonObject { ["param_groups"] = groups, ["state"] = state };
    }

    /// <summary>Rebuilds a state dict from <see cref="ToJson"/> and <see cref="ToTensors"/> output; malformed input gives InvalidDataException.</summary>
    public static OptimizerStateDict FromParts(JsonObject json, IReadOnlyDictionary<string, Tensor> tensors, string prefix = "")
    {
        Guard.NotNull(json, "OptimizerStateDict.FromParts", nameof(json));
        Guard.NotNull(tensors, "OptimizerStateDict.FromParts", nameof(tensors));
        var groups = new List<ParamGroupState>();
        foreach (var g in StateJson.Array(json, "param_groups"))
        {
            var o = StateJson.Object(g, "param_groups[]");
            var options = new Dictionary<string, double>();
            int[] ps = [];
            foreach (var (k, v) in o)
            {
                if (k == "params") ps = StateJson.Array(o, "params").Select(x => StateJson.Int(x, "params[]")).ToArray();
                else options[k] = StateJson.Double(v, k);
            }
            groups.Add(new ParamGroupState(options, ps));
        }
        var state = new Dictionary<int, ParamState>();
        foreach (var (key, node) in StateJson.Object(json["state"], "state"))
        {
            if (!int.TryParse(key, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int i))
                throw new InvalidDataException($"Optimizer state: key '{key}' is not a parameter index.");
            var o = StateJson.Object(node, $"state.{key}");
            var s = new ParamState { Step = StateJson.Long(o["step"], $"state.{key}.step") };
            foreach (var b in StateJson.Array(o, "buffers"))
            {
                string name = StateJson.String(b, $"state.{key}.buffers[]");
                s.Buffers[name] = tensors.TryGetValue($"{prefix}state.{i}.{name}", out var t) ? t
                    : throw new InvalidDataException($"Optimizer state: tensor '{prefix}state.{i}.{name}' is missing.");
            }
            foreach (var (k, v) in StateJson.Object(o["scalars"], $"state.{key}.scalars")) s.Scalars[k] = StateJson.Double(v, k);
            state[i] = s;
        }
        return new OptimizerStateDict { ParamGroups = groups, State = state };
    }
}
