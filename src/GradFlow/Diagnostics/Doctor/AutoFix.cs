using GradFlow.NN;
using GradFlow.Optim;

namespace GradFlow.Diagnostics;

/// <summary>What the doctor may change by itself (opt-in, <see cref="Doctor.EnableAutoFix"/>).</summary>
public sealed record AutoFixOptions
{
    /// <summary>Keep an in-memory copy of the model and optimiser every this many healthy steps (the roll-back target).</summary>
    public int SnapshotEvery { get; init; } = 10;

    /// <summary>The step by which the learning rate is lowered (on a divergence, on a fault that comes back, or until a clipped step is small enough).</summary>
    public double LrFactor { get; init; } = 0.1;

    /// <summary>At most this many actions in a run (a run that needs more needs a person).</summary>
    public int MaxActions { get; init; } = 6;

    internal void Validate()
    {
        if (SnapshotEvery < 1) throw new ArgumentException($"{nameof(AutoFixOptions)}: SnapshotEvery must be at least 1, got {SnapshotEvery}.", nameof(SnapshotEvery));
        if (!(LrFactor > 0 && LrFactor < 1)) throw new ArgumentException($"{nameof(AutoFixOptions)}: LrFactor must be in (0, 1), got {LrFactor}.", nameof(LrFactor));
        if (MaxActions < 1) throw new ArgumentException($"{nameof(AutoFixOptions)}: MaxActions must be at least 1, got {MaxActions}.", nameof(MaxActions));
    }
}

/// <summary>
/// The safe remedies, applied after the step the doctor judged: a non-finite step, an explosion or a divergence (at most
/// once a half window) rolls the model and optimiser back to the last healthy in-memory copy. After a NaN or an
/// explosion clipping goes on, at the median norm before the explosion and at most 1.0 (the training loop applies it
/// with <see cref="Doctor.ClipGradients"/> before each optimiser step), and the rate is lowered only as far as a clipped
/// step needs; a divergence alone, or a fault that comes back with the clip on, lowers the rate a step. Each action is
/// a finding of its own.
/// </summary>
internal sealed class AutoFix(Module model, Optimizer optimizer, AutoFixOptions options)
{
    private (OrderedDictionary<string, Tensor> Model, OptimizerStateDict Optimizer, long Step)? _snapshot;
    private long _lastAction = long.MinValue / 2;
    private int _actions;
    private string _clipSource = "";

    public double? ClipNorm { get; private set; }

    public void Snapshot(long step)
    {
        var copy = new OrderedDictionary<string, Tensor>();
        using (Autograd.NoGrad())
            foreach (var (name, t) in model.StateDict()) copy[name] = t.Clone();
        _snapshot = (copy, optimizer.StateDict(), step);
    }

    /// <summary>Acts on a judged step; returns the findings recording what it did.</summary>
    public Finding? After(RunHistory run, StepRecord step, bool exploding, bool lrTooHigh)
    {
        bool nonFinite = step.Loss is { } l && !double.IsFinite(l) || !double.IsFinite(step.GlobalGradNorm);
        if (_actions >= options.MaxActions) return null;
        // A divergence may already have ruined the weights (dead units, overflowed layers): go back to the last good state
        // too, not only lower the rate from here.
        bool diverged = (exploding || lrTooHigh) && step.Step - _lastAction >= run.Window / 2;
        if ((nonFinite || diverged) && _snapshot is { } snap)
        {
            model.LoadStateDict(snap.Model);
            var lrs = optimizer.ParamGroups.Select(g => g.Lr).ToArray();
            optimizer.LoadStateDict(snap.Optimizer);
            for (int i = 0; i < lrs.Length; i++) optimizer.ParamGroups[i].Lr = lrs[i]; // the rate in force, not the snapshot's
            bool clipWasOn = ClipNorm is not null;
            if (nonFinite || exploding) SetClip(run);
            // The first clip bounds the step, so the rate is lowered only as far as that bound needs; a fault that comes
            // back with the clip on, or a divergence without an explosion, is the rate's, and lowers it a step.
            string lrText = ClipNorm is { } clip && !clipWasOn ? BoundStep(clip) : $"learning rate lowered to {RunHistory.Round1(ScaleLr())}";
            string why = nonFinite ? "the step produced NaN/Inf" : exploding ? "the gradient norm exploded" : "the loss diverged with large updates";
            return Act(step, $"rolled back to the state of step {snap.Step}, {lrText}{ClipText()}",
                $"{why}; the weights were restored from the last healthy in-memory copy");
        }
        // Healthy: finite, not diverging, and the loss not above where it started (a run can be dying before it diverges; after
        // a resume, the divergence symptom's start, RunHistory.StartLoss, as one batch's loss may exceed a trained network's).
        bool healthy = !nonFinite && (run.Symptoms & Symptoms.Diverging) == 0 && !exploding && !lrTooHigh
                       && step.Loss is { } loss && !(loss > run.StartLoss);
        if (healthy && step.Step % options.SnapshotEvery == 0) Snapshot(step.Step);
        return null;
    }

