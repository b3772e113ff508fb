namespace GradFlow.Diagnostics;

/// <summary>
/// Judged on the first step of training, before training has changed anything: the activations' scale across depth
/// (the output std of the deepest activation against the first; a good initialisation keeps it within a factor of
/// 100, Glorot and Bengio 2010, He et al. 2015), sigmoid/tanh layers already more than half saturated, or the backward
/// flow already shrinking or growing 1e4 times across depth. Raised when a loss symptom later shows it mattered.
/// Only when the records start there (<see cref="RunHistory.StartsAtInitialisation"/>): a resumed run's first record
/// shows trained weights, whose scale may rightly leave the initialisers' band, and its divergence is the rate's or the
/// gradient's, judged by their rules.
/// </summary>
internal sealed class PoorInitialisation : Detector
{
    internal const double ScaleRatio = 100;
    internal const double FlowRatio = 1e4;
    internal const double LossOverChance = 3;
    // Weight RMS x sqrt(fan-in) of the standard initialisers spans 1/sqrt(3) (PyTorch's default uniform) to 5/3 (Xavier
    // with tanh's gain; Kaiming for ReLU is sqrt(2)); a factor 3 beyond that band on either side is a poor start.
    internal const double GainLow = 0.577 / 3, GainHigh = 5.0 / 3 * 3;
    private List<Evidence>? _evidence;
    private List<string> _layers = [];
    private string _summary = "";

    public override FindingKind Kind => FindingKind.PoorInitialisation;

    // The latest step on which it held, and its symptoms: Build writes the finding from them.
    private long _at;
    private SymptomState _symptoms;

    public override Finding? Check(RunHistory run, StepRecord step) => Hold(run, step) is null ? null : Build();

    public override Severity? Hold(RunHistory run, StepRecord step)
    {
        if (ReferenceEquals(step, run.First) && run.StartsAtInitialisation) Inspect(step, run.ChanceLoss);
        // What the first step shows was there before any update; a divergence shows at once that it mattered (as for the other
        // acute findings, no window to wait for: a run that blows up may end before one).
        if (_evidence is null || !(Unwell(run) || (run.Symptoms & Symptoms.Diverging) != 0)) return null;
        (_at, _symptoms) = (step.Step, run.SymptomNow);
        return Severity.Warning;
    }

    public override Finding Build()
    {
        var evidence = new List<Evidence>(_evidence!) { _symptoms.ToEvidence() };
        return new Finding
        {
            Kind = Kind, Severity = Severity.Warning, Title = $"poor initialisation: {_summary} at the first step",
            Layers = _layers, FirstStep = _at, LastStep = _at, Confidence = Confidence(1, true),
            Evidence = evidence,
            Explanation = "At the very first step, before any learning, the signal already dies out (or blows up) on its way through the " +
                          "layers. Each layer's weights scale its input; if that scale is not matched to the layer's fan-in and activation, " +
                          "the product over many layers drives the activations and gradients to zero or to huge values.",
            Fixes = Fixes(
                ("initialise ReLU layers with Kaiming (He) normal init (std sqrt(2/fan_in)) and tanh/sigmoid layers with Xavier (std sqrt(2/(fan_in+fan_out)))",
                    "it keeps each layer's output variance equal to its input's"),
                ("add BatchNorm or LayerNorm between layers", "it resets the scale at every layer whatever the initialisation"),
                ("set biases to zero", "a large bias shifts every unit into a flat region at once")),
        };
    }

    private void Inspect(StepRecord step, double chance)
    {
        var evidence = new List<Evidence>();
        var layers = new List<string>();
        // A classifier's first loss should be about ln(classes): its outputs start near uniform (Karpathy 2019).
        if (step.Loss is { } first && double.IsFinite(chance) && first > LossOverChance * chance && first <= MeanLossBound(step, chance))
        {
            evidence.Add(new Evidence("loss at the first step / chance level ln(classes)", first / chance, LossOverChance, "Karpathy, A Recipe for Training Neural Networks (2019)"));
            _summary = $"the first loss is {first / chance:G2}x the chance level";
        }
        if (step.Setup is { } setup) WeightScale(step, setup, evidence, layers);
        var acts = step.Activations.Where(a => double.IsFinite(a.Std)).ToList();
        if (acts.Count >= 3 && acts[0].Std > 0)
        {
            double ratio = acts[^1].Std / acts[0].Std;
            if (ratio < 1 / ScaleRatio || ratio > ScaleRatio)
            {
                evidence.Add(new Evidence($"activation std of {Label(acts[^1].Layer)} / {Label(acts[0].Layer)} at the first step", ratio, ratio < 1 ? 1 / ScaleRatio : ScaleRatio,
                    "Glorot & Bengio 2010, He et al. 2015: variance kept across depth"));
                layers.Add(acts[^1].Layer);
                _summary = ratio < 1 ? $"activations shrink {1 / ratio:G2}x across depth" : $"activations grow {ratio:G2}x across depth";
            }
        }
        foreach (var a in step.Activations.Where(a => (a.SaturatedFraction ?? 0) > SaturatedActivations.SaturatedThreshold))
        {
            evidence.Add(new Evidence($"{a.Op} outputs of {Label(a.Layer)} at a bound at the first step", a.SaturatedFraction!.Value, SaturatedActivations.SaturatedThreshold, "DeepDiagnosis ICSE'22"));
            layers.Add(a.Layer);
            if (_summary.Length == 0) _summary = $"{a.Op} in {Label(a.Layer)} saturated";
        }
        var flow = step.Flow.Where(f => f.InputGradNorm > 0 && double.IsFinite(f.InputGradNorm)).ToList();
        if (flow.Count >= 3)
        {
            double ratio = flow[0].InputGradNorm / flow[^1].InputGradNorm;
            if (ratio < 1 / FlowRatio || ratio > FlowRatio)
            {
                evidence.Add(new Evidence($"gradient reaching {Label(flow[0].Layer)} / reaching {Label(flow[^1].Layer)} at the first step", ratio, ratio < 1 ? 1 / FlowRatio : FlowRatio,
                    "derivation: a factor 10 per layer over four layers (DOCTOR.md)"));
                layers.Add(flow[0].Layer);
                if (_summary.Length == 0) _summary = ratio < 1 ? $"the gradient shrinks {1 / ratio:G2}x across depth" : $"the gradient grows {ratio:G2}x across depth";
            }
        }
        // Through time (a recurrent layer unrolled): a gradient that already grows back through time at the first step, before
        // any update, grows by the recurrent Jacobian the initialisation set (Pascanu et al. 2013: above 1 it explodes).
        if (TimeProfile.Extreme(step, smallest: false) is { Ratio: > ExplodingThroughTime.RatioThreshold } time)
        {
            evidence.Add(new Evidence($"||dL/dh|| at {time.Range(true)} / at {time.Range(false)} in {time.Name} at the first step", time.Ratio, ExplodingThroughTime.RatioThreshold,
                "Pascanu et al. ICML'13; AUTOTRAINER's 70 on the network unrolled through time (DOCTOR.md)"));
            layers.Add(time.Layer.Layer);
            if (_summary.Length == 0) _summary = $"the gradient grows {time.Ratio:G2}x back through time in {time.Name} ({time.PerStep:G3} per step)";
        }
        if (evidence.Count == 0) return;
        _evidence = evidence;
        _layers = layers.Distinct().ToList();
    }

