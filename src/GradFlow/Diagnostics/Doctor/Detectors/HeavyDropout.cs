namespace GradFlow.Diagnostics;

/// <summary>
/// Whether heavy dropout explains a stalled run. Heavy: a dropout-type module of the recorded setup
/// (<see cref="RunSetup.Dropouts"/>) in training mode with a rate above 0.5, the top of Srivastava et al.'s (JMLR 2014)
/// recommended range (keep 0.5-0.8 of hidden units, 0.8 of inputs), where Wager, Wang &amp; Liang's (NeurIPS 2013)
/// L2-like penalty weight p/(1-p) passes 1. Such a mask zeroes a unit's gradient over a whole batch whenever it dropped
/// the unit from every sample the unit was active on, so gradients that go to zero and ReLU units that die in such a run
/// are the dropout's doing when they did not start that way (a layer born dead, a gradient zero at the first step, are the
/// initialisation's) and no update so far moved a layer's weights by more than 1e-1 of their size (DeepDiagnosis' upper
/// bound, the one <see cref="LearningRateTooHigh"/> uses for a rate that killed ReLUs, so the two rules never claim the
/// same dead units). DeadRelu and ZeroGradient then stand aside and NotLearning names the dropout.
/// </summary>
internal static class HeavyDropout
{
    internal const double Rate = 0.5;

    /// <summary>True when the recorded setup has a heavy dropout in training mode (no allocation: read on every step).</summary>
    public static bool Present(RunHistory run)
    {
        if (run.Setup?.Dropouts is not { } dropouts) return false;
        for (int i = 0; i < dropouts.Count; i++)
            if (Heavy(dropouts[i])) return true;
        return false;
    }

    /// <summary>The heavy dropouts of the recorded setup, in module order.</summary>
    public static List<DropoutLayer> Of(RunHistory run) => run.Setup?.Dropouts?.Where(Heavy).ToList() ?? [];

    /// <summary>True when heavy dropout, not the initialisation or the steps, explains these dead ReLU layers (none: a zero gradient without them).</summary>
    public static bool Explains(RunHistory run, IReadOnlyList<string> dead) =>
        Present(run) && !(run.PeakUpdateRatio > LearningRateTooHigh.OscillationRatio) && dead.All(layer => AliveAtFirst(run, layer));

    private static bool Heavy(DropoutLayer d) => d.Training && d.P > Rate;

    // Below the dead share at the first recorded step (always one with details); a layer not measured then cannot be shown born dead.
    private static bool AliveAtFirst(RunHistory run, string layer)
    {
        if (run.First is not { } first) return true;
        foreach (var a in first.Activations)
            if (a.Layer == layer && a.Op == OpNames.Relu) return (a.DeadFraction ?? 0) < DeadRelu.DeadThreshold;
        return true;
    }
}
