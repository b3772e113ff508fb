namespace GradFlow.Diagnostics;

/// <summary>What a zero gradient turned out to be.</summary>
public enum ZeroGradientCause
{
    /// <summary>No curvature was measured: a saddle, a minimum or a flat region cannot be told apart from the gradient alone.</summary>
    Unclassified,
    /// <summary>The ReLU layers are dead: no unit passes a gradient.</summary>
    DeadNetwork,
    /// <summary>Negative curvature: a direction exists along which the loss falls (often a symmetric start, all weights equal).</summary>
    Saddle,
    /// <summary>No negative curvature: the weights sit at a minimum of this loss.</summary>
    Minimum,
    /// <summary>Gradient and curvature both near zero: a plateau.</summary>
    FlatRegion,
    /// <summary>The gradient is small but real (not a stationary point): steps are too short to get anywhere.</summary>
    LearningRateTooSmall,
}

/// <summary>
/// The gradient is (nearly) zero while the loss stands still: 90% or more of the gradient's elements exactly zero, or its
/// mean |g| below DeepDiagnosis' (ICSE'22) 1e-7, on most of a window, with the loss stalled or slow. Only the curvature
/// tells why (a gradient is zero at a minimum, a saddle and on a plateau alike): with a live probe
/// (<see cref="Doctor.AddStationaryProbe"/>) the doctor runs <see cref="StationaryPoint.Classify"/> once, when the
/// condition first holds; offline a curvature sample with lambda_min serves. Dead ReLU layers explain it without curvature;
/// a gradient that went to zero under heavy dropout (<see cref="HeavyDropout"/>) is left to NotLearning, which names the dropout.
/// </summary>
internal sealed class ZeroGradient(int window, double persistence) : Detector
{
    internal const double ZeroShare = 0.9;
    internal const double TinyMeanAbs = 1e-7;
    internal const double NegativeShare = 1e-3; // lambda_min below -1e-3 lambda_max counts as negative (StationaryPoint's relative tolerance)
    internal const double FlatCurvature = 1e-6; // StationaryPoint's flat tolerance
    private readonly Streak _streak = new(window);
    private StationaryPointReport? _report;
    private bool _probed;
    private List<string>? _deadCause; // the dead ReLU layers that explained this episode's zero gradient
    private bool _zeroAtFirst; // the gradient was already zero at the first step (a symmetric or dead start)

    /// <summary>Classifies the point the weights are at (the doctor's live probe), or null when no probe was given.</summary>
    public Func<StationaryPointReport>? Probe { get; set; }

    public override FindingKind Kind => FindingKind.ZeroGradient;

    public override Finding? Check(RunHistory run, StepRecord step)
    {
        long count = 0;
        double zeros = 0, abs = 0;
        for (int at = 0; at < step.Parameters.Count; at++)
        {
            var p = step.Parameters[at];
            if (p.Gradient is not { } g || g.HasNonFinite) continue;
            count += g.Count;
            zeros += g.ZeroFraction * g.Count;
            abs += g.MeanAbs * g.Count;
        }
        double zeroShare = count > 0 ? zeros / count : 0, meanAbs = count > 0 ? abs / count : double.NaN;
        bool hit = count > 0 && (zeroShare >= ZeroShare || meanAbs < TinyMeanAbs);
        _streak.Push(hit);
        if (run.Count == 1) _zeroAtFirst = hit;
        if (_streak.Share < persistence) _deadCause = null; // the episode is over: a later one is judged afresh
        if (!hit || _streak.Share < persistence || !Unwell(run, Symptoms.Stalled | Symptoms.Slow)) return null;

        // Dead on the latest measured step is enough here (the DeadRelu rule waits for the monitor's window to call it permanent).
        var dead = (run.Detail?.Activations ?? []).Where(a => a.Op == "Relu" && Math.Max(a.DeadFraction ?? 0, a.DeadWindowFraction ?? 0) >= DeadRelu.DeadThreshold).Select(a => a.Layer).ToList();
        // A cause found once holds for the episode, as the probe's verdict does: units that died cut the gradient, and a few of
        // them flickering back on a later sample (momentum or a growing rate still moving weights that get no gradient) while
        // the gradient stays zero does not make the zero unexplained.
        if (dead.Count > 0) _deadCause = dead;
        else if (_deadCause is { } earlier) dead = earlier;
        // A gradient that was not zero at the start and went to zero under heavy dropout (units killed on the way included)
        // is the dropout's consequence: NotLearning names it (HeavyDropout).
        if (!_zeroAtFirst && HeavyDropout.Explains(run, dead)) return null;
        if (dead.Count == 0 && !_probed && Probe is { } probe)
        {
            _probed = true; // one Lanczos run per run: the probe's cost is paid once, when the condition first holds
            _report = probe();
        }
        var evidence = new List<Evidence>
        {
            new("share of the gradient's elements exactly zero", zeroShare, ZeroShare, "derivation: nine in ten parameters get nothing (DOCTOR.md)"),
            new("mean |g| over every parameter", meanAbs, TinyMeanAbs, "DeepDiagnosis ICSE'22 vanishing threshold"),
            new("share of the window the gradient was zero", _streak.Share, persistence, "persistence (DOCTOR.md)"),
        };
        var cause = Classify(run, dead, evidence);
        evidence.Add(run.SymptomEvidence());
        var (title, explanation, fixes) = Describe(cause, dead, run);
        return new Finding
        {
            // Info for a minimum (training works) and a dead network (the DeadRelu warning carries that fault; this names its effect).
            Kind = Kind, Severity = cause is ZeroGradientCause.Minimum or ZeroGradientCause.DeadNetwork ? Severity.Info : Severity.Warning,
            Title = $"zero gradient: {title}", Layers = dead, FirstStep = step.Step, LastStep = step.Step,
            Confidence = Confidence(_streak.Share, true) * (cause == ZeroGradientCause.Unclassified ? 0.7 : 1), Evidence = evidence,
            Explanation = "The gradient is zero (or as good as), so gradient descent has nothing to follow and the loss stands still. " + explanation,
            Fixes = Fixes([.. fixes]),
        };
    }

