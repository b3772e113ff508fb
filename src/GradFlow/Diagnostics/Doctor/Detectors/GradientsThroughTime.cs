namespace GradFlow.Diagnostics;

/// <summary>
/// The gradient through time of one recurrent layer direction in one step: ||dL/dh_t|| averaged over the first and the
/// last steps the layer ran (k = max(1, T/8) each; a reverse direction runs from t = T-1 down), their ratio and the
/// per-step factor it implies. Backpropagation through time unrolls the layer into a network one layer deep per step
/// (Werbos 1990), so the first/last ratio plays the part AUTOTRAINER's first/last layer ratio plays across depth.
/// </summary>
internal readonly record struct TimeProfile(RecurrentStepStats Layer, int Steps, int Span, double Early, double Late)
{
    /// <summary>Steps per end (at least 8 time steps are needed for a ratio worth reading).</summary>
    public const int MinSteps = 8;

    public double Ratio => Early / Late;

    /// <summary>The average factor per time step: ratio^(1 / steps between the two ends' centres).</summary>
    public double PerStep => Math.Pow(Ratio, 1.0 / (Steps - Span));

    /// <summary>The time indices of the first (<paramref name="first"/>) or last steps run.</summary>
    public int[] TimeSteps(bool first)
    {
        var t = new int[Span];
        for (int i = 0; i < Span; i++)
        {
            int s = first ? i : Steps - Span + i; // run order
            t[i] = Layer.Reverse ? Steps - 1 - s : s;
        }
        System.Array.Sort(t);
        return t;
    }

    public string Range(bool first)
    {
        var t = TimeSteps(first);
        return t.Length == 1 ? $"t = {t[0]}" : $"t = {t[0]}..{t[^1]}";
    }

    /// <summary>The profile of a layer direction, or null when it is too short or the last steps received no finite gradient.</summary>
    public static TimeProfile? Of(RecurrentStepStats layer)
    {
        int steps = layer.GradNorms.Count;
        if (steps < MinSteps) return null;
        int span = Math.Max(1, steps / 8);
        double early = 0, late = 0;
        for (int i = 0; i < span; i++)
        {
            early += layer.GradNorms[layer.Reverse ? steps - 1 - i : i];
            late += layer.GradNorms[layer.Reverse ? span - 1 - i : steps - span + i];
        }
        // A direction whose last steps get nothing (the reverse half when only the last output is read) says nothing.
        if (!(late > 0) || !double.IsFinite(late) || !double.IsFinite(early)) return null;
        return new TimeProfile(layer, steps, span, early / span, late / span);
    }

    /// <summary>The direction with the smallest (or largest) ratio in the step; null if none qualifies.</summary>
    public static TimeProfile? Extreme(StepRecord step, bool smallest)
    {
        TimeProfile? best = null;
        for (int at = 0; at < step.RecurrentSteps.Count; at++)
            if (Of(step.RecurrentSteps[at]) is { } p && (best is not { } b || (smallest ? p.Ratio < b.Ratio : p.Ratio > b.Ratio)))
                best = p;
        return best;
    }

    public string Name => $"{(Layer.Layer.Length == 0 ? "(root)" : Layer.Layer)} ({Layer.Suffix})";
}

/// <summary>
/// Whether a through-time condition persists. The per-time-step norms come on the records with details only
/// (MonitorOptions.DetailEvery), so the streak counts those records, over a window as long in records as the other
/// rules' (<see cref="RunHistory.SampledWindow"/>), and the verdict and the profile it was drawn from hold in between. A
/// verdict holds only if the rule's gate was open at its sample too: a ratio judged before the run could be judged (the
/// first window, no symptom yet) says nothing of the steps after it, up to DetailEvery - 1 of which it would stand for.
/// </summary>
internal sealed class SampledTimeCondition(double persistence)
{
    private Streak _streak = new(1);

    public bool Holding { get; private set; }
    public double Share => _streak.Share;
    public TimeProfile? Profile { get; private set; }

    /// <summary>Updates from <paramref name="step"/> if it carries per-time-step norms: <paramref name="hit"/> judges its profile.</summary>
    public void Update(RunHistory run, StepRecord step, bool smallest, Func<TimeProfile, bool> hit, bool gateOpen)
    {
        if (step.RecurrentSteps.Count == 0) return;
        int samples = run.SampledWindow;
        if (_streak.Length != samples) _streak = _streak.Resized(samples);
        var profile = TimeProfile.Extreme(step, smallest);
        bool now = profile is { } p && hit(p);
        _streak.Push(now);
        Holding = now && _streak.Share >= persistence && gateOpen;
        Profile = profile;
    }
}

