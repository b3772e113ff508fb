namespace GradFlow.Diagnostics;

/// <summary>
/// The gradient grows: run-relative growth (the median of the latest norms against the run's own first recorded steps),
/// spikes (a norm ten times the median of the window before it), or a gradient that grows towards the input
/// (AUTOTRAINER's first/last ratio &gt; 70). Growth needs the loss to rise or stall; spikes need two in a window.
/// </summary>
internal sealed class ExplodingGradients(int window, double persistence) : Detector
{
    internal const double GrowthThreshold = 100;   // two orders of magnitude above the run's own start
    internal const double SpikeThreshold = 10;     // a norm ten times the window's median
    internal const double DepthRatioThreshold = 70; // AUTOTRAINER ICSE'21
    private const int BaselineSteps = 5;
    private readonly Streak _growth = new(window), _spikes = new(window), _depth = new(window);
    private long _spikeAt; // the run's step count at the latest spike (0: none yet)
    private double _spikeFactor;
    private readonly double[] _scratch = new double[Math.Max(window, BaselineSteps) + 1];

    public override FindingKind Kind => FindingKind.ExplodingGradients;

    public override Finding? Check(RunHistory run, StepRecord step)
    {
        double norm = step.GlobalGradNorm;
        double baseline = run.BaselineCount >= BaselineSteps ? RunHistory.Median(Copy(run.BaselineNorms.AsSpan(0, BaselineSteps))) : double.NaN;
        double recent = run.MedianOf(run.GradNorm, 3);
        double growth = baseline > 0 ? recent / baseline : double.NaN;
        double before = PreviousMedian(run);
        double spike = before > 0 && double.IsFinite(norm) ? norm / before : double.NaN;
        var (first, last, n) = Ends(step);
        double depthRatio = n >= 3 && last!.Gradient.Rms > 0 ? first!.Gradient.Rms / last.Gradient.Rms : double.NaN;
        _growth.Push(growth > GrowthThreshold);
        _spikes.Push(spike > SpikeThreshold);
        _depth.Push(depthRatio > DepthRatioThreshold);
        bool diverging = (run.Symptoms & Symptoms.Diverging) != 0;
        int spikeCount = (int)Math.Round(_spikes.Share * window);
        bool grown = growth > GrowthThreshold && (diverging || (_growth.Share >= persistence && Unwell(run)));
        if (spike > SpikeThreshold) (_spikeAt, _spikeFactor) = (run.Count, spike);
        // One spike is enough once the loss diverges within the window that holds it: the divergence symptom is a median
        // of 5 losses, so it follows the step that threw the weights by a few steps, often after the norm has fallen back.
        bool spikeBefore = diverging && !_spikes.Latest && _spikeAt > 0 && run.Count - _spikeAt < window;
        bool spiky = _spikes.Latest && (spikeCount >= 2 && Unwell(run) || diverging) || spikeBefore;
        if (spikeBefore) spike = _spikeFactor;
        bool deep = _depth.Share >= persistence && Unwell(run);
        // Acute: the norm went non-finite right after jumping tenfold from the step before (too fast for any window).
        double jump = !double.IsFinite(norm) && run.GradNorm.Count >= 3 && run.GradNorm[2] > 0 ? run.GradNorm[1] / run.GradNorm[2] : double.NaN;
        bool blewUp = jump > SpikeThreshold;
        if (blewUp) spike = jump;
        if (!grown && !spiky && !deep && !blewUp) return null;
        double clip = RunHistory.Quantile(run.BaselineNorms.Take(run.BaselineCount), 0.9);
        var evidence = new List<Evidence>();
        if (double.IsFinite(growth))
            evidence.Add(new Evidence("median of the latest 3 gradient norms / median of the first 5 recorded", growth, GrowthThreshold, "run-relative growth (DOCTOR.md)"));
        if (double.IsFinite(spike))
            evidence.Add(new Evidence($"gradient norm / median of the previous {window}", spike, SpikeThreshold, "run-relative spike (DOCTOR.md)"));
        if (double.IsFinite(depthRatio))
            evidence.Add(new Evidence($"gradient RMS of {Label(first!.Layer)} / {Label(last!.Layer)}", depthRatio, DepthRatioThreshold, "AUTOTRAINER ICSE'21"));
        evidence.Add(run.SymptomEvidence());
        string lr = run.LearningRate is { } r ? RunHistory.Round1(r / 10) : "a tenth of the current one";
        return new Finding
        {
            Kind = Kind, Severity = diverging || blewUp ? Severity.Error : Severity.Warning,
            Title = blewUp ? $"exploding gradients: the norm jumped {jump:G3}x in one step, then became non-finite"
                : grown ? $"exploding gradients: the gradient norm is {growth:G3}x its value at {(run.StartsAtInitialisation ? "the start" : $"step {run.First!.Step}, where the records start")}"
                : spikeBefore ? $"a gradient spike {spike:G3}x the recent median {run.Count - _spikeAt} steps before the loss diverged"
                : spiky ? $"gradient spikes: {norm:G3}, {spike:G3}x the recent median" : $"the gradient grows {depthRatio:G3}x towards the input",
            Layers = deep ? [first!.Layer] : [], FirstStep = step.Step, LastStep = step.Step,
            Confidence = Confidence(Math.Max(Math.Max(_growth.Share, _depth.Share), grown || spiky || blewUp ? 1 : 0), Unwell(run) || diverging || blewUp),
            Evidence = evidence,
            Explanation = (run.Recurrent ? "Backpropagation through time multiplies the gradient by the recurrent weights at every time step. "
                              : "Backpropagation multiplies the gradient by each layer's weights on the way back. ") + "When those factors are above one the gradient grows geometrically, the update jumps far " +
                          "past any minimum and the loss rises or becomes NaN.",
            Fixes = Fixes([
                ($"clip the gradient norm at max norm {RunHistory.Round1(clip)}, the 90th percentile of the first {run.BaselineCount} recorded steps' norms",
                    "it keeps the direction of each step and caps its length at what was normal in this run"),
                ($"lower the learning rate to {lr}", "a smaller step cannot amplify a large gradient as much"),
                .. ArchitectureFixes(run)]),
        };
    }

