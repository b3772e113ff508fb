namespace GradFlow.Optim;

/// <summary>How <see cref="OneCycleLR"/> interpolates within a phase.</summary>
public enum AnnealStrategy
{
    /// <summary>Half a cosine from start to end.</summary>
    Cos,
    /// <summary>A straight line from start to end.</summary>
    Linear,
}

/// <summary>
/// The 1cycle policy (Smith and Topin 2018), as torch.optim.lr_scheduler.OneCycleLR: the rate rises from
/// max_lr/divFactor to max_lr over the first pctStart of the steps, then falls to initial/finalDivFactor,
/// while momentum (or Adam's beta1) cycles inversely between maxMomentum and baseMomentum. Stepped once
/// per batch. Writes "initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum" into the groups.
/// </summary>
public sealed class OneCycleLR : LRScheduler
{
    private readonly int _totalSteps;
    private readonly AnnealStrategy _anneal;
    private readonly bool _cycleMomentum;
    private readonly string _momentumKey = "momentum";
    private readonly (double EndStep, string StartLr, string EndLr, string StartMomentum, string EndMomentum)[] _phases;

    /// <summary>A one-cycle schedule over <paramref name="totalSteps"/> steps peaking at <paramref name="maxLr"/> in every group.</summary>
    public OneCycleLR(Optimizer optimizer, double maxLr, int totalSteps, double pctStart = 0.3, AnnealStrategy annealStrategy = AnnealStrategy.Cos,
        bool cycleMomentum = true, double baseMomentum = 0.85, double maxMomentum = 0.95, double divFactor = 25, double finalDivFactor = 1e4,
        bool threePhase = false, int lastEpoch = -1)
        : this(optimizer, Enumerable.Repeat(maxLr, optimizer?.ParamGroups.Count ?? 0).ToArray(), totalSteps, pctStart, annealStrategy,
            cycleMomentum, baseMomentum, maxMomentum, divFactor, finalDivFactor, threePhase, lastEpoch)
    { }

    /// <summary>A one-cycle schedule with a peak rate per group.</summary>
    public OneCycleLR(Optimizer optimizer, double[] maxLrs, int totalSteps, double pctStart = 0.3, AnnealStrategy annealStrategy = AnnealStrategy.Cos,
        bool cycleMomentum = true, double baseMomentum = 0.85, double maxMomentum = 0.95, double divFactor = 25, double finalDivFactor = 1e4,
        bool threePhase = false, int lastEpoch = -1)
        : base(Prepare(optimizer, maxLrs, divFactor, finalDivFactor, cycleMomentum, baseMomentum, maxMomentum, lastEpoch), lastEpoch)
    {
        if (totalSteps <= 0) Guard.ThrowArg(nameof(OneCycleLR), nameof(totalSteps), $"total steps must be positive, got {totalSteps}.");
        if (!(pctStart >= 0 && pctStart <= 1)) Guard.ThrowArg(nameof(OneCycleLR), nameof(pctStart), $"pctStart must be in [0, 1], got {pctStart}.");
        _totalSteps = totalSteps;
        _anneal = annealStrategy;
        _cycleMomentum = cycleMomentum;
        if (cycleMomentum && !optimizer.Defaults.ContainsKey("momentum")) _momentumKey = "beta1";
        _phases = threePhase
            ?
            [
                (pctStart * totalSteps - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (2 * pctStart * totalSteps - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                (totalSteps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
            :
            [
                (pctStart * totalSteps - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (totalSteps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ];
        InitialStep();
    }

    private static Optimizer Prepare(Optimizer optimizer, double[] maxLrs, double divFactor, double finalDivFactor,
        bool cycleMomentum, double baseMomentum, double maxMomentum, int lastEpoch)
    {
        Guard.NotNull(optimizer, "OneCycleLR", nameof(optimizer));
        Guard.NotNull(maxLrs, "OneCycleLR", nameof(maxLrs));
        var groups = optimizer.ParamGroups;
        if (maxLrs.Length != groups.Count)
            Guard.ThrowArg(nameof(OneCycleLR), nameof(maxLrs), $"expected {groups.Count} values of max_lr (one per group), got {maxLrs.Length}.");
        bool beta1 = !optimizer.Defaults.ContainsKey("momentum");
        if (cycleMomentum && beta1 && !optimizer.Defaults.ContainsKey("beta1"))
            Guard.ThrowArg(nameof(OneCycleLR), nameof(cycleMomentum), $"{optimizer.GetType().Name} has neither momentum nor beta1 to cycle.");
        if (lastEpoch != -1) return optimizer;
        for (int i = 0; i < groups.Count; i++)
        {
            var g = groups[i];
            g["initial_lr"] = maxLrs[i] / divFactor;
            g["max_lr"] = maxLrs[i];
            g["min_lr"] = g["initial_lr"] / finalDivFactor;
            if (!cycleMomentum) continue;
            g[beta1 ? "beta1" : "momentum"] = maxMomentum;
            g["max_momentum"] = maxMomentum;
            g["base_momentum"] = baseMomentum;
        }
        return optimizer;
    }

    private double Anneal(double start, double end, double pct) => _anneal == AnnealStrategy.Cos
        ? end + (start - end) / 2.0 * (Math.Cos(Math.PI * pct) + 1)
        : (end - start) * pct + start;

    /// <inheritdoc />
    protected override double[] GetLr()
    {
        int step = LastEpoch;
        if (step > _totalSteps)
            Guard.ThrowInvalid(nameof(OneCycleLR), $"tried to step {step + 1} times; the schedule has {_totalSteps} steps.");
        var groups = Optimizer.ParamGroups;
        var lrs = new double[groups.Count];
        for (int gi = 0; gi < groups.Count; gi++)
        {
            var g = groups[gi];
            double start = 0;
            for (int i = 0; i < _phases.Length; i++)
            {
                var ph = _phases[i];
                if (step <= ph.EndStep || i == _phases.Length - 1)
                {
                    double pct = (step - start) / (ph.EndStep - start);
                    lrs[gi] = Anneal(g[ph.StartLr], g[ph.EndLr], pct);
                    if (_cycleMomentum) g[_momentumKey] = Anneal(g[ph.StartMomentum], g[ph.EndMomentum], pct);
                    break;
                }
                start = ph.EndStep;
            }
        }
        return lrs;
    }
}
