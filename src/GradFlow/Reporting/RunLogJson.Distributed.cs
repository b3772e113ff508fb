using System.Text.Json;
using GradFlow.Diagnostics;

namespace GradFlow.Reporting;

// The "distributed" object of a step (docs/RUNLOG.md): each rank's gradients before the allreduce, in data-parallel runs.
internal static partial class RunLogJson
{
    private static void Distributed(Utf8JsonWriter w, DistributedGradientStats d)
    {
        w.WriteStartObject("distributed");
        w.WriteNumber("worldSize", d.WorldSize);
        Number(w, "globalGradNorm", d.GlobalGradNorm);
        w.WriteStartArray("parameters");
        foreach (var name in d.Parameters) w.WriteStringValue(name);
        w.WriteEndArray();
        WriteArray(w, "ranks", d.Ranks, Rank);
        w.WriteStartArray("divergentRanks");
        foreach (int r in d.DivergentRanks) w.WriteNumberValue(r);
        w.WriteEndArray();
        Number(w, "divergenceFactor", d.DivergenceFactor);
        if (d.FirstNonFinite is { } f)
        {
            w.WriteStartObject("firstNonFinite");
            w.WriteNumber("step", f.Step);
            w.WriteNumber("rank", f.Rank);
            w.WriteString("parameter", f.Parameter);
            w.WriteStartArray("ranks");
            foreach (int r in f.Ranks) w.WriteNumberValue(r);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    private static void Rank(Utf8JsonWriter w, RankGradientStats r)
    {
        w.WriteNumber("rank", r.Rank);
        Number(w, "gradNorm", r.GradNorm);
        w.WriteNumber("nonFinite", r.NonFinite);
        Numbers(w, "parameterNorms", r.ParameterNorms);
        w.WriteStartArray("parameterNonFinite");
        foreach (long v in r.ParameterNonFinite) w.WriteNumberValue(v);
        w.WriteEndArray();
    }

    private static DistributedGradientStats ReadDistributed(JsonElement d)
    {
        if (d.ValueKind != JsonValueKind.Object) throw Expected("distributed", "an object", d);
        var names = Values(d, "parameters", (v, n) => v.ValueKind == JsonValueKind.String ? v.GetString()! : throw Expected(n, "a string", v));
        var ranks = Array(d, "ranks", r =>
        {
            var norms = Values(r, "parameterNorms", ToDouble);
            var nonFinite = Values(r, "parameterNonFinite", LongValue);
            if (norms.Count != names.Count || nonFinite.Count != names.Count)
                throw new InvalidDataException($"field 'ranks': a rank has {norms.Count} parameter norms and {nonFinite.Count} non-finite counts for {names.Count} parameters.");
            return new RankGradientStats(Int(r, "rank"), Double(r, "gradNorm"), Long(r, "nonFinite"), norms, nonFinite);
        });
        NonFiniteOrigin? first = null;
        if (Optional(d, "firstNonFinite") is { } f)
        {
            if (f.ValueKind != JsonValueKind.Object) throw Expected("firstNonFinite", "an object", f);
            first = new NonFiniteOrigin(Long(f, "step"), Int(f, "rank"), String(f, "parameter"), Values(f, "ranks", IntValue));
        }
        return new DistributedGradientStats(Int(d, "worldSize"), Double(d, "globalGradNorm"), names, ranks,
            Values(d, "divergentRanks", IntValue), Double(d, "divergenceFactor"), first);
    }

    private static IReadOnlyList<T> Values<T>(JsonElement obj, string name, Func<JsonElement, string, T> read)
    {
        var array = Required(obj, name);
        if (array.ValueKind != JsonValueKind.Array) throw Expected(name, "an array", array);
        var items = new T[array.GetArrayLength()];
        int i = 0;
        foreach (var item in array.EnumerateArray()) items[i++] = read(item, name);
        return items;
    }
}
