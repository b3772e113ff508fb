namespace GradFlow.Diagnostics;

/// <summary>
/// The loss stays within 10% of where it started (or of chance), and stops falling, for two windows while no gradient problem explains it (nothing
/// vanishing, exploding, dead, saturated, and the learning rate not flagged): the fault is then in the labels, the
/// data or the model's wiring. When the number of classes is known, the evidence says how close the loss is to chance, ln(classes).
/// Its claim is that nothing was learned: records that start after training began (a resumed run) start at a loss that
/// may be the fruit of learning, so they are judged against chance alone, and not at all without a chance level.
/// With heavy dropout in the recorded setup (<see cref="HeavyDropout"/>) the finding names the dropout as the likely cause,
/// with its rate, the dead units it leaves behind and the lower rate to use.
/// </summary>
internal sealed class NotLearning(int window, double persistence) : Detector
{
    private static readonly FindingKind[] s_causes =
    [
        FindingKind.VanishingGradients, FindingKind.ExplodingGradients, FindingKind.NonFiniteValues, FindingKind.DeadRelu,
        FindingKind.SaturatedActivations, FindingKind.LearningRateTooHigh, FindingKind.LearningRateTooLow, FindingKind.GradientAccumulation,
        FindingKind.RegularisationDominates, FindingKind.ProbabilitiesIntoLogitLoss, FindingKind.ZeroGradient, FindingKind.PoorInitialisation,
    ];
    private readonly Streak _streak = new(2 * window);

    public override FindingKind Kind => FindingKind.NotLearning;

    public override Finding? Check(RunHistory run, StepRecord step)
    {
        // Flat: no better than the start (or chance) and not falling either; a slow but steady descent is not "not learning".
        bool stalled = (run.Symptoms & Symptoms.Stalled) != 0 && (run.Symptoms & Symptoms.Slow) != 0;
        _streak.Push(stalled);
        if (!stalled || _streak.Share < persistence || run.Count < 2 * window) return null;
        if (!run.StartsAtInitialisation && !double.IsFinite(run.ChanceLoss)) return null;
        foreach (var k in s_causes) if (run.Raised[(int)k]) return null;
        // "The weights move" is this finding's premise: a schedule that cut the rate 100x explains the stall (LearningRateTooLow).
        if (run.RateCut >= LearningRateTooLow.RateCutThreshold) return null;
        var evidence = new List<Evidence> { run.SymptomEvidence() };
        if (double.IsFinite(run.ChanceLoss))
            evidence.Add(new Evidence("smoothed loss / chance level ln(classes)", run.LatestSmoothed / run.ChanceLoss, 1, "a classifier that guesses uniformly"));
        if (HeavyDropout.Present(run)) return FromDropout(run, step, evidence);
        return new Finding
        {
            Kind = Kind, Severity = Severity.Warning,
            Title = run.StartsAtInitialisation
                ? $"not learning: the loss is still {run.LatestSmoothed:G3} after {run.Count} steps ({run.LatestSmoothed / run.InitialLoss:P0} of where it started)"
                : $"not learning: the loss is still {run.LatestSmoothed:G3}, {run.LatestSmoothed / run.ChanceLoss:P0} of chance, over {run.Count} recorded steps from step {run.First!.Step}",
            FirstStep = step.Step, LastStep = step.Step, Confidence = Confidence(_streak.Share, true),
            Evidence = evidence,
            Explanation = "The gradients flow normally and the weights move, yet the loss stays at its starting (chance) level. The network " +
                          "is being asked something it cannot get from its input: labels that do not match the inputs (shuffled separately), " +
                          "inputs that are constant or not what was meant, or a model whose output does not depend on its input.",
            Fixes = Fixes(
                ("train on one small batch until it is memorised (loss near 0)", "if even that fails, the model or loss is wired wrong; if it works, the data is"),
                ("check that inputs and labels are shuffled together and that labels match what the inputs show", "random labels leave nothing to learn"),
                ("check that the inputs vary (print their mean and std per feature)", "a constant input carries no information")),
        };
    }