    // What to change in the model depends on what it is: a recurrent layer multiplies by W_hh at every time step, a
    // feed-forward stack by each layer's weights once (the setup the monitor recorded says which).
    private static IEnumerable<(string, string)> ArchitectureFixes(RunHistory run)
    {
        var types = run.Setup?.Parameters.Select(p => (Layer: GradientMonitor.LayerOf(p.Name), p.LayerType)).Distinct().ToList() ?? [];
        if (run.Recurrent)
        {
            var plain = types.Where(t => t.LayerType == "RNN").Select(t => t.Layer).ToList();
            if (plain.Count > 0)
                yield return ($"replace the plain RNN in {Names(plain)} by an LSTM or GRU", "their gated, additive cell state keeps the product of per-step factors near one");
            yield return ("initialise the recurrent weights (weight_hh) orthogonally with gain 1 (Init.Orthogonal)",
                "every singular value of W_hh is then 1, so the gradient neither grows nor shrinks from one time step to the next");
            yield break;
        }
        if (!types.Any(t => t.LayerType is { } name && name.Contains("Norm", StringComparison.Ordinal)))
            yield return ("add BatchNorm (convolutions, MLPs) or LayerNorm (transformers) after each hidden layer", "it resets each layer's scale, so the layers' factors cannot compound");
        yield return ("initialise the Linear/Conv weights with Kaiming (He) init, std sqrt(2/fan_in), and zero biases",
            "each layer then passes the gradient back at about its own scale instead of multiplying it");
    }

    private Span<double> Copy(ReadOnlySpan<double> values)
    {
        values.CopyTo(_scratch);
        return _scratch.AsSpan(0, values.Length);
    }

    // The median of the norms before the latest one (up to a window of them).
    private double PreviousMedian(RunHistory run)
    {
        int n = Math.Min(window, run.GradNorm.Count - 1);
        if (n < 5) return double.NaN;
        int k = 0;
        for (int i = 1; i <= n; i++) if (double.IsFinite(run.GradNorm[i])) _scratch[k++] = run.GradNorm[i];
        return RunHistory.Median(_scratch.AsSpan(0, k));
    }
}
