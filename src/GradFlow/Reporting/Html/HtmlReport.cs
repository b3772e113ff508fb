using System.Globalization;
using System.Text;
using GradFlow.Diagnostics;
using GradFlow.Formats;
using static GradFlow.Reporting.Html.Charts;

namespace GradFlow.Reporting.Html;

/// <summary>Options for <see cref="HtmlReport"/>.</summary>
public sealed record HtmlReportOptions
{
    /// <summary>The page's title.</summary>
    public string Title { get; init; } = "GradFlow report";

    /// <summary>At most this many points per line and columns per heatmap: longer runs are bucketed (mean, with the min-max band).</summary>
    public int MaxPoints { get; init; } = 400;

    /// <summary>Per-layer gradient histograms over time are drawn for at most this many layers per run (the first ones in depth order).</summary>
    public int MaxHistogramLayers { get; init; } = 24;

    internal void Validate()
    {
        if (MaxPoints < 2) throw new ArgumentOutOfRangeException(nameof(MaxPoints), $"HtmlReport: MaxPoints must be at least 2, got {MaxPoints}.");
        if (MaxHistogramLayers < 0) throw new ArgumentOutOfRangeException(nameof(MaxHistogramLayers), $"HtmlReport: MaxHistogramLayers must be >= 0, got {MaxHistogramLayers}.");
    }
}

/// <summary>
/// A self-contained HTML report of one or more training runs: no network, no external script, style or font.
/// Per run: loss and learning rate, the gradient flow per layer (mean and max |g| on a log scale), a layer-by-step
/// heatmap of gradient norms and of the gradient reaching each layer in backward, update/weight ratios, dead and
/// saturated units, and gradient histograms over time. Several runs are compared side by side first. Long runs are
/// bucketed to <see cref="HtmlReportOptions.MaxPoints"/> columns, so the page stays small for any length.
/// </summary>
public static class HtmlReport
{
    /// <summary>Writes the report atomically to <paramref name="path"/>.</summary>
    public static void Write(string path, IReadOnlyList<ReportRun> runs, HtmlReportOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string html = Render(runs, options);
        AtomicFile.Write(path, s =>
        {
            using var w = new StreamWriter(s, new UTF8Encoding(false), leaveOpen: true);
            w.Write(html);
        });
    }

