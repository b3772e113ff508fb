using System.Globalization;
using System.Text;

namespace GradFlow.Diagnostics;

// How a step reads to a person: one line for ToString, a table per layer, and a summary over many steps.
public sealed partial record StepRecord
{
    private static readonly CultureInfo s_inv = CultureInfo.InvariantCulture;

    /// <summary>One line: the step, loss, learning rate, gradient norm and how many parameters and layers were measured.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder().Append(s_inv, $"StepRecord(step {Step}");
        if (Loss is { } loss) sb.Append(s_inv, $", loss {loss:G5}");
        if (LearningRate is { } lr) sb.Append(s_inv, $", lr {lr:G4}");
        sb.Append(s_inv, $", grad norm {GlobalGradNorm:G5}");
        if (ClippedGradNorm is { } clipped) sb.Append(s_inv, $" (clipped to {clipped:G5})");
        return sb.Append(s_inv, $", {Parameters.Count} parameters in {Layers.Count} layers)").ToString();
    }

    /// <summary>
    /// A table with one row per layer, in depth order: gradient L2 norm and max |g|, update/weight ratio, the
    /// gradient that flowed to the layer's input, and the health of an activation in the layer (dead units for
    /// the ReLU family, saturated outputs for sigmoid and tanh).
    /// </summary>
    public string ToTable()
    {
        var rows = new List<string[]> { new[] { "layer", "grad L2", "max |g|", "update/weight", "input grad", "activation" } };
        var flow = Flow.ToDictionary(f => f.Layer, f => f);
        var activations = Activations.GroupBy(a => a.Layer).ToDictionary(g => g.Key, g => g.First());
        foreach (var l in Layers)
        {
            rows.Add([
                l.Layer.Length == 0 ? "(root)" : l.Layer,
                l.Gradient.L2Norm.ToString("0.000e0", s_inv),
                l.Gradient.MaxAbs.ToString("0.000e0", s_inv),
                l.UpdateToWeight is { } r ? r.ToString("0.0e0", s_inv) : "-",
                flow.TryGetValue(l.Layer, out var f) ? f.InputGradNorm.ToString("0.000e0", s_inv) : "-",
                activations.TryGetValue(l.Layer, out var a) ? Health(a) : "-",
            ]);
        }
        foreach (var a in Activations.Where(a => !Layers.Any(l => l.Layer == a.Layer)))
            rows.Add([a.Layer, "-", "-", "-", flow.TryGetValue(a.Layer, out var f) ? f.InputGradNorm.ToString("0.000e0", s_inv) : "-", Health(a)]);
        return ToString() + Environment.NewLine + Align(rows);
    }

    /// <summary>
    /// One line per layer averaged over <paramref name="records"/> (an epoch, say): gradient L2 norm, update/weight
    /// ratio, and the fraction of dead ReLU units right after the layer. The layers are those of the last record.
    /// </summary>
    public static string Summary(IReadOnlyList<StepRecord> records)
    {
        ArgumentNullException.ThrowIfNull(records);
        if (records.Count == 0) throw new ArgumentException("StepRecord.Summary: no records to summarise.", nameof(records));
        var parts = new List<string>();
        var last = records[^1];
        foreach (var layer in last.Layers)
        {
            var per = records.Select(r => r.Layers.FirstOrDefault(l => l.Layer == layer.Layer)).OfType<LayerGradientStats>().ToArray();
            string deadAfter = last.Activations.FirstOrDefault(a => a.Depth == layer.Depth + 1) is { DeadFraction: not null } act
                ? string.Format(s_inv, " dead {0:0}%", 100 * records.Average(r => r.Activations.FirstOrDefault(a => a.Layer == act.Layer)?.DeadFraction ?? 0))
                : "";
            parts.Add(string.Format(s_inv, "[{0}] {1:0.000} {2:0.0e0}{3}", layer.Layer, per.Average(l => l.Gradient.L2Norm), per.Average(l => l.UpdateToWeight ?? 0), deadAfter));
        }
        return string.Join("  ", parts);
    }

    private static string Health(ActivationStats a) =>
        a.DeadFraction is { } dead ? string.Format(s_inv, "{0} dead {1:0}%", a.Op, dead * 100)
        : a.SaturatedFraction is { } sat ? string.Format(s_inv, "{0} saturated {1:0}%", a.Op, sat * 100)
        : a.Op;

    private static string Align(List<string[]> rows)
    {
        var widths = new int[rows[0].Length];
        foreach (var r in rows)
            for (int i = 0; i < r.Length; i++) widths[i] = Math.Max(widths[i], r[i].Length);
        var sb = new StringBuilder();
        foreach (var r in rows)
        {
            for (int i = 0; i < r.Length; i++)
                sb.Append(i == 0 ? r[i].PadRight(widths[i]) : "  " + r[i].PadLeft(widths[i]));
            sb.AppendLine();
        }
        return sb.ToString();
    }
}