    /// <summary>The cause in the evidence's terms: dead units, the probe's verdict, or a measured curvature sample.</summary>
    public ZeroGradientCause Cause { get; private set; }

    private ZeroGradientCause Classify(RunHistory run, List<string> dead, List<Evidence> evidence)
    {
        if (dead.Count > 0)
        {
            evidence.Add(new Evidence($"ReLU layers with at least {DeadRelu.DeadThreshold:P0} of their units dead", dead.Count, 1, "AUTOTRAINER ICSE'21 / DeepDiagnosis ICSE'22 (70%)"));
            return Cause = ZeroGradientCause.DeadNetwork;
        }
        if (_report is { } r)
        {
            evidence.Add(new Evidence($"StationaryPoint.Classify: {r.Evidence}", r.MinEigenvalue, double.NaN, "exact Hessian, Lanczos at both ends of the spectrum"));
            return Cause = r.Kind switch
            {
                StationaryPointKind.Saddle => ZeroGradientCause.Saddle,
                StationaryPointKind.Minimum => ZeroGradientCause.Minimum,
                StationaryPointKind.Flat => ZeroGradientCause.FlatRegion,
                _ => ZeroGradientCause.LearningRateTooSmall,
            };
        }
        if (run.Curvature is { LambdaMin: { } min } c)
        {
            double scale = Math.Max(Math.Abs(c.LambdaMax), Math.Abs(min));
            evidence.Add(new Evidence($"lambda_min of the curvature measured at step {c.Step} (lambda_max {c.LambdaMax:G3})", min, -NegativeShare * scale, "StationaryPoint's relative tolerance"));
            return Cause = scale <= FlatCurvature ? ZeroGradientCause.FlatRegion : min < -NegativeShare * scale ? ZeroGradientCause.Saddle : ZeroGradientCause.Minimum;
        }
        return Cause = ZeroGradientCause.Unclassified;
    }

    private static (string Title, string Explanation, (string, string)[] Fixes) Describe(ZeroGradientCause cause, List<string> dead, RunHistory run) => cause switch
    {
        ZeroGradientCause.DeadNetwork => ($"a dead network: the ReLUs of {Names(dead)} pass nothing back",
            "Here the ReLU units output zero for every input, so no gradient passes through them to anything before them.",
            [("replace ReLU by LeakyReLU(0.01) or GELU", "a small slope below zero lets dead units receive gradient and come back"),
             ("re-initialise with Kaiming (He) init and zero biases, and lower the learning rate", "units then start active and are not knocked out by one large step")]),
        ZeroGradientCause.Saddle => ("a saddle point: the curvature has a direction of descent",
            "The curvature shows a direction in which the loss falls, so this is a saddle, not a minimum. A symmetric start (all weights equal, or zero) is the usual cause: every unit of a layer is identical and gets the same (zero) gradient.",
            [("initialise the weights randomly (Kaiming for ReLU, Xavier for tanh/sigmoid), never all to one value", "different units then get different gradients and the symmetry is broken"),
             ("use SGD with momentum and small mini-batches, or perturb the weights once", "noise and momentum carry the weights off a saddle along its descent direction")]),
        ZeroGradientCause.Minimum => ("a minimum: no direction of the curvature lowers the loss",
            "The curvature is non-negative in every direction: the weights sit at a minimum of this loss on this data. Training works; the model, as it is, cannot do better.",
            [("add capacity (wider or more layers) or better input features", "a larger model has lower minima"),
             ("check the labels and the loss", "a minimum far above zero loss often means the targets cannot be predicted from the inputs"),
             ("restart from another seed", "a poor local minimum is a property of the start")]),
        ZeroGradientCause.FlatRegion => ("a flat region: gradient and curvature are both near zero",
            "Both the gradient and the curvature are near zero: the weights are on a plateau, where no direction looks better than another.",
            [("use Adam (lr 1e-3)", "it divides each step by the gradient's own size, so it keeps moving where the gradient is tiny"),
             ("re-initialise with a standard initialiser, or raise the learning rate", "a plateau is often a start far from the useful region")]),
        ZeroGradientCause.LearningRateTooSmall => ("the gradient is small but real: the learning rate is too small",
            "The curvature probe found the weights are not at a stationary point: the gradient is small but points somewhere, and the steps are too short to follow it.",
            [($"raise the learning rate{(run.LearningRate is { } lr ? $" from {RunHistory.Round1(lr)} by 10 to 100 times" : " 10 to 100 times")}", "the steps then go somewhere"),
             ("use the LR finder (LRFinder)", "it finds the steepest stable rate from the run")]),
        _ => ("a saddle, a minimum or a flat region (no curvature measured to tell)",
            "A zero gradient happens at a minimum, at a saddle (a symmetric start: all weights zero or equal) and on a plateau; only the curvature tells them apart.",
            [("check that the weights are initialised randomly, not to zeros or one value", "a symmetric start is the commonest cause of an exactly zero gradient"),
             ("attach a stationary probe (Doctor.AddStationaryProbe with a fixed batch's loss) or a curvature sample", "the smallest Hessian eigenvalue tells a saddle from a minimum")]),
    };
}
