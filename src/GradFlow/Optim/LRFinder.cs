namespace GradFlow.Optim;

/// <summary>The curve an <see cref="LRFinder"/> sweep measured, and the rate it suggests.</summary>
/// <param name="Lrs">The learning rate of each step taken, rising exponentially.</param>
/// <param name="Losses">The bias-corrected exponentially smoothed loss at each step (plot against <paramref name="Lrs"/> on a log axis).</param>
/// <param name="RawLosses">The loss each step's closure returned.</param>
/// <param name="SuggestedLr">The rate where the smoothed loss falls fastest against log(lr), or NaN if the curve is too short.</param>
/// <param name="Diverged">Whether the sweep stopped early because the loss blew up.</param>
public sealed record LRFinderResult(IReadOnlyList<double> Lrs, IReadOnlyList<double> Losses, IReadOnlyList<double> RawLosses, double SuggestedLr, bool Diverged);

/// <summary>
/// The learning-rate range test (Smith 2017, "Cyclical learning rates for training neural networks", §3.3;
/// as popularised by fastai's lr_find): train for a few steps while the rate grows exponentially from
/// minLr to maxLr, smooth the loss, stop when it diverges (above 4× the best), and suggest the rate of
/// steepest descent. By default the weights and optimiser state are restored afterwards.
/// </summary>
public sealed class LRFinder
{
    private readonly Optimizer _optimizer;
    private readonly Func<double> _lossAndBackward;

    /// <summary>
    /// A finder for <paramref name="optimizer"/>. <paramref name="lossAndBackward"/> runs one training
    /// batch: zero the gradients, forward, backward, and return the loss; the finder then steps the optimiser.
    /// </summary>
    public LRFinder(Optimizer optimizer, Func<double> lossAndBackward)
    {
        _optimizer = Guard.NotNull(optimizer, "LRFinder", nameof(optimizer));
        _lossAndBackward = Guard.NotNull(lossAndBackward, "LRFinder", nameof(lossAndBackward));
    }

    /// <summary>Sweeps <paramref name="steps"/> rates from <paramref name="minLr"/> to <paramref name="maxLr"/>; every group gets the same rate.</summary>
    /// <param name="minLr">The first rate.</param>
    /// <param name="maxLr">The last rate.</param>
    /// <param name="steps">How many training steps (rates) to try.</param>
    /// <param name="smoothing">β of the loss's exponential moving average (fastai uses 0.98).</param>
    /// <param name="divergeFactor">Stop once the smoothed loss exceeds this multiple of the best one.</param>
    /// <param name="restore">Put the weights, optimiser state and rates back as they were.</param>
    public LRFinderResult Run(double minLr = 1e-7, double maxLr = 10, int steps = 100, double smoothing = 0.98, double divergeFactor = 4, bool restore = true)
    {
        if (!(minLr > 0 && maxLr > minLr)) Guard.ThrowArg(nameof(LRFinder), nameof(maxLr), $"expected 0 < minLr < maxLr, got {minLr} and {maxLr}.");
        if (steps < 2) Guard.ThrowArg(nameof(LRFinder), nameof(steps), $"needs at least 2 steps, got {steps}.");
        if (!(smoothing >= 0 && smoothing < 1)) Guard.ThrowArg(nameof(LRFinder), nameof(smoothing), $"smoothing must be in [0, 1), got {smoothing}.");
        var saved = restore ? Snapshot() : null;
        var lrs = new List<double>();
        var losses = new List<double>();
        var raw = new List<double>();
        double avg = 0, best = double.PositiveInfinity;
        bool diverged = false;
        try
        {
            for (int i = 0; i < steps; i++)
            {
                double lr = minLr * Math.Pow(maxLr / minLr, (double)i / (steps - 1));
                foreach (var g in _optimizer.ParamGroups) g.Lr = lr;
                double loss = _lossAndBackward();
                if (!double.IsFinite(loss)) { diverged = true; break; }
                avg = smoothing * avg + (1 - smoothing) * loss;
                double smoothed = avg / (1 - Math.Pow(smoothing, i + 1));
                lrs.Add(lr);
                raw.Add(loss);
                losses.Add(smoothed);
                best = Math.Min(best, smoothed);
                if (i > 0 && smoothed > divergeFactor * best) { diverged = true; break; }
                _optimizer.Step();
            }
        }
        finally
        {
            if (saved is not null) Restore(saved.Value);
        }
        return new LRFinderResult(lrs, losses, raw, Steepest(lrs, losses, diverged), diverged);
    }

    /// <summary>
    /// The rate at the most negative slope d(loss)/d(log lr), by central differences, skipping the first tenth
    /// of the curve (dominated by the smoothing's warm-up) and, after a divergence, the points past the best loss.
    /// </summary>
    private static double Steepest(List<double> lrs, List<double> losses, bool diverged)
    {
        int end = diverged ? losses.IndexOf(losses.Min()) + 1 : losses.Count;
        int start = Math.Min(end - 1, Math.Max(1, losses.Count / 10));
        if (end - start < 2 && lrs.Count >= 3) start = Math.Max(0, end - 3);
        if (end - start < 2) return double.NaN;
        double bestSlope = double.PositiveInfinity, bestLr = double.NaN;
        for (int i = start; i < end; i++)
        {
            int a = Math.Max(i - 1, 0), b = Math.Min(i + 1, losses.Count - 1);
            double slope = (losses[b] - losses[a]) / (Math.Log(lrs[b]) - Math.Log(lrs[a]));
            if (slope < bestSlope) (bestSlope, bestLr) = (slope, lrs[i]);
        }
        return bestLr;
    }

    private (Tensor[] Params, Tensor[] Values, OptimizerStateDict State)? Snapshot()
    {
        var ps = _optimizer.ParamGroups.SelectMany(g => g.Params).ToArray();
        return (ps, ps.Select(p => p.Detach().Clone()).ToArray(), _optimizer.StateDict());
    }

    private void Restore((Tensor[] Params, Tensor[] Values, OptimizerStateDict State) saved)
    {
        using (Autograd.NoGrad())
            for (int i = 0; i < saved.Params.Length; i++) saved.Params[i].CopyFrom(saved.Values[i]);
        _optimizer.LoadStateDict(saved.State);
        _optimizer.ZeroGrad();
    }
}