    /// <summary>The report as an HTML string.</summary>
    public static string Render(IReadOnlyList<ReportRun> runs, HtmlReportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(runs);
        options ??= new HtmlReportOptions();
        options.Validate();
        if (runs.Count == 0) throw new ArgumentException("HtmlReport: no runs to report.", nameof(runs));
        for (int i = 0; i < runs.Count; i++)
        {
            if (runs[i] is null) throw new ArgumentException($"HtmlReport: runs[{i}] is null.", nameof(runs));
            if (runs[i].Steps.Count == 0) throw new ArgumentException($"HtmlReport: run '{runs[i].Name}' has no recorded steps.", nameof(runs));
        }

        var views = runs.Select((r, i) => new RunView(r, i, options.MaxPoints)).ToArray();
        var sb = new StringBuilder(1 << 16);
        sb.Append("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
        sb.Append("<title>").Append(Esc(options.Title)).Append("</title><style>").Append(ReportAssets.Css).Append("</style></head><body>");
        sb.Append("<header><h1>").Append(Esc(options.Title)).Append("</h1><p>")
          .Append(CultureInfo.InvariantCulture, $"{runs.Count} run{(runs.Count == 1 ? "" : "s")}, {runs.Sum(r => r.Steps.Count):N0} recorded steps; GradFlow {Esc(RunLog.GradFlowVersion)}")
          .Append("</p></header><nav>");
        if (views.Length > 1) sb.Append("<a href=\"#compare\">Compare</a>");
        foreach (var v in views) sb.Append(CultureInfo.InvariantCulture, $"<a href=\"#{v.Id}\">{Esc(v.Run.Name)}</a>");
        sb.Append("</nav><main>");
        if (views.Length > 1) Compare(sb, views);
        foreach (var v in views) RunSection(sb, v, options);
        sb.Append("<pre id=\"gf-selfcheck\" hidden></pre><script>").Append(ReportAssets.Script).Append("</script></body></html>");
        return sb.ToString();
    }

    private static void Compare(StringBuilder sb, RunView[] views)
    {
        sb.Append("<section id=\"compare\"><h2>Runs side by side</h2><div class=\"grid\">");
        sb.Append(Line("compare-loss", "Loss", "step", "loss", views.Select(v => new Series(v.Run.Name, v.X, v.Loss.Mean)).ToArray(), logY: views.All(v => v.LossPositive)));
        sb.Append(Line("compare-gradnorm", "Global gradient norm (before clipping)", "step", "‖g‖", views.Select(v => new Series(v.Run.Name, v.X, v.GradNorm.Mean)).ToArray(), logY: true));
        var layers = views.SelectMany(v => v.Layers).Distinct().ToArray();
        var groups = views.Select(v => (v.Run.Name, layers.Select(l => v.FlowBars(l).Mean).ToArray())).ToArray();
        sb.Append(Bars("compare-flow", "Gradient flow per layer: mean |g| over the last tenth of each run", "mean |g|", layers, groups));
        sb.Append("</div></section>");
    }

    private static void RunSection(StringBuilder sb, RunView v, HtmlReportOptions options)
    {
        var run = v.Run;
        sb.Append(CultureInfo.InvariantCulture, $"<section id=\"{v.Id}\"><h2>{Esc(run.Name)}</h2>");
        Summary(sb, v);
        Findings(sb, v);
        sb.Append("<div class=\"grid\">");
        sb.Append(Line($"{v.Id}-loss", "Loss", "step", "loss", [new Series("loss", v.X, v.Loss.Mean, v.Loss.Min, v.Loss.Max)], logY: v.LossPositive));
        var gradSeries = new List<Series> { new("before clipping", v.X, v.GradNorm.Mean, v.GradNorm.Min, v.GradNorm.Max) };
        if (v.Clipped is { } clipped) gradSeries.Add(new Series("after clipping", v.X, clipped, Dashed: true));
        sb.Append(Line($"{v.Id}-gradnorm", "Global gradient norm", "step", "‖g‖", gradSeries, logY: true));
        if (v.Lr is { } lr) sb.Append(Line($"{v.Id}-lr", "Learning rate", "step", "lr", [new Series("learning rate", v.X, lr)], logY: false));

        var mean = v.Layers.Select(l => v.FlowBars(l).Mean).ToArray();
        var max = v.Layers.Select(l => v.FlowBars(l).Max).ToArray();
        var first = v.Layers.Select(v.FirstMeanAbs).ToArray();
        sb.Append(Bars($"{v.Id}-flow", "Gradient flow per layer (mean and max |g|, last tenth of the run; mean at the first step)", "|g|", v.Layers,
            [("mean |g|", mean), ("max |g|", max), ("mean |g| at step 1", first)]));
        sb.Append(Heatmap($"{v.Id}-heat", "Gradient L2 norm per layer and step", "step", v.Layers, v.X, v.LayerMatrix(l => l.Gradient.L2Norm), log: true));
        if (v.FlowLayers.Length > 0)
            sb.Append(Heatmap($"{v.Id}-backward", "Gradient reaching each layer's input in backward (L2 norm)", "step", v.FlowLayers, v.X, v.FlowMatrix(), log: true));
        var ratios = v.Layers.Select(l => new Series(l, v.X, v.LayerSeries(l, s => s.UpdateToWeight ?? double.NaN))).Where(s => s.Y.Any(double.IsFinite)).ToArray();
        if (ratios.Length > 0)
            sb.Append(Line($"{v.Id}-ratio", "Update / weight ratio per layer", "step", "‖Δw‖ / ‖w‖", ratios, logY: true, [new ReferenceLine("1e-3 (rule of thumb)", 1e-3)]));
        var acts = v.ActivationSeries();
        if (acts.Count > 0) sb.Append(Line($"{v.Id}-activations", "Dead (ReLU) and saturated (sigmoid/tanh) units", "step", "fraction", acts, logY: false));
        Curvature(sb, v);
        sb.Append("</div>");
        Histograms(sb, v, options.MaxHistogramLayers);
        sb.Append("</section>");
    }

    // Curvature where it was measured: sharpness against the stability threshold over steps, the spectral density, slices.
    private static void Curvature(StringBuilder sb, RunView v)
    {
        var sharpness = v.CurvatureSeries();
        if (sharpness.Count > 0)
            sb.Append(Line($"{v.Id}-sharpness", "Sharpness against the stability threshold (above it, the step is unstable along the top eigenvector)", "step", "eigenvalue",
                sharpness, logY: sharpness.SelectMany(s => s.Y).Where(double.IsFinite).All(y => y > 0)));
        if (v.DensitySeries() is { } density)
            sb.Append(Line($"{v.Id}-density", "Hessian eigenvalue density (stochastic Lanczos quadrature)", "eigenvalue", "density", [density], logY: true));
        if (v.Run.Landscape is { Count: > 0 } slices)
            sb.Append(Line($"{v.Id}-landscape", "Loss landscape: slices through the weights (filter-normalised directions)", "distance along the direction", "loss",
                slices.Select(kv => new Series(kv.Key, kv.Value.Alphas, kv.Value.Losses)).ToArray(), logY: false));
    }

    private static void Summary(StringBuilder sb, RunView v)
    {
        var steps = v.Run.Steps;
        var losses = steps.Select(s => s.Loss).OfType<double>().Where(double.IsFinite).ToArray();
        sb.Append("<table class=\"summary\"><tr><th>steps recorded</th><td>").Append(CultureInfo.InvariantCulture, $"{steps.Count:N0} (step {steps[0].Step} to {steps[^1].Step})")
          .Append("</td></tr><tr><th>layers with parameters</th><td>").Append(v.Layers.Length)
          .Append("</td></tr><tr><th>loss</th><td>").Append(losses.Length == 0 ? "not recorded" : $"first {Num(losses[0])}, last {Num(losses[^1])}, lowest {Num(losses.Min())}")
          .Append("</td></tr><tr><th>non-finite gradients</th><td>").Append(steps.Count(s => !double.IsFinite(s.GlobalGradNorm)).ToString(CultureInfo.InvariantCulture)).Append(" steps</td></tr>");
        foreach (var (k, val) in v.Run.Metadata ?? new Dictionary<string, string>())
            sb.Append("<tr><th>").Append(Esc(k)).Append("</th><td>").Append(Esc(val)).Append("</td></tr>");
        sb.Append("</table>");
    }

    private static void Findings(StringBuilder sb, RunView v)
    {
        if (v.Run.Findings is not { } findings) return;
        sb.Append("<h3>The doctor's findings</h3>");
        // A resumed run's records start after step 1: their first shows trained weights, not the initialisation.
        if (!RunHistory.IsStartOfTraining(v.Run.Steps[0].Step))
            sb.Append(CultureInfo.InvariantCulture, $"<p class=\"none\">The records start at step {v.Run.Steps[0].Step}, after training began (a resumed run): the initialisation was not judged.</p>");
        if (findings.Count == 0)
        {
            sb.Append("<p class=\"none\">No finding: nothing in this run's gradients, activations or loss crossed a threshold.</p>");
            return;
        }
        foreach (var f in findings)
        {
            string severity = f.Severity.ToString().ToLowerInvariant();
            sb.Append(CultureInfo.InvariantCulture, $"<div class=\"finding {severity}\"><h4><span class=\"sev\">{severity}</span>{Esc(f.Title)}</h4>");
            sb.Append(CultureInfo.InvariantCulture, $"<div>{Esc(f.Kind.ToString())}, steps {f.FirstStep} to {f.LastStep}{(f.Layers.Count > 0 ? ", layers " + Esc(string.Join(", ", f.Layers)) : "")}, confidence {f.Confidence:0.00}</div>");
            sb.Append("<p>").Append(Esc(f.Explanation)).Append("</p><ul>");
            foreach (var e in f.Evidence) sb.Append("<li>evidence: ").Append(Esc(e.ToString())).Append("</li>");
            foreach (var fix in f.Fixes) sb.Append("<li>fix ").Append(Esc(fix.ToString())).Append("</li>");
            sb.Append("</ul><div class=\"charts\">see: ");
            foreach (var (chart, label) in ChartsFor(f.Kind, v))
                sb.Append(CultureInfo.InvariantCulture, $"<a href=\"#{chart}\" data-chart=\"{chart}\">{label}</a>");
            sb.Append("</div></div>");
        }
    }

    // The charts that show a finding's evidence; only charts the run has (an MLP without activations has no activation chart).
    private static IEnumerable<(string Id, string Label)> ChartsFor(FindingKind kind, RunView v)
    {
        var wanted = kind switch
        {
            FindingKind.VanishingGradients or FindingKind.PoorInitialisation => new[] { ("flow", "gradient flow"), ("heat", "norms by layer"), ("backward", "backward flow") },
            FindingKind.ExplodingGradients or FindingKind.GradientAccumulation or FindingKind.AutoFixApplied => [("gradnorm", "gradient norm"), ("heat", "norms by layer")],
            FindingKind.NonFiniteValues => [("heat", "norms by layer"), ("loss", "loss")],
            FindingKind.DeadRelu or FindingKind.SaturatedActivations => [("activations", "activations"), ("flow", "gradient flow")],
            FindingKind.LearningRateTooHigh => [("loss", "loss"), ("ratio", "update/weight"), ("lr", "learning rate"), ("sharpness", "sharpness vs 2/lr")],
            FindingKind.LearningRateTooLow or FindingKind.RegularisationDominates => [("ratio", "update/weight"), ("loss", "loss")],
            _ => [("loss", "loss"), ("gradnorm", "gradient norm")],
        };
        foreach (var (suffix, label) in wanted)
            if (v.Has(suffix)) yield return ($"{v.Id}-{suffix}", label);
    }

    private static void Histograms(StringBuilder sb, RunView v, int maxLayers)
    {
        var layers = v.Layers.Where(v.HasHistograms).Take(maxLayers).ToArray();
        if (layers.Length == 0) return;
        sb.Append("<details><summary>Gradient histograms over time (share of values per power of two of |g|)</summary><div class=\"grid\">");
        for (int i = 0; i < layers.Length; i++)
        {
            var (rows, matrix) = v.HistogramMatrix(layers[i]);
            sb.Append(Heatmap($"{v.Id}-hist-{i}", $"|g| histogram: {(layers[i].Length == 0 ? "(root)" : layers[i])}", "step", rows, v.X, matrix, log: true));
        }
        sb.Append("</div></details>");
    }
}
