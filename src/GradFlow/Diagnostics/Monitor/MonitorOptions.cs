namespace GradFlow.Diagnostics;

/// <summary>What the <see cref="GradientMonitor"/> measures and how often.</summary>
public sealed record MonitorOptions
{
    /// <summary>Record every N-th step (1: every step).</summary>
    public int Every { get; init; } = 1;

    /// <summary>
    /// Measure the detailed statistics (activation health, the backward flow, gradient histograms, the gradient per time step
    /// in recurrent layers) on every N-th recorded
    /// step only, the first recorded step included; 1: on every recorded step. The step-level signals are measured on every
    /// recorded step whatever N: the loss, the global gradient norm, NaN/Inf counts, and each parameter's and layer's gradient,
    /// weight and update statistics (they come from the optimiser's own update pass at a fraction of a percent of the
    /// step). A step without the details has empty <see cref="StepRecord.Activations"/>, <see cref="StepRecord.Flow"/> and
    /// <see cref="StepRecord.RecurrentSteps"/> and no histograms. The default, 5, keeps the monitor and the doctor within 2% of the step on the bench cases
    /// (docs/DOCTOR.md, "Cost"): activation health costs up to a tenth of a step on a deep sigmoid net or an LSTM, whose
    /// activations are cheap ops over large outputs.
    /// </summary>
    public int DetailEvery { get; init; } = 5;

    /// <summary>Keep log2 histograms of every parameter's gradient (on the steps with details, <see cref="DetailEvery"/>).</summary>
    public bool Histograms { get; init; } = true;

    /// <summary>
    /// How many gradient values a step's histograms count, over all parameters together. When the model has more,
    /// each gradient is counted on evenly spread runs of 256 consecutive values, its share of this budget in
    /// proportion to its size, and the counts are scaled to its size; norms, means, maxima and the zero/NaN/Inf
    /// counts stay exact. 0 counts every value. Counting costs about a nanosecond a value: on a model with a few
    /// million parameters, exact histograms every step would cost more than the rest of the monitor together. The
    /// default, 32,768, puts a bucket holding 5% of a model's values within about 2.5% (one standard error).
    /// </summary>
    public int HistogramSampleSize { get; init; } = 32_768;

    /// <summary>Measure activation health (dead and saturated units, mean and std) in forward (on the steps with details, <see cref="DetailEvery"/>).</summary>
    public bool Activations { get; init; } = true;

    /// <summary>Measure the gradient flowing into each layer's input in backward (on the steps with details, <see cref="DetailEvery"/>).</summary>
    public bool Flow { get; init; } = true;

    /// <summary>
    /// Measure ||dL/dh_t|| at every time step inside recurrent layers (<see cref="StepRecord.RecurrentSteps"/>, on the steps
    /// with details, <see cref="DetailEvery"/>): the fused LSTM sums the squares in its own backward pass; for RNN and GRU,
    /// run step by step, the engine reads the gradient reaching each step's hidden state before passing it on.
    /// </summary>
    public bool RecurrentSteps { get; init; } = true;

    /// <summary>
    /// A sigmoid output below eps or above 1 - eps, or a tanh output beyond ±(1 - eps), counts as saturated:
    /// its derivative is then below eps (sigmoid: s(1-s) &lt; eps; tanh: 1 - y² &lt; 2 eps).
    /// </summary>
    public double SaturationEpsilon { get; init; } = 0.01;

    /// <summary>
    /// Recorded steps in the sliding window over which a unit must stay dead to count in DeadWindowFraction. Activations are
    /// seen on every <see cref="DetailEvery"/>-th recorded step, so the streak counts those: ceil(DeadWindow / DetailEvery) of them.
    /// </summary>
    public int DeadWindow { get; init; } = 10;

    /// <summary>
    /// Steps taken before this monitor was attached: a run resumed from a checkpoint at step N passes N, so its first
    /// step is recorded as N + 1 and <see cref="Every"/> keeps the uninterrupted run's rhythm. The doctor reads records
    /// that start after step 1 as a resumed run's and makes no claim about its initialisation (<see cref="Doctor.StartsAtInitialisation"/>).
    /// </summary>
    public long StartStep { get; init; }

    /// <summary>The dead-unit streak, in steps with activations: <see cref="DeadWindow"/> recorded steps, at least one.</summary>
    internal int DeadWindowSamples => (DeadWindow + DetailEvery - 1) / DetailEvery;

    internal void Validate()
    {
        if (StartStep < 0) throw new ArgumentException($"{nameof(MonitorOptions)}: StartStep must be 0 or positive, got {StartStep}.", nameof(StartStep));
        if (DetailEvery < 1) throw new ArgumentException($"{nameof(MonitorOptions)}: DetailEvery must be at least 1, got {DetailEvery}.", nameof(DetailEvery));
        if (Every < 1) throw new ArgumentException($"{nameof(MonitorOptions)}: Every must be at least 1, got {Every}.", nameof(Every));
        if (!(SaturationEpsilon > 0 && SaturationEpsilon < 0.5))
            throw new ArgumentException($"{nameof(MonitorOptions)}: SaturationEpsilon must be in (0, 0.5), got {SaturationEpsilon}.", nameof(SaturationEpsilon));
        if (HistogramSampleSize < 0) throw new ArgumentException($"{nameof(MonitorOptions)}: HistogramSampleSize must be 0 or positive, got {HistogramSampleSize}.", nameof(HistogramSampleSize));
        if (DeadWindow < 1) throw new ArgumentException($"{nameof(MonitorOptions)}: DeadWindow must be at least 1, got {DeadWindow}.", nameof(DeadWindow));
    }
}
