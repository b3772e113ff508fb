using System.Text.Json.Nodes;

namespace GradFlow.Optim;

/// <summary>Anything that sets an optimiser's learning rates over time and can save and restore its progress.</summary>
public interface ILRScheduler
{
    /// <summary>The learning rate of each group after the last step (torch's get_last_lr()).</summary>
    IReadOnlyList<double> LastLr { get; }

    /// <summary>The scheduler's progress (counters, running values) as JSON; configuration comes from the constructor.</summary>
    JsonObject StateDict();

    /// <summary>Restores progress saved by <see cref="StateDict"/>; malformed state gives InvalidDataException.</summary>
    void LoadStateDict(JsonObject state);
}

/// <summary>
/// The base of the epoch-indexed schedules (torch.optim.lr_scheduler._LRScheduler, 1.13). Each
/// <see cref="Step"/> advances <see cref="LastEpoch"/> and writes the new rates into the optimiser's
/// groups. Rates are computed in PyTorch's chainable form (from the groups' current rates), so
/// schedules compose and match PyTorch step for step; a closed form is used when a step is given an
/// explicit epoch, as PyTorch does. The first step happens at construction: subclasses call
/// <see cref="InitialStep"/> at the end of their constructor, once their own fields are set.
/// </summary>
public abstract class LRScheduler : ILRScheduler
{
    private double[] _lastLr = [];

    /// <summary>Records the base rates: each group's "initial_lr", set from its current "lr" on a fresh start.</summary>
    protected LRScheduler(Optimizer optimizer, int lastEpoch = -1)
    {
        Guard.NotNull(optimizer, "LRScheduler", nameof(optimizer));
        Optimizer = optimizer;
        var groups = optimizer.ParamGroups;
        for (int i = 0; i < groups.Count; i++)
        {
            if (lastEpoch == -1) groups[i].SetDefault("initial_lr", groups[i].Lr);
            else if (!groups[i].Has("initial_lr"))
                Guard.ThrowArg(GetType().Name, nameof(lastEpoch), $"resuming at epoch {lastEpoch} needs 'initial_lr' in param group {i}.");
        }
        BaseLrs = groups.Select(g => g["initial_lr"]).ToArray();
        LastEpoch = lastEpoch;
    }

    /// <summary>The optimiser whose rates this schedule sets.</summary>
    public Optimizer Optimizer { get; }

    /// <summary>Each group's rate at epoch 0 ("initial_lr").</summary>
    public IReadOnlyList<double> BaseLrs { get; }

    /// <summary>The index of the last epoch stepped to (0 after construction).</summary>
    public int LastEpoch { get; protected set; }

    /// <summary>How many times <see cref="Step"/> has run, counting the one at construction.</summary>
    protected int StepCount { get; private set; }

    /// <inheritdoc />
    public IReadOnlyList<double> LastLr => _lastLr;

    /// <summary>Performs the first step; call it last in a subclass constructor.</summary>
    protected void InitialStep()
    {
        StepCount = 0;
        Step();
    }

    /// <summary>Steps back one epoch without touching the rates (SequentialLR re-runs its first schedule's initial step).</summary>
    internal void RewindOneEpoch() => LastEpoch--;

    /// <summary>torch's _initial_step(), as SequentialLR calls it on its first schedule.</summary>
    internal void RestartForSequence() => InitialStep();

    /// <summary>Advances one epoch and sets the new rates.</summary>
    public virtual void Step()
    {
        StepCount++;
        LastEpoch++;
        Apply(GetLr());
    }

    /// <summary>Jumps to <paramref name="epoch"/> using the closed form where there is one (as torch's step(epoch)).</summary>
    internal virtual void StepAt(int epoch)
    {
        StepCount++;
        LastEpoch = epoch;
        Apply(ClosedFormLr() ?? GetLr());
    }

    /// <summary>The rates for <see cref="LastEpoch"/>, from the groups' current rates (PyTorch's chainable get_lr).</summary>
    protected abstract double[] GetLr();

    /// <summary>The rates for <see cref="LastEpoch"/> from <see cref="BaseLrs"/> alone, or null if the schedule has no closed form.</summary>
    protected virtual double[]? ClosedFormLr() => null;

    /// <summary>Writes rates into the groups and records them as <see cref="LastLr"/>.</summary>
    protected void Apply(double[] lrs)
    {
        var groups = Optimizer.ParamGroups;
        for (int i = 0; i < groups.Count; i++) groups[i].Lr = lrs[i];
        _lastLr = groups.Select(g => g.Lr).ToArray();
    }

    /// <summary>The groups' current rates.</summary>
    protected double[] GroupLrs() => Optimizer.ParamGroups.Select(g => g.Lr).ToArray();

    /// <inheritdoc />
    public JsonObject StateDict()
    {
        var o = new JsonObject
        {
            ["type"] = GetType().Name,
            ["last_epoch"] = LastEpoch,
            ["_step_count"] = StepCount,
            ["base_lrs"] = StateJson.DoubleArray(BaseLrs),
            ["_last_lr"] = StateJson.DoubleArray(_lastLr),
        };
        WriteState(o);
        return o;
    }

    /// <inheritdoc />
    public void LoadStateDict(JsonObject state)
    {
        Guard.NotNull(state, "LRScheduler.LoadStateDict", nameof(state));
        string type = StateJson.String(state["type"], "type");
        if (type != GetType().Name) throw new InvalidDataException($"{GetType().Name}.LoadStateDict: the state is from a {type}.");
        var baseLrs = StateJson.Doubles(state, "base_lrs");
        var lastLr = StateJson.Doubles(state, "_last_lr");
        if (baseLrs.Length != BaseLrs.Count || lastLr.Length != BaseLrs.Count)
            throw new InvalidDataException($"{GetType().Name}.LoadStateDict: the state has {baseLrs.Length} groups, the optimiser {BaseLrs.Count}.");
        LastEpoch = StateJson.Int(state["last_epoch"], "last_epoch");
        StepCount = StateJson.Int(state["_step_count"], "_step_count");
        baseLrs.CopyTo((double[])BaseLrs);
        _lastLr = lastLr;
        ReadState(state);
    }

    /// <summary>Adds a subclass's progress fields to its state.</summary>
    protected virtual void WriteState(JsonObject state) { }

    /// <summary>Reads back what <see cref="WriteState"/> wrote.</summary>
    protected virtual void ReadState(JsonObject state) { }
}