    // Heavy dropout in the recorded setup: the model's own noise is the likely reason it learns nothing (HeavyDropout).
    private Finding FromDropout(RunHistory run, StepRecord step, List<Evidence> evidence)
    {
        var heavy = HeavyDropout.Of(run);
        var top = heavy.MaxBy(d => d.P)!;
        evidence.Insert(0, new Evidence($"dropout rate p of {Label(top.Name)} ({top.LayerType}, training mode)", top.P, HeavyDropout.Rate,
            "Srivastava et al. JMLR 2014: keep 0.5-0.8 of hidden units (drop at most 0.5), 0.8 of inputs"));
        evidence.Insert(1, new Evidence("its L2-like penalty weight p/(1-p)", top.P < 1 ? top.P / (1 - top.P) : double.PositiveInfinity, 1,
            "Wager, Wang & Liang NeurIPS 2013; 1 at p = 0.5"));
        var dead = (run.Detail?.Activations ?? []).Where(a => a.Op == OpNames.Relu && Math.Max(a.DeadFraction ?? 0, a.DeadWindowFraction ?? 0) >= DeadRelu.DeadThreshold).ToList();
        var where = new List<string>();
        foreach (var a in dead)
        {
            double share = Math.Max(a.DeadFraction ?? 0, a.DeadWindowFraction ?? 0);
            var next = heavy.FirstOrDefault(d => d.After == a.Layer);
            evidence.Add(new Evidence($"dead units in {Label(a.Layer)}{(next is null ? "" : $", whose output {Label(next.Name)} drops at p {next.P:G3}")}",
                share, DeadRelu.DeadThreshold, "AUTOTRAINER ICSE'21 / DeepDiagnosis ICSE'22 (70%)"));
            where.Add(next is null ? $"{Label(a.Layer)} ({share:P0} dead)" : $"{Label(a.Layer)} ({share:P0} dead, dropped by {Label(next.Name)})");
        }
        bool consequence = dead.Count > 0 && HeavyDropout.Explains(run, dead.Select(a => a.Layer).ToList());
        string rates = string.Join(", ", heavy.Select(d => $"{Label(d.Name)} at p {d.P:G3}"));
        string keep = heavy.Any(d => d.P >= 0.8) ? $" If {top.P:G3} was meant as the share to keep (TF1's keep_prob), p here is the share to drop, as in torch.nn.Dropout." : "";
        return new Finding
        {
            Kind = Kind, Severity = Severity.Warning,
            Title = $"not learning: the loss is still {run.LatestSmoothed:G3} after {run.Count} steps, under heavy dropout ({rates})",
            Layers = [.. heavy.Select(d => d.Name), .. dead.Select(a => a.Layer)],
            FirstStep = step.Step, LastStep = step.Step, Confidence = Confidence(_streak.Share, true),
            Evidence = evidence,
            Explanation = "Dropout at p zeroes that share of the units on every training pass and scales the rest by 1/(1-p): " +
                          (top.P >= 1 ? "at p 1 every unit is dropped and the layer passes nothing on, so nothing can be learnt through it" :
                          $"at p {top.P:G3} about {1 - top.P:P0} of the units survive each pass, each multiplied by {1 / (1 - top.P):G3}, so the next layer sees mostly noise " +
                          $"and every step trains a different small sub-network. The noise acts like an L2 penalty of weight p/(1-p) = {top.P / (1 - top.P):G3} " +
                          "(Wager et al. 2013; 1 at p = 0.5), and the loss stays at its start") +
                          (where.Count == 0 ? "." : consequence ? $"; units that were alive at the start died on the way ({string.Join("; ", where)}), a consequence, not the cause."
                              : $"; units are dead ({string.Join("; ", where)}).") + keep,
            Fixes = Fixes(
                ($"lower the dropout rate of {Names(heavy.Select(d => d.Name).ToList())} to 0.1-0.5 (Srivastava et al. 2014 used 0.5 for hidden units and 0.2 for inputs)",
                    "most units then pass the signal on every step and the network can fit the data"),
                ("train once with dropout off (p = 0) to check the model learns at all, then add it back while watching the validation loss",
                    "dropout is a regulariser: it only helps a model that already learns")),
        };
    }
}

