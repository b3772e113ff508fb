namespace GradFlow.Diagnostics;

/// <summary>
/// The learning rate is too high when the loss diverges (or goes back and forth without progress) while the updates
/// are large against the weights: the update/weight ratio above 1e-2, ten times Karpathy's healthy 1e-3 (DeepDiagnosis
/// ICSE'22 flags lr |dW|/|W| above 1e-1). With curvature measured, lambda_max * lr &gt; 2 (gradient descent on a
/// quadratic diverges beyond it, Cohen et al. 2021) is enough on its own, with a symptom. A rate can also kill a network
/// without the loss rising: ReLUs alive at the first recorded step, dead after updates above DeepDiagnosis' 1e-1, and the
/// loss flat since (a network born dead is poor initialisation's case, not this one; one dead when a resumed run's records
/// start, DeadRelu's).
/// </summary>
internal sealed class LearningRateTooHigh(int window, double persistence) : Detector
{
    internal const double RatioThreshold = 1e-2;
    internal const double OscillationRatio = 1e-1; // DeepDiagnosis ICSE'22 upper bound on lr |dW|/|W|
    internal const double OscillationEfficiency = 0.2; // |net change| / path of the smoothed loss
    internal const double OscillationSpread = 0.1;     // std / mean of the raw loss over the window
    private readonly Streak _streak = new(window), _flat = new(window);
    private double _blowUpRatio; // the largest update/weight ratio seen while the finite loss was diverging (0: never)
    private double _blowUpLoss;  // the highest finite loss of that episode
    private double _preDeathPeak; // the largest update/weight ratio before dead ReLUs were found (NaN: none alive at the first recorded step)

    public override FindingKind Kind => FindingKind.LearningRateTooHigh;

