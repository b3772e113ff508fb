namespace GradFlow.Diagnostics;

/// <summary>
/// One kind of problem. The doctor calls <see cref="Check"/> once per recorded step, in order; a detector keeps its
/// own small, fixed state (streaks over the window) and returns a finding whenever its condition holds now. The
/// doctor de-duplicates, so a detector need not remember what it has said.
/// </summary>
internal abstract class Detector
{
    public abstract FindingKind Kind { get; }

    public abstract Finding? Check(RunHistory run, StepRecord step);

    private Finding? _held;

    /// <summary>
    /// Judges the step: the severity of the finding when the condition holds now, else null. The finding itself comes
    /// from <see cref="Build"/>, which the doctor calls only when someone will see it (first raised, escalated, read):
    /// a detector whose finding holds step after step overrides both to keep the step's figures in fields and write
    /// the text later. By default the finding is built here.
    /// </summary>
    public virtual Severity? Hold(RunHistory run, StepRecord step)
    {
        if (Check(run, step) is not { } finding) return null;
        _held = finding;
        return finding.Severity;
    }

    /// <summary>The finding of the latest step on which <see cref="Hold"/> held.</summary>
    public virtual Finding Build() => _held ?? throw new InvalidOperationException($"{GetType().Name}: no finding held");

    /// <summary>A gradient rule's gate: a loss symptom (AUTOTRAINER), after the first window.</summary>
    protected static bool Unwell(RunHistory run, Symptoms which = Symptoms.Diverging | Symptoms.Stalled | Symptoms.Slow) =>
        run.WarmedUp && (run.Symptoms & which) != 0;

    /// <summary>Confidence from how much of the window the condition held, lowered when no loss symptom backs it.</summary>
    protected static double Confidence(double share, bool symptom) => Math.Round(Math.Clamp(share, 0, 1) * (symptom ? 1.0 : 0.6), 2);

    protected static IReadOnlyList<Fix> Fixes(params (string Action, string Why)[] fixes) =>
        fixes.Select((f, i) => new Fix(i + 1, f.Action, f.Why)).ToArray();

    /// <summary>"layers 1, 3 and 5" for a list of module paths.</summary>
    protected static string Names(IReadOnlyList<string> layers) => layers.Count switch
    {
        0 => "the model",
        1 => $"layer {Label(layers[0])}",
        _ => $"layers {string.Join(", ", layers.Take(layers.Count - 1).Select(Label))} and {Label(layers[^1])}",
    };

    protected static string Label(string layer) => layer.Length == 0 ? "(root)" : layer;

    /// <summary>A layer with parameters that received a dense gradient (an embedding's sparse rows are left out).</summary>
    protected static bool Dense(LayerGradientStats layer) => layer.Gradient.Count > 0 && layer.Gradient.ZeroFraction < 0.5;

    /// <summary>The first and last dense layers by depth, and how many there are.</summary>
    protected static (LayerGradientStats? First, LayerGradientStats? Last, int Count) Ends(StepRecord step)
    {
        LayerGradientStats? first = null, last = null;
        int n = 0;
        for (int at = 0; at < step.Layers.Count; at++)
        {
            var l = step.Layers[at];
            if (!Dense(l)) continue;
            first ??= l;
            last = l;
            n++;
        }
        return (first, last, n);
    }
}