/// <summary>
/// ZeroGrad forgotten. Observed: the engine saw a backward pass add to the gradient an optimiser step had already used
/// (<see cref="StepRecord.GradientsCarriedOver"/>) on <see cref="CarriedSteps"/> steps in a row. That is the bug itself,
/// not a symptom, so it needs no loss symptom: a run that learns anyway (Adam normalises the growing sum) is warned,
/// one that does not gets an error. Inferred (run logs from before the field, other frameworks' loops): each step adds
/// the new gradient to the old, so the norm grows roughly in proportion to the step count. Over the window it fits a
/// straight line (R^2 &gt;= 0.9) rising with the step that extrapolates to near zero at step 0 (intercept within half the
/// latest norm): the sum of similar gradients. That inference is gated on a loss symptom.
/// </summary>
internal sealed class GradientAccumulation(int window, double persistence) : Detector
{
    internal const double MinRSquared = 0.9;
    internal const int CarriedSteps = 3;
    private readonly Streak _streak = new(window), _rises = new(window);
    private int _carriedRun; // consecutive steps with a gradient carried over

    public override FindingKind Kind => FindingKind.GradientAccumulation;

    public override Finding? Check(RunHistory run, StepRecord step)
    {
        _carriedRun = step.GradientsCarriedOver > 0 ? _carriedRun + 1 : 0;
        if (_carriedRun >= CarriedSteps) return Observed(run, step);
        var (r2, slope, intercept) = Fit(run);
        double latest = run.GradNorm[0];
        _rises.Push(run.GradNorm.Count >= 2 && run.GradNorm[0] > run.GradNorm[1]);
        // A running sum changes by one gradient a step, so its norm rises smoothly; a fresh mini-batch gradient's norm
        // goes up about half the time. Rising on 80% of the window while growing by half is the sum's signature too.
        bool rising = _rises.Share >= 0.8 && run.GradNorm.Count > window && latest > 1.5 * run.GradNorm[window];
        bool linear = r2 >= MinRSquared && slope > 0 && Math.Abs(intercept) <= 0.5 * latest;
        bool hit = linear || rising;
        _streak.Push(hit);
        if (!hit || _streak.Share < persistence || !Unwell(run)) return null;
        return new Finding
        {
            Kind = Kind, Severity = Severity.Error,
            Title = $"gradients accumulate across steps: the norm grows by {slope:G3} a step, in proportion to the step count",
            FirstStep = step.Step, LastStep = step.Step, Confidence = Confidence(_streak.Share, true),
            Evidence =
            [
                new Evidence($"R^2 of a straight-line fit of the gradient norm over the last {window} steps", r2, MinRSquared, "derivation: a sum of similar gradients grows linearly (DOCTOR.md)"),
                run.StartsAtInitialisation
                    ? new Evidence("line's value at step 0 / latest norm", intercept / latest, 0.5, "a sum started at step 0")
                    : new Evidence($"line's value just before step {run.First!.Step}, where the records start / latest norm", intercept / latest, 0.5,
                        "a sum started when the run resumed (a restored model's gradients are empty)"),
                new Evidence($"share of the last {window} steps on which the norm rose", _rises.Share, 0.8, "derivation: a fresh gradient's norm rises about half the time (DOCTOR.md)"),
                run.SymptomEvidence(),
            ],
            Explanation = "Gradients add up into each parameter's .Grad until they are cleared. If ZeroGrad is not called before each " +
                          "backward pass, every step's gradient is the sum of all the gradients so far: it grows with the step count and " +
                          "the updates grow with it until training falls apart.",
            Fixes = Fixes(
                ("call optimizer.ZeroGrad() (or model.ZeroGrad()) before each loss.Backward()", "each step then uses only its own gradient"),
                ("if summing over micro-batches is intended, call ZeroGrad after every optimizer.Step() and divide the loss by the number of micro-batches",
                    "the accumulation then stops at the step")),
        };
    }