/// <summary>
/// Vanishing through time: in a recurrent layer the first steps run receive under 1e-3 of the gradient the last steps
/// receive. Bengio et al. (1994) and Pascanu et al. (ICML 2013) show dL/dh_t shrinks geometrically, by about
/// ||diag(f'(a)) W_hh|| per step, once that norm stays below 1 (a spectral radius of W_hh under 1/gamma, gamma = 1 for
/// tanh, 1/4 for sigmoid): the first steps then cannot learn from the loss. The 1e-3 is AUTOTRAINER's (ICSE'21)
/// first/last ratio, applied to the network unrolled through time. Gated on a loss symptom and held over the window (of
/// sampled records, <see cref="SampledTimeCondition"/>); it
/// stands aside once the learning rate was found too low: updates too small to move any weight explain the symptom then
/// (an LSTM at its default init already keeps only about half of dL/dh per step, so its ratio over 16 steps is ~2e-4).
/// </summary>
internal sealed class VanishingThroughTime(double persistence) : Detector
{
    internal const double RatioThreshold = 1e-3;
    private readonly SampledTimeCondition _condition = new(persistence);
    private static readonly Func<TimeProfile, bool> Vanishing = p => p.Ratio < RatioThreshold;

    public override FindingKind Kind => FindingKind.VanishingGradients;

    // The figures of the latest step on which the condition held: Build writes the finding from them.
    private TimeProfile _profile;
    private long _at;
    private double _share;
    private SymptomState _symptoms;
    private RunSetup? _setup;
    private readonly StepCaused _steps = new();

    public override Finding? Check(RunHistory run, StepRecord step) => Hold(run, step) is null ? null : Build();

    public override Severity? Hold(RunHistory run, StepRecord step)
    {
        bool gate = Unwell(run) && !run.Raised[(int)FindingKind.LearningRateTooLow];
        _condition.Update(run, step, smallest: true, Vanishing, gate);
        if (step.RecurrentSteps.Count > 0 && _condition.Profile is { } p)
        {
            bool now = Vanishing(p);
            _steps.Start(!now);
            _steps.Track(now, _condition.Share, run);
        }
        // As across depth: a layer that carried the gradient through time at its first recorded step and lost it after large steps
        // (a ReLU RNN whose growing rate kills its units) was brought there by the rate.
        if (!_condition.Holding || !gate || _steps.ByTheSteps) return null;
        (_profile, _at, _share, _symptoms, _setup) = (_condition.Profile!.Value, step.Step, _condition.Share, run.SymptomNow, run.Setup);
        return Severity.Warning;
    }

    public override Finding Build()
    {
        var v = _profile;
        double share = _share;
        double factor = v.PerStep;
        // Steps over which the gradient keeps 1e-3 of its size at this per-step factor: a truncation that still learns.
        int reach = factor is > 0 and < 1 ? Math.Max(1, (int)Math.Floor(Math.Log(RatioThreshold) / Math.Log(factor))) : v.Steps;
        return new Finding
        {
            Kind = Kind, Severity = Severity.Warning,
            Title = $"vanishing gradients through time: in {v.Name} the first steps run ({v.Range(true)}) get {v.Ratio:G2} of the gradient of the last ({v.Range(false)})",
            Layers = [v.Layer.Layer], TimeSteps = v.TimeSteps(first: true), FirstStep = _at, LastStep = _at,
            Confidence = Confidence(share, true),
            Evidence =
            [
                new Evidence($"||dL/dh|| at {v.Range(true)} / at {v.Range(false)} in {v.Name}", v.Ratio, RatioThreshold,
                    "AUTOTRAINER ICSE'21 first/last ratio on the network unrolled through time (DOCTOR.md)"),
                new Evidence("gradient factor per time step", factor, 1, "Bengio et al. 1994, Pascanu et al. ICML'13: below 1 the gradient shrinks geometrically"),
                new Evidence("share of the window's records with per-time-step norms on which the ratio held", share, persistence, "persistence (DOCTOR.md)"),
                _symptoms.ToEvidence(),
            ],
            Explanation = $"Backpropagation through time multiplies the gradient by the recurrent weights and the activation's derivative at every " +
                          $"time step. Here each step keeps about {factor:G2} of it, so after {v.Steps} steps the first inputs of the sequence " +
                          "receive almost nothing: the layer cannot learn to use information from the start of the sequence.",
            Fixes = Fixes([.. RecurrentFixes.For(_setup, null, v.Layer.Layer, exploding: false, reach, v.Steps)]),
        };
    }
}

