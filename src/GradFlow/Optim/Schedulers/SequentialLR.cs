using System.Text.Json.Nodes;

namespace GradFlow.Optim;

/// <summary>
/// Runs schedules one after another, switching at milestone epochs (torch.optim.lr_scheduler.SequentialLR,
/// 1.13): e.g. a <see cref="LinearLR"/> warm-up for 5 epochs, then <see cref="CosineAnnealingLR"/>. At a
/// milestone the next schedule restarts from epoch 0 in its closed form.
/// </summary>
public sealed class SequentialLR : ILRScheduler
{
    private readonly LRScheduler[] _schedulers;
    private readonly int[] _milestones;
    private double[] _lastLr;

    /// <summary>Chains <paramref name="schedulers"/> (all over <paramref name="optimizer"/>) at <paramref name="milestones"/> (one fewer).</summary>
    public SequentialLR(Optimizer optimizer, IReadOnlyList<LRScheduler> schedulers, IReadOnlyList<int> milestones, int lastEpoch = -1)
    {
        Guard.NotNull(optimizer, "SequentialLR", nameof(optimizer));
        Guard.NotNull(schedulers, "SequentialLR", nameof(schedulers));
        Guard.NotNull(milestones, "SequentialLR", nameof(milestones));
        if (schedulers.Count == 0) Guard.ThrowArg(nameof(SequentialLR), nameof(schedulers), "needs at least one scheduler.");
        for (int i = 0; i < schedulers.Count; i++)
            if (!ReferenceEquals(schedulers[i].Optimizer, optimizer))
                Guard.ThrowArg(nameof(SequentialLR), nameof(schedulers), $"scheduler {i} belongs to a different optimizer.");
        if (milestones.Count != schedulers.Count - 1)
            Guard.ThrowArg(nameof(SequentialLR), nameof(milestones), $"expected {schedulers.Count - 1} milestones for {schedulers.Count} schedulers, got {milestones.Count}.");
        _schedulers = schedulers.ToArray();
        _milestones = milestones.ToArray();
        LastEpoch = lastEpoch + 1;
        // Undo what constructing the inner schedules did, then start the first one afresh.
        foreach (var g in optimizer.ParamGroups) g.Lr = g["initial_lr"];
        foreach (var s in _schedulers) s.RewindOneEpoch();
        _schedulers[0].RestartForSequence();
        _lastLr = [.. _schedulers[0].LastLr];
    }

    /// <summary>The epoch index of the sequence.</summary>
    public int LastEpoch { get; private set; }

    /// <inheritdoc />
    public IReadOnlyList<double> LastLr => _lastLr;

    /// <summary>Advances one epoch in the schedule in force.</summary>
    public void Step()
    {
        LastEpoch++;
        int idx = _milestones.Count(m => m <= LastEpoch); // bisect_right
        var s = _schedulers[idx];
        if (idx > 0 && _milestones[idx - 1] == LastEpoch) s.StepAt(0);
        else s.Step();
        _lastLr = [.. s.LastLr];
    }

    /// <inheritdoc />
    public JsonObject StateDict() => new()
    {
        ["type"] = nameof(SequentialLR),
        ["last_epoch"] = LastEpoch,
        ["_last_lr"] = StateJson.DoubleArray(_lastLr),
        ["_schedulers"] = new JsonArray(_schedulers.Select(s => (JsonNode?)s.StateDict()).ToArray()),
    };

    /// <inheritdoc />
    public void LoadStateDict(JsonObject state)
    {
        Guard.NotNull(state, "SequentialLR.LoadStateDict", nameof(state));
        if (StateJson.String(state["type"], "type") != nameof(SequentialLR))
            throw new InvalidDataException($"{nameof(SequentialLR)}.LoadStateDict: the state is from another scheduler.");
        var inner = StateJson.Array(state, "_schedulers");
        if (inner.Count != _schedulers.Length)
            throw new InvalidDataException($"{nameof(SequentialLR)}.LoadStateDict: the state has {inner.Count} schedulers, this sequence {_schedulers.Length}.");
        for (int i = 0; i < _schedulers.Length; i++) _schedulers[i].LoadStateDict(StateJson.Object(inner[i], $"_schedulers[{i}]"));
        LastEpoch = StateJson.Int(state["last_epoch"], "last_epoch");
        _lastLr = StateJson.Doubles(state, "_last_lr");
    }
}
