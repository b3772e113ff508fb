namespace GradFlow.Diagnostics;

/// <summary>What the doctor found wrong with a training run.</summary>
public enum FindingKind
{
    /// <summary>The gradient shrinks towards the input until the first layers stop learning.</summary>
    VanishingGradients,
    /// <summary>The gradient grows step after step, or spikes far above its own history.</summary>
    ExplodingGradients,
    /// <summary>A NaN or Inf in the loss, a gradient or a layer's backward flow.</summary>
    NonFiniteValues,
    /// <summary>Most units of a ReLU layer output zero for every sample, window after window.</summary>
    DeadRelu,
    /// <summary>Sigmoid or tanh units sit at their bounds (or all at the centre, passing nothing on).</summary>
    SaturatedActivations,
    /// <summary>The learning rate makes the loss diverge or oscillate.</summary>
    LearningRateTooHigh,
    /// <summary>The updates are so small against the weights that the loss barely moves.</summary>
    LearningRateTooLow,
    /// <summary>At the first step the signal already dies out or blows up across depth (judged only when the records start at step 1, not after a resume).</summary>
    PoorInitialisation,
    /// <summary>The loss stays at its starting (chance) level while the gradients look healthy: labels, data or model.</summary>
    NotLearning,
    /// <summary>Gradients are summed across steps (ZeroGrad forgotten): their norm grows linearly with the step.</summary>
    GradientAccumulation,
    /// <summary>Weight decay shrinks the weights faster than the loss's gradient moves them.</summary>
    RegularisationDominates,
    /// <summary>The model's input is far from zero mean and unit scale.</summary>
    InputsNotNormalised,
    /// <summary>A softmax or sigmoid output feeds a loss that applies its own (log-)softmax or sigmoid.</summary>
    ProbabilitiesIntoLogitLoss,
    /// <summary>The gradient is (nearly) zero while the loss stands still: a dead network, a saddle, a minimum, a flat region or a rate too small.</summary>
    ZeroGradient,
    /// <summary>An action the doctor took itself (auto-fix): clipping, a lower learning rate, a roll-back.</summary>
    AutoFixApplied,
    /// <summary>Data-parallel training: some ranks' gradients stay an order of magnitude from the others', step after step.</summary>
    RanksDisagree,
}

/// <summary>How serious a finding is.</summary>
public enum Severity
{
    /// <summary>Worth knowing; training is not harmed yet (auto-fix actions are reported at this level).</summary>
    Info,
    /// <summary>Training is hurt: slower, worse or stuck.</summary>
    Warning,
    /// <summary>Training is broken: diverged, non-finite, or a definite bug.</summary>
    Error,
}

/// <summary>One figure behind a finding: its value, the threshold it crossed, and where the threshold comes from.</summary>
/// <param name="Quantity">What was measured ("first/last layer gradient RMS ratio").</param>
/// <param name="Value">The measured figure.</param>
/// <param name="Threshold">The threshold it was compared with (NaN where the test is not a comparison).</param>
/// <param name="Source">The threshold's origin: a paper, a derivation, or the benchmark's tuning set.</param>
public sealed record Evidence(string Quantity, double Value, double Threshold, string Source)
{
    /// <inheritdoc/>
    public override string ToString() => double.IsNaN(Threshold)
        ? $"{Quantity} = {Value:G3} ({Source})"
        : $"{Quantity} = {Value:G3}, threshold {Threshold:G3} ({Source})";
}

/// <summary>A remedy, with the concrete value the run suggests.</summary>
/// <param name="Rank">1 for the first thing to try.</param>
/// <param name="Action">What to do, with values computed from the run ("clip at max norm 1.2").</param>
/// <param name="Why">Why it helps, in a sentence.</param>
public sealed record Fix(int Rank, string Action, string Why)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Rank}. {Action} ({Why})";
}

/// <summary>A diagnosis: what is wrong, where, since when, the evidence, how sure, and what to do.</summary>
public sealed record Finding
{
    /// <summary>What is wrong.</summary>
    public required FindingKind Kind { get; init; }
    /// <summary>How serious it is (escalates online when the finding persists).</summary>
    public required Severity Severity { get; init; }
    /// <summary>A one-line verdict.</summary>
    public required string Title { get; init; }
    /// <summary>The layers concerned (module paths), or empty when it is about the whole run.</summary>
    public IReadOnlyList<string> Layers { get; init; } = [];
    /// <summary>The time steps concerned inside a recurrent layer (findings through time), or empty.</summary>
    public IReadOnlyList<int> TimeSteps { get; init; } = [];
    /// <summary>The step the finding was first raised on.</summary>
    public required long FirstStep { get; init; }
    /// <summary>The latest step on which its condition held.</summary>
    public required long LastStep { get; init; }
    /// <summary>The figures that triggered it.</summary>
    public required IReadOnlyList<Evidence> Evidence { get; init; }
    /// <summary>0..1: how sure the doctor is (the share of the window the condition held, lowered without a symptom).</summary>
    public required double Confidence { get; init; }
    /// <summary>What it means, in words a student can follow.</summary>
    public required string Explanation { get; init; }
    /// <summary>Remedies, best first.</summary>
    public required IReadOnlyList<Fix> Fixes { get; init; }

    /// <inheritdoc/>
    public override string ToString()
    {
        var sb = new System.Text.StringBuilder();
        sb.Append($"[{Severity.ToString().ToLowerInvariant()}] {Kind} at step {FirstStep}");
        if (Layers.Count > 0) sb.Append($" in {string.Join(", ", Layers)}");
        if (TimeSteps.Count > 0) sb.Append($" at time steps {string.Join(", ", TimeSteps)}");
        sb.Append($" (confidence {Confidence:0.00}): {Title}");
        sb.AppendLine().Append("  ").Append(Explanation);
        foreach (var e in Evidence) sb.AppendLine().Append("  evidence: ").Append(e);
        foreach (var f in Fixes) sb.AppendLine().Append("  fix ").Append(f);
        return sb.ToString();
    }
}