/// <summary>
/// Exploding through time: the first steps run receive over 70 times the gradient of the last steps. Pascanu et al.
/// (ICML 2013): a spectral radius of the recurrent Jacobian above 1 is necessary for dL/dh_t to grow geometrically
/// back through time; the 70 is AUTOTRAINER's (ICSE'21) exploding first/last ratio on the unrolled network. Gated on a
/// loss symptom (or divergence) and held over the window (of sampled records, <see cref="SampledTimeCondition"/>).
/// </summary>
internal sealed class ExplodingThroughTime(double persistence) : Detector
{
    internal const double RatioThreshold = 70;
    private readonly SampledTimeCondition _condition = new(persistence);
    private static readonly Func<TimeProfile, bool> Exploding = p => p.Ratio > RatioThreshold;

    public override FindingKind Kind => FindingKind.ExplodingGradients;

    public override Finding? Check(RunHistory run, StepRecord step)
    {
        bool diverging = (run.Symptoms & Symptoms.Diverging) != 0;
        _condition.Update(run, step, smallest: false, Exploding, Unwell(run) || diverging);
        if (!_condition.Holding || !(Unwell(run) || diverging)) return null;
        var v = _condition.Profile!.Value;
        double share = _condition.Share;
        double factor = v.PerStep;
        int reach = factor > 1 ? Math.Max(1, (int)Math.Floor(Math.Log(RatioThreshold) / Math.Log(factor))) : v.Steps;
        return new Finding
        {
            Kind = Kind, Severity = diverging ? Severity.Error : Severity.Warning,
            Title = $"exploding gradients through time: in {v.Name} the first steps run ({v.Range(true)}) get {v.Ratio:G3}x the gradient of the last ({v.Range(false)})",
            Layers = [v.Layer.Layer], TimeSteps = v.TimeSteps(first: true), FirstStep = step.Step, LastStep = step.Step,
            Confidence = Confidence(share, true),
            Evidence =
            [
                new Evidence($"||dL/dh|| at {v.Range(true)} / at {v.Range(false)} in {v.Name}", v.Ratio, RatioThreshold,
                    "AUTOTRAINER ICSE'21 exploding ratio on the network unrolled through time (DOCTOR.md)"),
                new Evidence("gradient factor per time step", factor, 1, "Pascanu et al. ICML'13: above 1 the gradient can grow geometrically"),
                new Evidence("share of the window's records with per-time-step norms on which the ratio held", share, persistence, "persistence (DOCTOR.md)"),
                run.SymptomEvidence(),
            ],
            Explanation = $"Backpropagation through time multiplies the gradient by the recurrent weights at every time step. Here each step " +
                          $"multiplies it by about {factor:G3}, so the first steps of the sequence get a gradient {v.Ratio:G3} times that of the last, " +
                          "and the updates it drives jump far past any minimum.",
            Fixes = Fixes([.. RecurrentFixes.For(run.Setup, run, v.Layer.Layer, exploding: true, reach, v.Steps)]),
        };
    }
}

/// <summary>What to change in a recurrent layer whose gradient vanishes or explodes through time.</summary>
internal static class RecurrentFixes
{
    /// <summary>The fixes; <paramref name="run"/> (for the clip norm from its baseline) is needed only when exploding.</summary>
    public static IEnumerable<(string, string)> For(RunSetup? setup, RunHistory? run, string layer, bool exploding, int reach, int steps)
    {
        string type = setup?.Parameters.FirstOrDefault(p => GradientMonitor.LayerOf(p.Name) == layer)?.LayerType ?? "";
        string name = layer.Length == 0 ? "(root)" : layer;
        if (exploding)
        {
            double clip = RunHistory.Quantile(run!.BaselineNorms.Take(run.BaselineCount), 0.9);
            yield return ($"clip the gradient norm at max norm {RunHistory.Round1(clip)}, the 90th percentile of the first {run.BaselineCount} recorded steps' norms",
                "it caps the step the largest per-time-step products can drive, keeping its direction");
        }
        if (type == "RNN")
            yield return ($"replace the plain RNN in {name} by an LSTM or GRU",
                "their gated, additive cell state carries the gradient across time steps with a factor near one");
        yield return ($"initialise {name}'s recurrent weights (weight_hh) orthogonally with gain 1 (Init.Orthogonal)",
            "all singular values of W_hh are then 1, so one time step neither shrinks nor grows the gradient by itself");
        if (type == "LSTM" && !exploding)
            yield return ($"set {name}'s forget-gate biases to 1 (the second quarter of bias_hh)", "the cell state is then kept by default and its gradient passes back (Jozefowicz et al. 2015)");
        if (reach < steps)
            yield return ($"truncate backpropagation through time to about {reach} steps (or shorten the sequences)",
                $"at this run's per-step factor the gradient stays within a factor {(exploding ? ExplodingThroughTime.RatioThreshold : 1 / VanishingThroughTime.RatioThreshold):G3} over {reach} steps");
    }
}
