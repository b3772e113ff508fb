using System.Text.Json.Nodes;

namespace GradFlow.Optim;

/// <summary>Whether <see cref="ReduceLROnPlateau"/> watches a metric that should fall (loss) or rise (accuracy).</summary>
public enum PlateauMode
{
    /// <summary>Lower is better.</summary>
    Min,
    /// <summary>Higher is better.</summary>
    Max,
}

/// <summary>Whether the improvement threshold is relative to the best value or absolute.</summary>
public enum ThresholdMode
{
    /// <summary>Better means beyond best·(1 ∓ threshold).</summary>
    Rel,
    /// <summary>Better means beyond best ∓ threshold.</summary>
    Abs,
}

/// <summary>
/// Cuts every group's rate by <c>factor</c> when a metric has not improved for more than <c>patience</c>
/// epochs, then waits <c>cooldown</c> epochs (torch.optim.lr_scheduler.ReduceLROnPlateau, 1.13).
/// </summary>
public sealed class ReduceLROnPlateau : ILRScheduler
{
    private readonly Optimizer _optimizer;
    private readonly PlateauMode _mode;
    private readonly ThresholdMode _thresholdMode;
    private readonly double _factor, _threshold, _eps;
    private readonly int _patience, _cooldown;
    private readonly double[] _minLrs;
    private double[] _lastLr;

    /// <summary>A plateau detector over <paramref name="optimizer"/>'s groups; <paramref name="minLr"/> bounds every group.</summary>
    public ReduceLROnPlateau(Optimizer optimizer, PlateauMode mode = PlateauMode.Min, double factor = 0.1, int patience = 10,
        double threshold = 1e-4, ThresholdMode thresholdMode = ThresholdMode.Rel, int cooldown = 0, double minLr = 0, double eps = 1e-8)
        : this(optimizer, Enumerable.Repeat(minLr, optimizer?.ParamGroups.Count ?? 0).ToArray(), mode, factor, patience, threshold, thresholdMode, cooldown, eps) { }

    /// <summary>A plateau detector with a minimum rate per group.</summary>
    public ReduceLROnPlateau(Optimizer optimizer, double[] minLrs, PlateauMode mode = PlateauMode.Min, double factor = 0.1, int patience = 10,
        double threshold = 1e-4, ThresholdMode thresholdMode = ThresholdMode.Rel, int cooldown = 0, double eps = 1e-8)
    {
        Guard.NotNull(optimizer, "ReduceLROnPlateau", nameof(optimizer));
        Guard.NotNull(minLrs, "ReduceLROnPlateau", nameof(minLrs));
        if (!(factor < 1)) Guard.ThrowArg(nameof(ReduceLROnPlateau), nameof(factor), $"factor must be < 1, got {factor}.");
        if (minLrs.Length != optimizer.ParamGroups.Count)
            Guard.ThrowArg(nameof(ReduceLROnPlateau), nameof(minLrs), $"expected {optimizer.ParamGroups.Count} min_lrs, got {minLrs.Length}.");
        _optimizer = optimizer;
        (_mode, _factor, _patience, _threshold, _thresholdMode, _cooldown, _eps) = (mode, factor, patience, threshold, thresholdMode, cooldown, eps);
        _minLrs = (double[])minLrs.Clone();
        Best = mode == PlateauMode.Min ? double.PositiveInfinity : double.NegativeInfinity;
        _lastLr = optimizer.ParamGroups.Select(g => g.Lr).ToArray();
    }

    /// <summary>The best metric value seen.</summary>
    public double Best { get; private set; }

    /// <summary>Epochs since the last improvement (reset in cooldown and after a cut).</summary>
    public int NumBadEpochs { get; private set; }

    /// <summary>Epochs of cooldown left.</summary>
    public int CooldownCounter { get; private set; }

    /// <summary>How many times <see cref="Step"/> has run.</summary>
    public int LastEpoch { get; private set; }

    /// <inheritdoc />
    public IReadOnlyList<double> LastLr => _lastLr;

    /// <summary>Records one epoch's metric and cuts the rates if it has plateaued.</summary>
    public void Step(double metric)
    {
        LastEpoch++;
        if (IsBetter(metric, Best))
        {
            Best = metric;
            NumBadEpochs = 0;
        }
        else
        {
            NumBadEpochs++;
        }
        if (CooldownCounter > 0)
        {
            CooldownCounter--;
            NumBadEpochs = 0; // bad epochs in cooldown do not count
        }
        if (NumBadEpochs > _patience)
        {
            ReduceLr();
            CooldownCounter = _cooldown;
            NumBadEpochs = 0;
        }
        _lastLr = _optimizer.ParamGroups.Select(g => g.Lr).ToArray();
    }

    private void ReduceLr()
    {
        var groups = _optimizer.ParamGroups;
        for (int i = 0; i < groups.Count; i++)
        {
            double old = groups[i].Lr;
            double next = Math.Max(old * _factor, _minLrs[i]);
            if (old - next > _eps) groups[i].Lr = next; // changes smaller than eps are ignored
        }
    }

    private bool IsBetter(double a, double best) => (_mode, _thresholdMode) switch
    {
        (PlateauMode.Min, ThresholdMode.Rel) => a < best * (1.0 - _threshold),
        (PlateauMode.Min, ThresholdMode.Abs) => a < best - _threshold,
        (PlateauMode.Max, ThresholdMode.Rel) => a > best * (_threshold + 1.0),
        _ => a > best + _threshold,
    };

    /// <inheritdoc />
    public JsonObject StateDict() => new()
    {
        ["type"] = nameof(ReduceLROnPlateau),
        ["best"] = StateJson.Number(Best),
        ["num_bad_epochs"] = NumBadEpochs,
        ["cooldown_counter"] = CooldownCounter,
        ["last_epoch"] = LastEpoch,
        ["_last_lr"] = StateJson.DoubleArray(_lastLr),
    };

    /// <inheritdoc />
    public void LoadStateDict(JsonObject state)
    {
        Guard.NotNull(state, "ReduceLROnPlateau.LoadStateDict", nameof(state));
        string type = StateJson.String(state["type"], "type");
        if (type != nameof(ReduceLROnPlateau)) throw new InvalidDataException($"{nameof(ReduceLROnPlateau)}.LoadStateDict: the state is from a {type}.");
        var lastLr = StateJson.Doubles(state, "_last_lr");
        if (lastLr.Length != _optimizer.ParamGroups.Count)
            throw new InvalidDataException($"{nameof(ReduceLROnPlateau)}.LoadStateDict: the state has {lastLr.Length} groups, the optimiser {_optimizer.ParamGroups.Count}.");
        Best = StateJson.Double(state["best"], "best");
        NumBadEpochs = StateJson.Int(state["num_bad_epochs"], "num_bad_epochs");
        CooldownCounter = StateJson.Int(state["cooldown_counter"], "cooldown_counter");
        LastEpoch = StateJson.Int(state["last_epoch"], "last_epoch");
        _lastLr = lastLr;
    }
}