    private Finding Observed(RunHistory run, StepRecord step)
    {
        int total = run.Setup?.Parameters.Count ?? 0;
        bool unwell = Unwell(run);
        return new Finding
        {
            Kind = Kind, Severity = unwell ? Severity.Error : Severity.Warning,
            Title = $"gradients accumulate across steps: {step.GradientsCarriedOver}{(total > 0 ? $" of {total}" : "")} parameters' gradients still hold the previous steps' (ZeroGrad is never called)",
            FirstStep = step.Step - CarriedSteps + 1, LastStep = step.Step, Confidence = 1,
            Evidence =
            [
                new Evidence("parameters whose gradient was added to one an optimiser step had already used", step.GradientsCarriedOver, 1, "observed in the engine's accumulation (DOCTOR.md)"),
                new Evidence("consecutive steps it happened on", _carriedRun, CarriedSteps, "persistence: a loop's pattern, not one odd step (DOCTOR.md)"),
                new Evidence($"gradient norm now / at {run.FirstStepName}", run.First is { GlobalGradNorm: > 0 } first ? run.GradNorm[0] / first.GlobalGradNorm : double.NaN, double.NaN, "a sum grows with the steps it holds"),
                run.SymptomEvidence(),
            ],
            Explanation = "Gradients add up into each parameter's .Grad until they are cleared. ZeroGrad was not called between two optimiser " +
                          "steps, so every step's gradient is the sum of all the gradients so far" +
                          (unwell ? ": it grows with the step count and the updates grow with it until training falls apart."
                              : ". This run still learns (an adaptive optimiser rescales the growing sum), but each step follows the whole history rather than the current batch, and the effective learning rate depends on how long it has run."),
            Fixes = Fixes(
                ("call optimizer.ZeroGrad() (or model.ZeroGrad()) before each loss.Backward()", "each step then uses only its own gradient"),
                ("if summing over micro-batches is intended, call ZeroGrad after every optimizer.Step() and divide the loss by the number of micro-batches",
                    "the accumulation then stops at the step")),
        };
    }

    private (double R2, double Slope, double Intercept) Fit(RunHistory run)
    {
        int n = Math.Min(window, run.GradNorm.Count);
        if (n < window) return (0, 0, 0);
        double t0 = run.Count - n + 1, sx = 0, sy = 0, sxx = 0, sxy = 0, syy = 0;
        for (int i = 0; i < n; i++)
        {
            double x = t0 + i, y = run.GradNorm[n - 1 - i];
            if (!double.IsFinite(y)) return (0, 0, 0);
            sx += x; sy += y; sxx += x * x; sxy += x * y; syy += y * y;
        }
        double vx = sxx - sx * sx / n, vy = syy - sy * sy / n, cxy = sxy - sx * sy / n;
        if (vx <= 0 || vy <= 0) return (0, 0, 0);
        double slope = cxy / vx;
        return (cxy * cxy / (vx * vy), slope, (sy - slope * sx) / n);
    }
}

/// <summary>
/// Weight decay outweighs the loss: the weights' total norm falls on at least 80% of the window's steps and by more
/// than 10% over it, while the loss is stalled or slow. The shrink per step (1 - lr * wd under SGD) gives the decay
/// that would explain it, for the fix. When the optimiser's parameter groups set different decays (recorded per parameter
/// in the setup), each decayed group is judged by the same rule on its own weights: a decay typed wrong on one group (the
/// norms', say) collapses that group while the whole model's norm, dominated by the others, hardly moves.
/// </summary>
internal sealed class RegularisationDominates(int window, double persistence) : Detector
{
    internal const double MinDrop = 0.1;
    internal const double Collapsed = 0.5;
    internal const double DominantShare = 0.5; // the decay is the larger part of the update
    internal const double InwardCosine = 0.7071; // 1/sqrt(2): the pull to zero is the larger of two orthogonal parts of the update
    private readonly Streak _falling = new(window), _dominant = new(window), _inward = new(window);
    private bool _pulled; // a window on which the updates pointed at the origin, while the weights fell by MinDrop
    private double _pulledShare;
    private RunSetup? _groupedSetup;
    private DecayGroup[] _groups = [];