    // The most a cross entropy averaged over the batch can start at, given the last activations measured: logits z = W h of
    // std s <= gain x RMS(h), and by Jensen E[logsumexp z] <= ln(classes) + s^2 / 2 (E[z_y] = 0 at the start), with the gain
    // at the band's top (a larger one is the weight check's finding). A first loss above it is not a mean of these outputs:
    // the loss is summed over the batch or scaled, and its level says nothing of the initialisation. Infinite without activations.
    private static double MeanLossBound(StepRecord step, double chance)
    {
        for (int at = step.Activations.Count - 1; at >= 0; at--)
        {
            var a = step.Activations[at];
            if (double.IsFinite(a.Mean) && double.IsFinite(a.Std)) return chance + 0.5 * GainHigh * GainHigh * (a.Mean * a.Mean + a.Std * a.Std);
        }
        return double.PositiveInfinity;
    }

    // Each weight's scale against its fan-in (recurrent layers: against the hidden size, as PyTorch initialises them);
    // embeddings are lookups, not fan-in sums, and are left out.
    private void WeightScale(StepRecord step, RunSetup setup, List<Evidence> evidence, List<string> layers)
    {
        // A stacked or bidirectional module has several weight_hh, all of its one hidden size.
        var hidden = setup.Parameters.Where(p => p.Name.Contains("weight_hh", StringComparison.Ordinal) && p.Shape.Count == 2)
            .GroupBy(p => GradientMonitor.LayerOf(p.Name)).ToDictionary(g => g.Key, g => g.First().Shape[1]);
        (string Name, double Gain)? worst = null;
        var bad = new List<string>();
        foreach (var p in setup.Parameters)
        {
            if (p.FanIn == 0 || p.LayerType is { } t && t.Contains("Embedding", StringComparison.Ordinal)) continue;
            var stats = step.Parameters.FirstOrDefault(s => s.Name == p.Name);
            // The norm is taken after the first update: by the triangle inequality it is within 10% of the initial one only
            // when that update was at most a tenth of the weight; a larger first step (a huge rate) leaves the start unknown.
            if (stats is null || !(stats.ParamNorm > 0) || !(stats.UpdateToWeight is null or <= 0.1)) continue;
            int fan = hidden.TryGetValue(GradientMonitor.LayerOf(p.Name), out int h) ? h : p.FanIn;
            double gain = stats.ParamNorm / Math.Sqrt(p.Count) * Math.Sqrt(fan);
            if (gain is >= GainLow and <= GainHigh) continue;
            bad.Add(GradientMonitor.LayerOf(p.Name));
            if (worst is null || Math.Abs(Math.Log(gain)) > Math.Abs(Math.Log(worst.Value.Gain))) worst = (p.Name, gain);
        }
        if (worst is not { } w) return;
        evidence.Add(new Evidence($"weight RMS x sqrt(fan-in) of {w.Name} at the first step ({bad.Count} weight{(bad.Count == 1 ? "" : "s")} outside [{GainLow:0.##}, {GainHigh:0.#}])",
            w.Gain, w.Gain < 1 ? GainLow : GainHigh, "a factor 3 beyond the standard initialisers' 1/sqrt(3) (PyTorch default) to 5/3 (Xavier, tanh gain)"));
        layers.AddRange(bad.Distinct());
        if (_summary.Length == 0) _summary = $"{w.Name} starts {(w.Gain < 1 ? "too small" : "too large")} for its fan-in (gain {w.Gain:G2})";
    }
}