    public override Finding? Check(RunHistory run, StepRecord step)
    {
        if ((run.Symptoms & Symptoms.Diverging) != 0 && step.Loss is { } l && double.IsFinite(l) && run.MaxUpdateRatio[0] is var r && double.IsFinite(r))
        {
            _blowUpRatio = Math.Max(_blowUpRatio, r);
            _blowUpLoss = Math.Max(_blowUpLoss, l);
        }
        bool flat = (run.Symptoms & Symptoms.Stalled) != 0 && (run.Symptoms & Symptoms.Slow) != 0;
        _flat.Push(flat);
        if (run.Count == 1) _preDeathPeak = ReluAlive(step) ? 0 : double.NaN;
        bool dead = run.Raised[(int)FindingKind.DeadRelu];
        if (!dead && run.MaxUpdateRatio[0] is var before && double.IsFinite(before)) _preDeathPeak = Math.Max(_preDeathPeak, before);
        // Killed: large updates, then dead units while training is unwell (the updates of a dead layer are no longer large:
        // judge the ones before). The gate is DeadRelu's own symptom gate: the finding names the cause of the one DeadRelu raised.
        bool killed = dead && _preDeathPeak > OscillationRatio && Unwell(run);
        // Blown up, then flat: large updates threw the loss up and the run never learned after it (a run that recovers
        // and learns is left alone, however large its first steps were: the symptom gate).
        bool stranded = _blowUpRatio > RatioThreshold && flat && _flat.Share >= persistence;
        double ratio = run.MedianOf(run.MaxUpdateRatio, Math.Min(window, 5));
        // A divergence is judged by the updates that caused it: the largest ratio of the window (after it, dead units may update nothing).
        double peak = run.MaxOf(run.MaxUpdateRatio, window);
        // A finite loss that keeps rising (3 of the latest 5 steps): one NaN is NonFiniteValues' business, not proof of a high rate.
        bool diverging = run.RisingSteps >= 3;
        // Weights collapsed by weight decay make every update look large against them.
        bool collapsed = run.Raised[(int)FindingKind.RegularisationDominates];
        // Oscillation: stalled, going back and forth, and by a lot (a stalled loss that only jitters is not a rate problem).
        bool oscillating = (run.Symptoms & Symptoms.Stalled) != 0 && run.LossEfficiency() < OscillationEfficiency
                           && run.LossSpread() > OscillationSpread && !collapsed;
        double sharpness = run.Curvature is { } c && run.LearningRate is { } lr0 ? c.LambdaMax * lr0 : double.NaN;
        bool hit = (diverging && (peak > RatioThreshold || sharpness > 2)) || (oscillating && (ratio > OscillationRatio || sharpness > 2));
        if (diverging) ratio = peak;
        _streak.Push(hit);
        // Divergence is acute: no window to wait for; oscillation must persist.
        bool judged = hit && (diverging || (_streak.Share >= persistence && run.WarmedUp));
        if (!judged && !stranded && !killed) return null;
        if (!judged) ratio = stranded ? _blowUpRatio : _preDeathPeak;
        var evidence = new List<Evidence>
        {
            !judged && !stranded
                ? new($"largest update/weight ratio before the ReLUs died (they were alive at {run.FirstStepName})", ratio, OscillationRatio, "DeepDiagnosis ICSE'22 upper bound on lr|dW|/|W|")
                : new(diverging ? "largest update/weight ratio of the window" : !judged ? "largest update/weight ratio while the loss diverged" : "largest update/weight ratio (median of the latest 5 steps)",
                    ratio, diverging || !judged ? RatioThreshold : OscillationRatio,
                    diverging || !judged ? "Karpathy's 1e-3 rule, ten times over" : "DeepDiagnosis ICSE'22 upper bound on lr|dW|/|W|"),
            new("net change / path length of the smoothed loss over the window", run.LossEfficiency(), OscillationEfficiency, "oscillation measure (DOCTOR.md)"),
            new("std / mean of the loss over the window", run.LossSpread(), OscillationSpread, "oscillation measure, tuning set (DOCTOR.md)"),
            run.SymptomEvidence(),
        };
        if (!judged && stranded)
            evidence.Add(new Evidence($"highest loss of the blow-up / {run.StartLossName}", _blowUpLoss / run.StartLoss, 1.5, "the divergence symptom (DOCTOR.md)"));
        if (double.IsFinite(sharpness)) evidence.Add(new Evidence("lambda_max * lr", sharpness, 2, "stability of gradient descent on a quadratic (Cohen et al. 2021)"));
        string suggestion = run.LearningRate is not { } lr ? "a tenth of the current learning rate"
            : double.IsFinite(sharpness) && sharpness > 2 ? RunHistory.Round1(1.0 / run.Curvature!.LambdaMax)
            : RunHistory.Round1(lr * Math.Min(0.3, ratio > 0 ? 1e-3 / ratio : 0.1));
        return new Finding
        {
            Kind = Kind, Severity = diverging ? Severity.Error : Severity.Warning,
            Title = diverging ? "the learning rate is too high: the loss diverges"
                : judged ? "the learning rate is too high: the loss oscillates without progress"
                : stranded ? "the learning rate is too high: the loss blew up and has been flat since"
                : run.StartsAtInitialisation ? "the learning rate is too high: its first large steps killed the ReLUs and the loss has been flat since"
                : $"the learning rate is too high: large steps since step {run.First!.Step} killed the ReLUs and the loss has been flat since",
            FirstStep = step.Step, LastStep = step.Step, Confidence = Confidence(diverging ? 1 : judged ? _streak.Share : _flat.Share, true),
            Evidence = evidence,
            Explanation = $"Each step changes the weights by about {ratio:P1} of their size (about 0.1% is typical). Steps that large overshoot " +
                          "the valley the loss is in: the loss jumps from one side to the other, or climbs out altogether.",
            Fixes = Fixes(
                ($"lower the learning rate to {suggestion}", "it brings the update/weight ratio to about 1e-3" + (double.IsFinite(sharpness) ? " and lr below 2/lambda_max" : "")),
                ("use a warm-up (linear over the first few hundred steps) or the LR finder (LRFinder) to choose it", "the steepest stable rate is found from the run, not guessed"),
                ("clip the gradient norm", "it bounds the step when a large gradient meets a large rate")),
        };
    }

    // Most units of every ReLU layer passed something at the first recorded step (the monitor's per-step dead share).
    private static bool ReluAlive(StepRecord step)
    {
        bool any = false;
        foreach (var a in step.Activations)
        {
            if (a.Op != OpNames.Relu) continue;
            if ((a.DeadFraction ?? 0) >= DeadRelu.DeadThreshold) return false;
            any = true;
        }
        return any;
    }
}

