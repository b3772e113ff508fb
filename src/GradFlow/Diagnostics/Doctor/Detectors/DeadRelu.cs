namespace GradFlow.Diagnostics;

/// <summary>
/// Most of a ReLU layer's units output zero for every sample of every step in the monitor's sliding window, so no
/// gradient reaches their weights. The share is AUTOTRAINER's and DeepDiagnosis' 70%; the window (the monitor's
/// DeadWindowFraction) makes it about the same units staying dead, not one unlucky batch. Gated on a loss symptom; stands
/// aside when heavy dropout explains the dead units (<see cref="HeavyDropout"/>).
/// </summary>
internal sealed class DeadRelu(int window, double persistence) : Detector
{
    internal const double DeadThreshold = 0.7;
    private readonly List<(string Layer, Streak Streak)> _layers = [];

    private bool _holding;

    public override FindingKind Kind => FindingKind.DeadRelu;

    private bool Judge(IReadOnlyList<ActivationStats> activations, int samples)
    {
        int k = 0;
        bool any = false;
        for (int at = 0; at < activations.Count; at++)
        {
            var a = activations[at];
            if (a.Op != "Relu") continue;
            if (k == _layers.Count || _layers[k].Layer != a.Layer)
            {
                if (k < _layers.Count) _layers.RemoveRange(k, _layers.Count - k);
                _layers.Add((a.Layer, new Streak(samples)));
            }
            else if (_layers[k].Streak.Length != samples) _layers[k] = (a.Layer, _layers[k].Streak.Resized(samples));
            bool hit = (a.DeadWindowFraction ?? a.DeadFraction ?? 0) >= DeadThreshold;
            _layers[k].Streak.Push(hit);
            any |= hit && _layers[k].Streak.Share >= persistence;
            k++;
        }
        return any;
    }

    public override Finding? Check(RunHistory run, StepRecord step)
    {
        // Activations come on the records with details only (MonitorOptions.DetailEvery): the streaks count those, over a
        // window as long in records as the other rules' (RunHistory.SampledWindow), and the verdict holds in between.
        if (step.Activations.Count > 0) _holding = Judge(step.Activations, run.SampledWindow);
        // A run already found not to learn (constant inputs, shuffled labels) loses units as a consequence, not a new fault.
        if (!_holding || !Unwell(run) || run.Raised[(int)FindingKind.NotLearning] || run.Detail is not { } detail) return null;
        var dead = detail.Activations.Where(a => a.Op == "Relu" && (a.DeadWindowFraction ?? a.DeadFraction ?? 0) >= DeadThreshold).ToList();
        if (dead.Count == 0) return null;
        // Units that died under heavy dropout, alive at the start and not killed by the steps, are its consequence: NotLearning names it.
        if (HeavyDropout.Explains(run, dead.Select(a => a.Layer).ToList())) return null;
        var worst = dead.MaxBy(a => a.DeadWindowFraction ?? a.DeadFraction ?? 0)!;
        double ratio = run.MedianOf(run.MaxUpdateRatio, window);
        var fixes = new List<(string, string)>();
        if (run.LearningRate is { } lr && ratio > 1e-2)
            fixes.Add(($"lower the learning rate to {RunHistory.Round1(lr * 1e-3 / ratio)} (update/weight ratio {ratio:G2} now; about 1e-3 is healthy)",
                "a too-large step pushes a unit's bias so negative that it never activates again"));
        fixes.Add(("replace ReLU by LeakyReLU(0.01) or GELU in " + Names(dead.Select(a => a.Layer).ToList()), "a small slope below zero lets a dead unit receive gradient and come back"));
        fixes.Add(("initialise with Kaiming (He) init and zero biases, or add BatchNorm before the ReLU", "half the units then start active and stay centred"));
        double share = worst.DeadWindowFraction ?? worst.DeadFraction ?? 0;
        return new Finding
        {
            Kind = Kind, Severity = Severity.Warning,
            Title = $"dead ReLUs: {share:P0} of the units in {Label(worst.Layer)} output zero for every input",
            Layers = dead.Select(a => a.Layer).ToList(), FirstStep = step.Step, LastStep = step.Step, Confidence = Confidence(_layers.Max(l => l.Streak.Share), true),
            Evidence =
            [
                new Evidence($"dead units in {Label(worst.Layer)} over the monitor's window", share, DeadThreshold, "AUTOTRAINER ICSE'21 / DeepDiagnosis ICSE'22 (70%)"),
                new Evidence("largest update/weight ratio (median over the window)", ratio, 1e-2, "Karpathy's 1e-3 rule, ten times over"),
                run.SymptomEvidence(),
            ],
            Explanation = "A ReLU unit whose input is negative for every example outputs zero and passes back zero gradient, so its weights " +
                          "never change again: the unit is dead. When most of a layer is dead the network has lost most of its capacity.",
            Fixes = Fixes([.. fixes]),
        };
    }
}
