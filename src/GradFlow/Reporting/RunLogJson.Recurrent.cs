using System.Text.Json;
using GradFlow.Diagnostics;

namespace GradFlow.Reporting;

// The "recurrentSteps" array of a step (docs/RUNLOG.md): ||dL/dh_t|| per time step in each recurrent layer direction.
// Written only when the model has recurrent layers; a log without it reads as none.
internal static partial class RunLogJson
{
    private static void RecurrentSteps(Utf8JsonWriter w, IReadOnlyList<RecurrentStepStats> steps)
    {
        if (steps.Count == 0) return;
        WriteArray(w, "recurrentSteps", steps, (w, r) =>
        {
            w.WriteString("layer", r.Layer);
            w.WriteNumber("depth", r.Depth);
            w.WriteNumber("recurrentLayer", r.RecurrentLayer);
            w.WriteBoolean("reverse", r.Reverse);
            Numbers(w, "gradNorms", r.GradNorms);
        });
    }

    private static IReadOnlyList<RecurrentStepStats> ReadRecurrentSteps(JsonElement root) =>
        Optional(root, "recurrentSteps") is null ? [] : Array(root, "recurrentSteps", r =>
        {
            var reverse = Required(r, "reverse");
            if (reverse.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) throw Expected("reverse", "true or false", reverse);
            return new RecurrentStepStats(String(r, "layer"), Int(r, "depth"), Int(r, "recurrentLayer"), reverse.GetBoolean(), Values(r, "gradNorms", ToDouble));
        });
}