    private string ClipText() => ClipNorm is { } c ? $", gradients clipped at norm {RunHistory.Round1(c)} ({_clipSource})" : "";

    private double ScaleLr()
    {
        foreach (var g in optimizer.ParamGroups) g.Lr *= options.LrFactor;
        return optimizer.ParamGroups[0].Lr;
    }

    /// <summary>
    /// Lowers the rate (by <see cref="AutoFixOptions.LrFactor"/> steps) until the largest step the clip lets through,
    /// lr x clip, is at most <see cref="LearningRateTooHigh.RatioThreshold"/> of the weights' norm: the update/weight
    /// ratio the learning-rate detector calls too high. A rate that already meets it is kept, since clipping is the
    /// remedy for an exploding gradient (Pascanu et al. 2013) and a lower rate would only slow the repaired run.
    /// </summary>
    private string BoundStep(double clip)
    {
        double weights = WeightNorm();
        double before = optimizer.ParamGroups[0].Lr;
        foreach (var g in optimizer.ParamGroups)
            for (int i = 0; i < 20 && g.Lr * clip > LearningRateTooHigh.RatioThreshold * weights; i++) g.Lr *= options.LrFactor;
        double lr = optimizer.ParamGroups[0].Lr;
        string bound = $"a clipped step, lr x {RunHistory.Round1(clip)}, is at most {LearningRateTooHigh.RatioThreshold:0.##} of the weights' norm {weights.ToString("G3", System.Globalization.CultureInfo.InvariantCulture)}";
        return lr < before ? $"learning rate lowered to {RunHistory.Round1(lr)} so that {bound}" : $"learning rate kept at {RunHistory.Round1(lr)}: {bound}";
    }

    private double WeightNorm()
    {
        double sum = 0;
        using (Autograd.NoGrad())
            foreach (var p in model.Parameters())
            {
                double n = p.Norm().Item();
                sum += n * n;
            }
        return Math.Sqrt(sum);
    }

    private void SetClip(RunHistory run)
    {
        if (ClipNorm is not null) return;
        double healthy = PreExplosionMedian(run);
        bool own = healthy < DefaultClipNorm;
        ClipNorm = own ? healthy : DefaultClipNorm;
        _clipSource = own ? "the median norm before the explosion" : double.IsFinite(healthy)
            ? $"the common max_norm; the median norm before the explosion, {RunHistory.Round1(healthy)}, is above it"
            : "the common max_norm; the norms exploded from the first recorded steps";
    }

    /// <summary>
    /// The clip when the run's own healthy norms do not give a smaller one: the max_norm of common PyTorch recipes (the
    /// Hugging Face Trainer's max_grad_norm default).
    /// </summary>
    public const double DefaultClipNorm = 1.0;

    /// <summary>
    /// The median of the first window's norms before the explosion began: up to the first non-finite norm or the first
    /// tenfold jump over the median of those before it (the spike factor of the explosion detector). NaN when fewer than
    /// 5 steps (the growth detector's baseline) came first: a run that explodes from its start has no healthy norm.
    /// </summary>
    internal static double PreExplosionMedian(RunHistory run)
    {
        var stable = new List<double>(run.BaselineCount);
        for (int i = 0; i < run.BaselineCount; i++)
        {
            double norm = run.BaselineNorms[i];
            if (!double.IsFinite(norm) || stable.Count > 0 && norm > ExplodingGradients.SpikeThreshold * RunHistory.Quantile(stable, 0.5)) break;
            stable.Add(norm);
        }
        return stable.Count >= 5 ? RunHistory.Quantile(stable, 0.5) : double.NaN;
    }

    private Finding Act(StepRecord step, string action, string why)
    {
        _actions++;
        _lastAction = step.Step;
        return new Finding
        {
            Kind = FindingKind.AutoFixApplied, Severity = Severity.Info, Title = $"auto-fix at step {step.Step}: {action}",
            FirstStep = step.Step, LastStep = step.Step, Confidence = 1,
            Evidence = [new Evidence("learning rate after the action", optimizer.ParamGroups[0].Lr, double.NaN, "AutoFixOptions.LrFactor")],
            Explanation = $"The doctor changed the run by itself because {why}. Check the run's findings for the cause and make the change permanent in the training script.",
            Fixes = [new Fix(1, action, why)],
        };
    }
}