    public override FindingKind Kind => FindingKind.RegularisationDominates;

    // The parameters one decay applies to (the setup's per-parameter decay, grouped by value), with their norm's history.
    private sealed class DecayGroup(double decay, string[] names, int window)
    {
        public readonly double Decay = decay;
        public readonly string[] Names = names;
        public readonly int[] At = new int[names.Length]; // each name's index in the step's parameters (checked each step)
        public double Start = double.NaN, Previous = double.NaN;
        public readonly Queue<double> Norms = new();
        public readonly Streak Falling = new(window), Dominant = new(window);
    }

    public override Finding? Check(RunHistory run, StepRecord step)
    {
        if (GroupFinding(run, step) is { } grouped) return grouped;
        var norms = run.WeightNorm;
        _falling.Push(norms.Count >= 2 && norms[0] < norms[1]);
        _inward.Push(run.Inward[0] > InwardCosine);
        // A penalty in the loss (an L2 term written by hand) pulls like decay but is no optimiser setting: seen as updates that
        // point at the origin on 80% of a window while the weights fall by a tenth over it.
        if (run.Count > window && _inward.Share >= persistence && norms.Count > window && norms[0] < (1 - MinDrop) * norms[window])
            (_pulled, _pulledShare) = (true, Math.Max(_pulledShare, _inward.Share));
        // With the optimiser's settings recorded and no weight decay, only such a pull is regularisation.
        bool noDecay = run.Setup?.Optimizer is { WeightDecay: 0 };
        if (noDecay && !_pulled) return null;
        double share = run.DecayShare[0];
        _dominant.Push(share > DominantShare);
        if (norms.Count <= window || !Unwell(run, Symptoms.Stalled | Symptoms.Slow)) return null;
        double drop = 1 - norms[0] / norms[window];
        // Falling now, or already collapsed: the weights at less than half their size where the records start (a fast decay finishes within the first window).
        double start = run.FirstWeightNorm;
        bool collapsed = norms[0] < Collapsed * start;
        // With the optimiser's settings recorded, the update itself says so: its decay part outweighs its gradient part.
        // Decoupled decay (AdamW) takes exactly lr*wd of the weights a step: if that cannot remove MinDrop over a window it
        // cannot be what stalls the loss, however small the gradient's part of the update (a saturated output passes none).
        bool bites = run.Setup?.Optimizer is not { DecoupledWeightDecay: true, WeightDecay: var wd } o
                     || 1 - Math.Pow(1 - (run.LearningRate ?? o.LearningRate) * wd, window) >= MinDrop;
        bool dominant = !noDecay && bites && share > DominantShare && _dominant.Share >= persistence;
        if (!(drop > MinDrop && _falling.Share >= persistence) && !collapsed && !dominant) return null;
        bool inLoss = noDecay || run.Setup?.Optimizer is null && _pulled;
        double perStep = collapsed && !(drop > MinDrop) ? 1 - Math.Pow(norms[0] / start, 1.0 / run.Count) : 1 - Math.Pow(norms[0] / norms[window], 1.0 / window);
        var settings = run.Setup?.Optimizer;
        string implied = settings is { WeightDecay: > 0 } known ? $" (weight decay {RunHistory.Round1(known.WeightDecay)} with {known.Name})"
            : run.LearningRate is { } lr && lr > 0 ? $"; under SGD that is a weight decay of about {RunHistory.Round1(perStep / lr)} at lr {RunHistory.Round1(lr)}" : "";
        // The decay that would make its part a tenth of the gradient's (share 1/11), from the current one and its share.
        string suggestion = settings is { WeightDecay: > 0 } s && share is > 0 and < 1 ? RunHistory.Round1(s.WeightDecay * (1 - share) / share / 10)
            : run.LearningRate is { } lr2 && lr2 > 0 ? RunHistory.Round1(perStep / lr2 / 100) : "a hundredth of the current one";
        return new Finding
        {
            Kind = Kind, Severity = Severity.Warning,
            Title = perStep > 0 ? $"regularisation dominates: the weights shrink by {perStep:P2} a step while the loss stalls"
                : $"regularisation dominates: weight decay is {share:P0} of each update while the loss stalls",
            FirstStep = step.Step, LastStep = step.Step, Confidence = Confidence(_falling.Share, true),
            Evidence =
            [
                new Evidence($"fall of the weights' total norm over the last {window} steps", drop, MinDrop, "derivation (DOCTOR.md)"),
                new Evidence($"weights' total norm / at {run.FirstStepName}", norms[0] / start, Collapsed, "derivation (DOCTOR.md)"),
                new Evidence("share of the window's steps on which it fell", _falling.Share, persistence, "persistence (DOCTOR.md)"),
                new Evidence("weight decay's part of the update: wd|W| / (wd|W| + |g|) (AdamW: lr wd|W| / |update|)", share, DominantShare, "derivation: the decay is the larger part (DOCTOR.md)"),
                new Evidence("share of the window's updates pointing at the origin (fall of |W| / |update| above 1/sqrt(2)), at its highest", _pulledShare, persistence, "derivation: the pull to zero is the larger part (DOCTOR.md)"),
                run.SymptomEvidence(),
            ],
            Explanation = inLoss
                ? "Something pulls every weight towards zero each step, and the optimiser has no weight decay: a penalty in the loss (an " +
                  $"L2 term) does. Its pull is stronger than the data's gradient{implied}: the weights keep shrinking and the model cannot hold on to what it learns."
                : $"Weight decay pulls every weight towards zero each step. Here that pull is stronger than the loss's gradient{implied}: " +
                  "the weights keep shrinking and the model cannot hold on to what it learns.",
            Fixes = inLoss
                ? Fixes(
                    ("check the penalty added to the loss: its coefficient, and that it is a mean over the weights rather than a sum (a sum grows with the model's size)",
                        "the penalty then only trims weights the data does not need"),
                    ($"or drop it and use the optimiser's weight decay, about {suggestion}", "the doctor can then weigh it against the gradient"))
                : Fixes(
                ($"lower the weight decay to {suggestion} (1e-4 to 5e-4 is usual for SGD; AdamW 1e-2)", "the penalty then only trims weights the loss does not need"),
                ("with Adam, use AdamW (decoupled weight decay)", "Adam's L2 penalty is rescaled per parameter and can dominate small gradients")),
        };
    }