/// <summary>
/// The learning rate is too low when the layer nearest the loss (whose gradient nothing has attenuated) moves its
/// weights by less than 1e-5 of their size per step (DeepDiagnosis' lower bound on lr |dW|/|W|, two orders below the
/// healthy 1e-3), or has moved less than 1% of its size in all the steps so far (fewer than ten healthy steps' worth,
/// after at least two windows), while the loss is stalled or slow. The second test catches adaptive optimisers, whose
/// per-step ratio is about lr / weight RMS whatever the gradient: Adam at lr 1e-6 moves a 200-wide layer by ~2e-5 a step.
/// A layer that moves nothing because no gradient reaches it (dead units, a zero gradient) is their finding, not the rate's.
/// </summary>
internal sealed class LearningRateTooLow(int window, double persistence) : Detector
{
    internal const double RatioThreshold = 1e-5;
    internal const double MovementThreshold = 1e-2;
    internal const double RateCutThreshold = 100;
    private readonly Streak _streak = new(window);

    public override FindingKind Kind => FindingKind.LearningRateTooLow;

    public override Finding? Check(RunHistory run, StepRecord step)
    {
        double ratio = run.OutputUpdateRatio.Count > 0 ? run.OutputUpdateRatio[0] : double.NaN;
        bool barelyMoved = run.Count >= 2 * window && run.OutputMovement < MovementThreshold;
        // A schedule that cut the rate 100x below its own peak while the loss is still near its start: the decay came before the
        // learning (a StepLR stepped per batch). Stalled only: annealing after the loss fell is what a schedule is for.
        bool cut = run.RateCut >= RateCutThreshold && (run.Symptoms & Symptoms.Stalled) != 0;
        bool hit = ratio < RatioThreshold || barelyMoved || cut;
        _streak.Push(hit);
        if (!hit || _streak.Share < persistence || !Unwell(run, Symptoms.Stalled | Symptoms.Slow)) return null;
        if (run.Raised[(int)FindingKind.DeadRelu] || run.Raised[(int)FindingKind.ZeroGradient]) return null;
        double median = run.MedianOf(run.OutputUpdateRatio, window);
        string suggestion = run.LearningRate is { } lr ? RunHistory.Round1(lr * Math.Min(1000, 1e-3 / median)) : "10 to 100 times the current one";
        bool scheduled = run.RateCut >= RateCutThreshold;
        return new Finding
        {
            Kind = Kind, Severity = Severity.Warning,
            Title = $"the learning rate is too low: the last layer changes by {median:G2} of its weights per step",
            FirstStep = step.Step, LastStep = step.Step, Confidence = Confidence(_streak.Share, true),
            Evidence =
            [
                new Evidence("update/weight ratio of the layer nearest the loss (median over the window)", median, RatioThreshold, "DeepDiagnosis ICSE'22 lower bound; Karpathy's healthy 1e-3"),
                new Evidence($"sum of that ratio over the {run.Count} recorded steps{(run.StartsAtInitialisation ? "" : $" from step {run.First!.Step}")} (bound on how far the layer moved)", run.OutputMovement, MovementThreshold,
                    "derivation: ten steps at the healthy 1e-3 (DOCTOR.md)"),
                new Evidence("peak learning rate so far / current one", run.RateCut, RateCutThreshold, "two orders of magnitude, as DeepDiagnosis' 1e-5 lies below the healthy 1e-3 (DOCTOR.md)"),
                run.SymptomEvidence(),
            ],
            Explanation = "The weights change by a tiny fraction of their size each step, so after many steps they have hardly moved and " +
                          "the loss has hardly fallen. Gradient descent is working; it is just taking steps far too small to get anywhere.",
            Fixes = scheduled
                ? Fixes(
                    ($"check the scheduler: the rate is {run.RateCut:G2}x below its peak {RunHistory.Round1(run.PeakLearningRate)} while the loss has hardly fallen; a step size meant in epochs but stepped every batch decays it that fast",
                        "the schedule should decay the rate after the loss has come down, not before"),
                    ($"keep the rate near {RunHistory.Round1(run.PeakLearningRate)} until the loss stops falling (StepLR/CosineAnnealingLR over the whole run's steps)", "the rate that worked at the start is still needed"))
                : Fixes(
                    ($"raise the learning rate to {suggestion}", "it brings the update/weight ratio of the last layer to about 1e-3"),
                    ("use the LR finder (LRFinder) to choose it", "it sweeps the rate and picks the steepest descent of the loss"),
                    ("use Adam with lr 1e-3", "its step size is set by lr directly, nearly independent of the gradient's scale")),
        };
    }
}
