namespace GradFlow.Diagnostics;

/// <summary>
/// Sigmoid/tanh units stuck where they pass no gradient: more than half the outputs within the monitor's epsilon
/// (0.01) of a bound. For a sigmoid that is |pre-activation| above 4.6, next to DeepDiagnosis' (ICSE'22) "more than
/// 50% of pre-activations with |x| &gt;= 5". Also the opposite failure: a layer whose outputs barely vary around the
/// centre (sigmoid at 0.5, tanh at 0; output std below 0.02) passes the same value for every input. Gated on a symptom.
/// </summary>
internal sealed class SaturatedActivations(double persistence) : Detector
{
    internal const double SaturatedThreshold = 0.5;
    internal const double StuckStd = 0.02;
    private readonly List<(string Layer, Streak Streak)> _layers = [];

    public override FindingKind Kind => FindingKind.SaturatedActivations;

    private int _lastLayerDepth = int.MaxValue;
    private IReadOnlySet<string> _outputs = new HashSet<string>();
    private bool _holding;

    private bool Judge(IReadOnlyList<ActivationStats> activations, int samples)
    {
        int k = 0;
        bool any = false;
        for (int at = 0; at < activations.Count; at++)
        {
            var a = activations[at];
            if (!Saturating(a)) continue;
            if (k == _layers.Count || _layers[k].Layer != a.Layer)
            {
                if (k < _layers.Count) _layers.RemoveRange(k, _layers.Count - k);
                _layers.Add((a.Layer, new Streak(samples)));
            }
            else if (_layers[k].Streak.Length != samples) _layers[k] = (a.Layer, _layers[k].Streak.Resized(samples));
            bool hit = Saturated(a) || Stuck(a);
            _layers[k].Streak.Push(hit);
            any |= hit && _layers[k].Streak.Share >= persistence;
            k++;
        }
        return any;
    }

    // A sigmoid after the last layer with parameters is the model's output (probabilities): confident predictions saturate it
    // by design. By depth, and by the recorded graph (RunHistory.OutputActivationScopes) for one taken outside the model, in
    // the loss, whose scope may have been seen first (the training loop's own ops run in the root scope before the model's).
    private bool Saturating(ActivationStats a) => a.Op is "Sigmoid" or "Tanh" && a.Depth < _lastLayerDepth && !_outputs.Contains(a.Layer);

    private static bool Saturated(ActivationStats a) => (a.SaturatedFraction ?? 0) > SaturatedThreshold;

    private static bool Stuck(ActivationStats a) => a.Std < StuckStd && Math.Abs(a.Mean - (a.Op == "Sigmoid" ? 0.5 : 0)) < 0.05;

    public override Finding? Check(RunHistory run, StepRecord step)
    {
        _outputs = run.OutputActivationScopes;
        _lastLayerDepth = int.MinValue;
        for (int at = 0; at < step.Layers.Count; at++) { var l = step.Layers[at]; if (l.Gradient.Count > 0) _lastLayerDepth = Math.Max(_lastLayerDepth, l.Depth); }
        // Activations come on the records with details only (MonitorOptions.DetailEvery): the streaks count those, over a
        // window as long in records as the other rules' (RunHistory.SampledWindow), and the verdict holds in between.
        if (step.Activations.Count > 0) _holding = Judge(step.Activations, run.SampledWindow);
        if (!_holding || !Unwell(run) || run.Detail is not { } detail) return null;
        var bad = detail.Activations.Where(a => Saturating(a) && (Saturated(a) || Stuck(a))).ToList();
        if (bad.Count == 0) return null;
        var saturated = bad.Where(Saturated).ToList();
        var stuck = bad.Where(a => !Saturated(a)).ToList();
        var evidence = new List<Evidence>();
        foreach (var a in saturated.Take(3))
            evidence.Add(new Evidence($"{a.Op} outputs of {Label(a.Layer)} within 0.01 of a bound", a.SaturatedFraction ?? 0, SaturatedThreshold, "DeepDiagnosis ICSE'22 (50% beyond |x| = 5)"));
        foreach (var a in stuck.Take(3))
            evidence.Add(new Evidence($"{a.Op} output std of {Label(a.Layer)} (mean {a.Mean:0.000})", a.Std, StuckStd, "derivation: a unit that never moves carries no signal (DOCTOR.md)"));
        evidence.Add(run.SymptomEvidence());
        var layers = bad.Select(a => a.Layer).ToList();
        return new Finding
        {
            Kind = Kind, Severity = Severity.Warning,
            Title = saturated.Count > 0 ? $"saturated {saturated[0].Op}: {saturated[0].SaturatedFraction:P0} of {Label(saturated[0].Layer)}'s outputs at a bound"
                : $"{stuck[0].Op} in {Label(stuck[0].Layer)} is stuck at {stuck[0].Mean:0.00} for every input",
            Layers = layers, FirstStep = step.Step, LastStep = step.Step, Confidence = Confidence(_layers.Max(l => l.Streak.Share), true),
            Evidence = evidence,
            Explanation = saturated.Count > 0
                ? "A sigmoid or tanh whose input is large sits on its flat tail, where its slope is nearly zero: almost no gradient passes " +
                  "through it, so the layers below stop learning. The inputs to the activation are too large (initialisation, unnormalised inputs or a high learning rate)."
                : "Every output of this activation is nearly the same value (a sigmoid at 0.5, a tanh at 0): its inputs are all near zero, " +
                  "so the layer passes the same thing for every example and the layers after it learn nothing from the input.",
            Fixes = Fixes(
                ("initialise with Xavier (Glorot) init for tanh/sigmoid, or switch to ReLU with Kaiming init", "it sets each layer's weights so pre-activations have unit scale"),
                ($"add BatchNorm/LayerNorm before the activation in {Names(layers)}", "it rescales the pre-activations to unit scale whatever the weights do"),
                ("normalise the inputs to zero mean and unit variance", "large inputs make large pre-activations in the first layer")),
        };
    }
}
