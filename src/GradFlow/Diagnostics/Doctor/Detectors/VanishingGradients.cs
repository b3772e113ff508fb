namespace GradFlow.Diagnostics;

/// <summary>
/// The gradient shrinks across depth: the RMS gradient of the first layer's parameters against the last's. AUTOTRAINER
/// (ICSE'21) calls it vanishing below a first/last norm ratio of 1e-3; per element (RMS) rather than per layer, so a
/// wide layer and a narrow one compare. DeepDiagnosis' (ICSE'22) absolute mean |g| &lt; 1e-7 catches a first layer
/// that gets nothing at all while the last layer's is above it (tiny in every layer is the loss's scale, not depth).
/// Gated on a loss symptom and held over the window. Vanishing is a property of the
/// architecture and its initialisation (Glorot &amp; Bengio 2010): a network that passed the gradient at its first recorded step
/// and lost it only after updates above 1e-2 of the weights on most steps up to then (the too-high rate's bound) was
/// brought there by its steps, and the rate (or the units it killed) is the finding (<see cref="StepCaused"/>).
/// </summary>
internal sealed class VanishingGradients(int window, double persistence) : Detector
{
    internal const double RatioThreshold = 1e-3;
    internal const double FlatRatioThreshold = 1e-2; // when the loss has not moved at all
    internal const double AbsoluteThreshold = 1e-7;
    private readonly Streak _streak = new(window);
    private readonly StepCaused _steps = new();

    public override FindingKind Kind => FindingKind.VanishingGradients;

    // The figures of the latest step on which the condition held: Build writes the finding from them.
    private StepRecord? _at, _detail;
    private double _ratio, _threshold, _share;
    private bool _flat;
    private SymptomState _symptoms;

    public override Finding? Check(RunHistory run, StepRecord step) => Hold(run, step) is null ? null : Build();

    public override Severity? Hold(RunHistory run, StepRecord step)
    {
        var (first, last, n) = Ends(step);
        double ratio = n >= 3 && first!.Gradient.Rms is var f && last!.Gradient.Rms is var l && l > 0 ? f / l : double.NaN;
        // A hundredfold attenuation is already the prime suspect when nothing at all is learned (stalled and flat).
        bool flat = (run.Symptoms & Symptoms.Stalled) != 0 && (run.Symptoms & Symptoms.Slow) != 0;
        double threshold = flat ? FlatRatioThreshold : RatioThreshold;
        // The absolute floor names a first layer that gets nothing while the last still gets something: a gradient tiny in
        // every layer alike (a loss scaled down, a clip far too tight) has not vanished across depth, it was small from the loss.
        bool hit = n >= 3 && (ratio < threshold || first!.Gradient.MeanAbs < AbsoluteThreshold && !(last!.Gradient.MeanAbs < AbsoluteThreshold));
        if (n >= 3) _steps.Start(!hit && ratio >= FlatRatioThreshold);
        _streak.Push(hit);
        _steps.Track(hit, _streak.Share, run);
        if (!hit || _streak.Share < persistence || !Unwell(run) || _steps.ByTheSteps) return null;
        (_at, _detail, _ratio, _threshold, _share, _flat, _symptoms) = (step, run.Detail, ratio, threshold, _streak.Share, flat, run.SymptomNow);
        return Severity.Warning;
    }

    public override Finding Build()
    {
        var step = _at!;
        var (first, last, _) = Ends(step);
        double ratio = _ratio, threshold = _threshold;
        bool flat = _flat;
        var layers = new List<string>();
        foreach (var layer in step.Layers)
            if (Dense(layer) && layer.Gradient.Rms < last!.Gradient.Rms * 1e-2) layers.Add(layer.Layer);
        var activations = _detail?.Activations ?? []; // the latest measured (MonitorOptions.DetailEvery)
        var saturating = activations.Where(a => a.Op is "Sigmoid" or "Tanh").Select(a => a.Layer).Distinct().ToList();
        var fixes = new List<(string, string)>();
        if (saturating.Count > 0)
            fixes.Add(($"replace {string.Join("/", activations.Where(a => a.Op is "Sigmoid" or "Tanh").Select(a => a.Op).Distinct())} in {Names(saturating)} by ReLU with Kaiming (He) init",
                "ReLU's derivative is 1 where it is active, where a sigmoid's is at most 0.25, so the gradient no longer shrinks at every layer"));
        fixes.Add(("add BatchNorm (or LayerNorm) after each hidden Linear/Conv layer", "it keeps each layer's pre-activations at unit scale, out of the flat regions"));
        fixes.Add(("add residual (skip) connections around blocks of layers", "the identity path carries the gradient back unchanged"));
        fixes.Add(("train with Adam, lr 1e-3", "it scales each parameter's step by its own gradient size, so a small gradient still moves the first layers"));
        return new Finding
        {
            Kind = Kind, Severity = Severity.Warning, Title = $"vanishing gradients: {Names(layers)} get{(layers.Count == 1 ? "s" : "")} {ratio:G2} of the last layer's gradient",
            Layers = layers, FirstStep = step.Step, LastStep = step.Step, Confidence = Confidence(_share, true),
            Evidence =
            [
                new Evidence($"gradient RMS of {Label(first!.Layer)} / {Label(last!.Layer)}", ratio, threshold,
                    flat ? "AUTOTRAINER ICSE'21 ratio 1e-3, relaxed to 1e-2 while the loss is flat (DOCTOR.md)" : "AUTOTRAINER ICSE'21 first/last gradient ratio"),
                new Evidence($"mean |g| of {Label(first.Layer)}", first.Gradient.MeanAbs, AbsoluteThreshold, "DeepDiagnosis ICSE'22"),
                new Evidence("share of the window the ratio held", _share, persistence, "persistence (DOCTOR.md)"),
                _symptoms.ToEvidence(),
            ],
            Explanation = $"Backpropagation multiplies the gradient by each layer's weights and activation derivative on the way back. Here it " +
                          $"shrinks so much that the first layers receive about {ratio:G2} of what the last layer gets, so they barely change " +
                          "and the network learns only with its last layers.",
            Fixes = Fixes([.. fixes]),
        };
    }
}
