namespace GradFlow.Diagnostics;

/// <summary>
/// Data-parallel runs only (<see cref="StepRecord.Distributed"/>): ranks whose own gradient norm, before the allreduce,
/// stays more than the divergence factor above or below the median of all ranks' for most of the window. One batch can
/// stray (a hard shard, an outlier), so the rule asks for persistence, as every gradient rule here does; a rank that
/// strays step after step trains on other data, other weights or another model, and the average hides it.
/// </summary>
internal sealed class RanksDisagree(int window, double persistence) : Detector
{
    private readonly Queue<bool> _recent = new(); // whether some rank strayed, per synchronised step of the window
    private int _held;

    public override FindingKind Kind => FindingKind.RanksDisagree;

    public override Finding? Check(RunHistory run, StepRecord step)
    {
        if (step.Distributed is not { } d) return null;
        bool now = d.DivergentRanks.Count > 0;
        _recent.Enqueue(now);
        if (now) _held++;
        if (_recent.Count > window && _recent.Dequeue()) _held--;
        double share = (double)_held / window;
        if (!now || _recent.Count < window || share < persistence) return null;

        double median = Median(d.Ranks);
        var evidence = new List<Evidence>
        {
            new("share of the window's synchronised steps with a straying rank", share, persistence, "persistence over the window (DoctorOptions.Persistence)"),
        };
        foreach (int r in d.DivergentRanks)
            evidence.Add(new Evidence($"rank {r}'s gradient norm / the median of all ranks'", d.Ranks[r].GradNorm / median, d.DivergenceFactor,
                "DistributedDataParallelOptions.DivergenceFactor: an order of magnitude, far beyond batch-to-batch noise"));
        string ranks = string.Join(", ", d.DivergentRanks);
        return new Finding
        {
            Kind = Kind, Severity = Severity.Warning,
            Title = $"rank{(d.DivergentRanks.Count > 1 ? "s" : "")} {ranks} disagree with the others' gradients",
            Layers = [], FirstStep = step.Step - window + 1, LastStep = step.Step, Confidence = Confidence(share, symptom: true),
            Evidence = evidence,
            Explanation = $"In data-parallel training every rank computes gradients on its own share of the batch and the allreduce averages them. " +
                          $"Rank{(d.DivergentRanks.Count > 1 ? "s" : "")} {ranks} keep producing gradients an order of magnitude away from the others', " +
                          "so the average is dominated (or diluted) by them: their data shard, their inputs' scaling or their copy of the model differs.",
            Fixes = Fixes(
                ($"check the data rank {d.DivergentRanks[0]} reads: its shard of the DistributedSampler, its transforms and normalisation", "the ranks share weights, so a steady gap comes from the inputs"),
                ("check that every rank builds the same model and loss (the DDP checks shapes, not the code that uses them)", "a rank with another loss scale or reduction strays by a constant factor"),
                ("run that rank alone with AnomalyMode or the monitor's per-layer flow", "it names the layer where its gradient departs")),
        };
    }

    private static double Median(IReadOnlyList<RankGradientStats> ranks)
    {
        var norms = ranks.Select(r => r.GradNorm).Order().ToArray();
        return norms.Length == 0 ? double.NaN : norms.Length % 2 == 1 ? norms[norms.Length / 2] : (norms[norms.Length / 2 - 1] + norms[norms.Length / 2]) / 2;
    }
}
