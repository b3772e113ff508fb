using GradFlow.Diagnostics;

namespace GradFlow.Reporting;

/// <summary>Sends a <see cref="GradientMonitor"/>'s steps to TensorBoard.</summary>
public static class TensorBoard
{
    /// <summary>
    /// Writes every step the monitor records to a new event file in <paramref name="logDir"/> (see
    /// <see cref="TensorBoardWriter.AddStep"/>); dispose the result to detach and close the file.
    /// </summary>
    /// <example><code>using var tb = TensorBoard.Attach(monitor, "runs/mlp");</code></example>
    public static IDisposable Attach(GradientMonitor monitor, string logDir)
    {
        Guard.NotNull(monitor, "TensorBoard.Attach", nameof(monitor));
        var writer = new TensorBoardWriter(logDir);
        monitor.StepRecorded += writer.AddStep;
        return new MonitorAttachment(() => monitor.StepRecorded -= writer.AddStep, writer);
    }

    /// <summary>The tag of a layer's gradient histogram.</summary>
    internal static string HistogramTag(string layer) => "grad/" + LayerTag(layer);

    /// <summary>The scalars of one step, by tag; absent values (no loss given, no clipper) are left out.</summary>
    internal static IEnumerable<(string Tag, double Value)> Scalars(StepRecord record)
    {
        if (record.Loss is { } loss) yield return ("train/loss", loss);
        if (record.LearningRate is { } lr) yield return ("train/learning_rate", lr);
        yield return ("train/grad_norm", record.GlobalGradNorm);
        if (record.ClippedGradNorm is { } clipped) yield return ("train/grad_norm_clipped", clipped);
        foreach (var layer in record.Layers)
        {
            string name = LayerTag(layer.Layer);
            yield return ("grad_norm/" + name, layer.Gradient.L2Norm);
            if (layer.UpdateToWeight is { } ratio) yield return ("update_ratio/" + name, ratio);
        }
        foreach (var flow in record.Flow) yield return ("input_grad_norm/" + LayerTag(flow.Layer), flow.InputGradNorm);
        foreach (var a in record.Activations)
        {
            string name = LayerTag(a.Layer) + "/" + a.Op;
            if (a.DeadFraction is { } dead) yield return ("dead_fraction/" + name, dead);
            if (a.DeadWindowFraction is { } window) yield return ("dead_window_fraction/" + name, window);
            if (a.SaturatedFraction is { } saturated) yield return ("saturated_fraction/" + name, saturated);
        }
    }

    // Parameters without a dot belong to the root module, whose path is empty.
    private static string LayerTag(string layer) => layer.Length == 0 ? "(root)" : layer;
}