    // Each decayed group judged as the whole model is (falling by MinDrop over the window on most steps, collapsed below
    // Collapsed of its start, or its decay the larger part of its update on most steps), when the groups' decays differ.
    private Finding? GroupFinding(RunHistory run, StepRecord step)
    {
        if (run.Setup is not { } setup) return null;
        if (!ReferenceEquals(setup, _groupedSetup))
        {
            _groupedSetup = setup;
            var decays = setup.Parameters.Where(p => p.WeightDecay is not null).ToArray();
            _groups = decays.Select(p => p.WeightDecay!.Value).Distinct().Count() < 2 ? []
                : [.. decays.Where(p => p.WeightDecay > 0).GroupBy(p => p.WeightDecay!.Value).Select(g => new DecayGroup(g.Key, [.. g.Select(p => p.Name)], window))];
        }
        if (_groups.Length == 0) return null;
        Finding? finding = null;
        foreach (var g in _groups)
        {
            double weightSq = 0, gradSq = 0, updateSq = 0;
            bool updates = true, measured = true;
            for (int k = 0; k < g.Names.Length && measured; k++)
            {
                if ((uint)g.At[k] >= (uint)step.Parameters.Count || step.Parameters[g.At[k]].Name != g.Names[k])
                {
                    g.At[k] = IndexOf(step.Parameters, g.Names[k]);
                    measured = g.At[k] >= 0;
                    if (!measured) break;
                }
                var p = step.Parameters[g.At[k]];
                weightSq += p.ParamNorm * p.ParamNorm;
                if (p.Gradient is { } grad) gradSq += grad.L2Norm * grad.L2Norm;
                if (p.UpdateNorm is { } u) updateSq += u * u; else updates = false;
            }
            if (!measured) continue; // a parameter this step does not report: the group is not judged on it
            double norm = Math.Sqrt(weightSq);
            if (double.IsNaN(g.Start)) g.Start = norm;
            double before = g.Norms.Count > window ? g.Norms.Dequeue() : double.NaN;
            g.Falling.Push(norm < g.Previous);
            g.Norms.Enqueue(norm);
            g.Previous = norm;
            // The decay's part of the group's update, as RunHistory's DecayShare for the whole model.
            double share = setup.Optimizer is { DecoupledWeightDecay: true }
                ? updates && updateSq > 0 ? Math.Min(1, (run.LearningRate ?? 0) * g.Decay * norm / Math.Sqrt(updateSq)) : double.NaN
                : g.Decay * norm / ((g.Decay * norm) + Math.Sqrt(gradSq));
            g.Dominant.Push(share > DominantShare);
            if (finding is not null || run.Count <= window || !(g.Start > 0) || !Unwell(run, Symptoms.Stalled | Symptoms.Slow)) continue;
            double drop = double.IsFinite(before) && before > 0 ? 1 - norm / before : 0;
            bool collapsed = norm < Collapsed * g.Start;
            bool dominant = g.Dominant.Share >= persistence;
            if (!(drop > MinDrop && g.Falling.Share >= persistence) && !collapsed && !dominant) continue;
            string which = g.Names.Length <= 3 ? string.Join(", ", g.Names) : $"{string.Join(", ", g.Names.Take(3))} and {g.Names.Length - 3} more";
            string suggestion = share is > 0 and < 1 ? RunHistory.Round1(g.Decay * (1 - share) / share / 10) : RunHistory.Round1(g.Decay / 100);
            finding = new Finding
            {
                Kind = Kind, Severity = Severity.Warning,
                Title = $"regularisation dominates in one parameter group: weight decay {RunHistory.Round1(g.Decay)} has shrunk {which} to {norm / g.Start:P0} of their start",
                Layers = [.. g.Names.Select(GradientMonitor.LayerOf).Distinct()],
                FirstStep = step.Step, LastStep = step.Step, Confidence = Confidence(Math.Max(g.Falling.Share, g.Dominant.Share), true),
                Evidence =
                [
                    new Evidence($"norm of the group's weights (weight decay {RunHistory.Round1(g.Decay)}) / at the first step", norm / g.Start, Collapsed, "derivation (DOCTOR.md)"),
                    new Evidence($"fall of the group's norm over the last {window} steps", drop, MinDrop, "derivation (DOCTOR.md)"),
                    new Evidence("weight decay's part of the group's update: wd|W| / (wd|W| + |g|) (AdamW: lr wd|W| / |update|)", share, DominantShare, "derivation: the decay is the larger part (DOCTOR.md)"),
                    new Evidence("share of the window's steps on which it was the larger part", g.Dominant.Share, persistence, "persistence (DOCTOR.md)"),
                    run.SymptomEvidence(),
                ],
                Explanation = $"The optimiser's parameter groups set different weight decays, and the one on {which} ({RunHistory.Round1(g.Decay)}) pulls " +
                              "those weights towards zero harder than the loss's gradient holds them: they have shrunk far below where they started while the " +
                              "loss stalls, though the model's other weights, and so its total norm, hardly moved.",
                Fixes = Fixes(
                    ($"lower that group's weight_decay to {suggestion}, or to 0 (norm layers' scales and biases usually get none)", "the decay then only trims what the loss does not need"),
                    ("check the group's options where the optimiser is built: a decay meant for another group, or one mistyped by powers of ten",
                        "one group's decay is rarely meant to hold its weights far below where the others' leaves theirs")),
            };
        }
        return finding;
    }

    private static int IndexOf(IReadOnlyList<ParameterStats> parameters, string name)
    {
        for (int i = 0; i < parameters.Count; i++)
            if (parameters[i].Name == name) return i;
        return -1;
    }
}
