namespace GradFlow.Diagnostics;

/// <summary>The loss symptoms that open the gate for the gradient rules (AUTOTRAINER's idea: judge gradients only when training is visibly unwell).</summary>
[Flags]
public enum Symptoms
{
    /// <summary>Training looks fine, or it is too early to say.</summary>
    None = 0,
    /// <summary>The loss is non-finite or has risen well above where it started (after a resume: where the records start, or chance if higher).</summary>
    Diverging = 1,
    /// <summary>After a window, the loss has not fallen 10% below its start or chance, the lower (after a resume: chance).</summary>
    Stalled = 2,
    /// <summary>The loss fell less than 2% over the last window while still above a quarter of the level Stalled is judged against.</summary>
    Slow = 4,
}

/// <summary>A fixed-size ring of the latest values (no allocation after construction).</summary>
internal sealed class Ring(int capacity)
{
    private readonly double[] _items = new double[capacity];
    private int _next;

    public int Count { get; private set; }
    public int Capacity => _items.Length;

    public void Push(double value)
    {
        _items[_next] = value;
        _next = (_next + 1) % _items.Length;
        if (Count < _items.Length) Count++;
    }

    /// <summary>The value <paramref name="back"/> pushes ago (0: the latest).</summary>
    public double this[int back] => _items[(_next - 1 - back + 2 * _items.Length) % _items.Length];

    /// <summary>The latest <paramref name="n"/> values, oldest first, into <paramref name="into"/>.</summary>
    public Span<double> Latest(int n, Span<double> into)
    {
        n = Math.Min(n, Count);
        for (int i = 0; i < n; i++) into[i] = this[n - 1 - i];
        return into[..n];
    }
}

/// <summary>Whether a condition held on each of the latest steps of a window (no allocation after construction).</summary>
internal sealed class Streak(int window)
{
    private readonly bool[] _hits = new bool[window];
    private int _next, _count, _seen;

    /// <summary>The steps in the window.</summary>
    public int Length => _hits.Length;

    /// <summary>A streak over <paramref name="window"/> steps that has seen this one's latest hits (a schedule learnt late keeps them).</summary>
    public Streak Resized(int window)
    {
        var resized = new Streak(window);
        int keep = Math.Min(Math.Min(_seen, _hits.Length), window);
        for (int back = keep - 1; back >= 0; back--) resized.Push(_hits[((_next - 1 - back) % _hits.Length + _hits.Length) % _hits.Length]);
        return resized;
    }

    public void Push(bool hit)
    {
        if (_hits[_next]) _count--;
        _hits[_next] = hit;
        if (hit) _count++;
        _next = (_next + 1) % _hits.Length;
        _seen++;
    }

    /// <summary>The share of the window's steps on which the condition held (0 until a full window has been seen).</summary>
    public double Share => _seen < _hits.Length ? 0 : (double)_count / _hits.Length;

    public bool Latest => _seen > 0 && _hits[(_next - 1 + _hits.Length) % _hits.Length];
}

/// <summary>
/// What the doctor remembers of a run: the loss and its smoothed trend, the global gradient norm, the weights'
/// total norm and the update/weight ratios, each in a fixed ring, and the symptoms the loss shows now. Updating it
/// is O(layers) a step and allocates nothing.
/// </summary>
internal sealed class RunHistory
{
    public const int Capacity = 256;
    private const int SmoothOver = 5; // a median of 5 losses: robust to one bad mini-batch
    private readonly double[] _scratch = new double[Capacity];
    private readonly double[] _firstLosses = new double[SmoothOver];
    private int _firstLossCount;

    public RunHistory(DoctorOptions options)
    {
        Options = options;
        Window = options.Window;
        BaselineNorms = new double[Window];
    }

    public DoctorOptions Options { get; }
    public int Window { get; }
    public long Count { get; private set; }
    public StepRecord? First { get; private set; }

    /// <summary>
    /// True when the records start at the start of training, so the first shows the network as it was initialised (after
    /// one update): its step number is 1. The monitor numbers the steps it closes from MonitorOptions.StartStep + 1 and
    /// records a step when the steps before it are a multiple of MonitorOptions.Every, so a run's step 1 is recorded
    /// whatever Every is, and a monitor attached to a run resumed at step N (StartStep = N) records step N + 1 or a later
    /// one first. A run log keeps the step numbers, so a log read back gives the same answer (and a log that a resumed run
    /// appended to still starts at 1). Records numbered from 0 by hand count as a start too. A run resumed without
    /// StartStep cannot be told from a fresh one.
    /// </summary>
    public bool StartsAtInitialisation => First is { } first && IsStartOfTraining(first.Step);

    /// <summary>The rule of <see cref="StartsAtInitialisation"/>, for the step number of a run's first record.</summary>
    public static bool IsStartOfTraining(long firstStep) => firstStep <= 1;

    /// <summary>"the first step", or "the first recorded step (step N)" when the records start after training began: for a finding's text.</summary>
    public string FirstStepName => StartsAtInitialisation ? "the first step" : $"the first recorded step (step {First!.Step})";
    public StepRecord Current { get; private set; } = null!;
    public Ring Loss { get; } = new(Capacity);
    public Ring Smoothed { get; } = new(Capacity);
    public Ring GradNorm { get; } = new(Capacity);
    public Ring WeightNorm { get; } = new(Capacity);
    /// <summary>The update/weight ratio of the layer nearest the loss (its gradient has not passed through the others).</summary>
    public Ring OutputUpdateRatio { get; } = new(Capacity);
    /// <summary>
    /// The sum of <see cref="OutputUpdateRatio"/> since the first record: by the triangle inequality, a bound on how far the
    /// layer nearest the loss has moved since, relative to its size.
    /// </summary>
    public double OutputMovement { get; private set; }
    /// <summary>The largest update/weight ratio over the layers.</summary>
    public Ring MaxUpdateRatio { get; } = new(Capacity);
    /// <summary>
    /// The share of the steps so far whose largest update/weight ratio was above 1e-2 (the too-high rate's bound, Karpathy's
    /// 1e-3 ten times over): above one half, the weights moved by more than 1% a step on most steps of the run.
    /// </summary>
    public double LargeUpdateShare => Count > 0 ? (double)_largeUpdateSteps / Count : 0;
    private long _largeUpdateSteps;
    /// <summary>The largest update/weight ratio of any layer on any step so far.</summary>
    public double PeakUpdateRatio { get; private set; }
    /// <summary>The global gradient norms of the first window: the run's own healthy baseline.</summary>
    public double[] BaselineNorms { get; }
    public int BaselineCount { get; private set; }
    public double InitialLoss { get; private set; } = double.NaN;
    public double FirstWeightNorm { get; private set; }
    public double MinSmoothed { get; private set; } = double.PositiveInfinity;
    public Symptoms Symptoms { get; private set; }
    /// <summary>Finite steps of the latest 5 on which the loss was diverging and its smoothed value still rose: a rise, not one NaN nor a recovery.</summary>
    public int RisingSteps { get; private set; }
    private readonly Streak _rising = new(5);
    public double? LearningRate => Current.LearningRate;
    /// <summary>The largest learning rate recorded so far (0 when none was): a schedule's peak.</summary>
    public double PeakLearningRate { get; private set; }
    /// <summary>The peak learning rate / the current one: how far a schedule has cut the rate (1 without a record or a cut).</summary>
    public double RateCut => LearningRate is { } lr && PeakLearningRate > 0 ? (lr > 0 ? PeakLearningRate / lr : double.PositiveInfinity) : 1;
    /// <summary>The latest setup the monitor recorded (shapes, fans, optimiser settings), or null.</summary>
    public RunSetup? Setup { get; private set; }
    /// <summary>
    /// The weight-decay part of the update against the whole: wd ||W|| / (wd ||W|| + ||g||) when the decay is added to the
    /// gradient (both then pass through the same momentum or moments), lr wd ||W|| / ||update|| when it is decoupled (AdamW).
    /// NaN without decay or a setup.
    /// </summary>
    public Ring DecayShare { get; } = new(Capacity);
    /// <summary>
    /// How much of the step's update pointed at the origin: (previous weight norm - current) / the update's norm, the cosine
    /// between the update and -W to first order. Near 1 when a pull towards zero (decay, an L2 term in the loss) is the
    /// whole update; near 0 for a data gradient, whose direction in many dimensions is nearly orthogonal to W. NaN without updates.
    /// </summary>
    public Ring Inward { get; } = new(Capacity);
    /// <summary>True when a recurrent layer (a weight_hh parameter) is watched.</summary>
    public bool Recurrent { get; private set; }
    public CurvatureSample? Curvature { get; set; }
    /// <summary>
    /// Scopes whose Sigmoid/Tanh lies between the loss and the model's last layer with parameters (from the live graph probe;
    /// empty offline, where forward depth alone tells the output activation).
    /// </summary>
    public HashSet<string> OutputActivationScopes { get; } = [];
    /// <summary>Kinds raised so far (by kind index): lets NotLearning stand aside when a gradient cause is known.</summary>
    public bool[] Raised { get; } = new bool[Enum.GetValues<FindingKind>().Length];

    /// <summary>
    /// The latest record with the monitor's detailed statistics (activations, flow or per-time-step norms; MonitorOptions.DetailEvery), the
    /// current one when it has them; null before the first.
    /// </summary>
    public StepRecord? Detail { get; private set; }

    /// <summary>
    /// Records from one record with details to the next: the monitor's DetailEvery, seeded from it online and learnt from
    /// the records' gaps offline (1 until two have been seen).
    /// </summary>
    public int DetailInterval { get; set; } = 1;

    private long _detailAt;

    /// <summary>
    /// A window over the records with details that spans <see cref="Window"/> records, as the other rules' windows do (at
    /// least 4 samples, so one unlucky batch cannot make a persistent condition): 20 records sampled every 5th are 4 samples.
    /// </summary>
    public int SampledWindow => Math.Max(4, (Window + DetailInterval - 1) / DetailInterval);

    public bool WarmedUp => Count >= Window;
    public double LatestSmoothed => Smoothed.Count > 0 ? Smoothed[0] : double.NaN;
    public double ChanceLoss => Options.Classes is { } c ? Math.Log(c) : double.NaN;

    public void Update(StepRecord step)
    {
        Current = step;
        First ??= step;
        Count++;
        if (step.Activations.Count > 0 || step.Flow.Count > 0 || step.RecurrentSteps.Count > 0)
        {
            if (Detail is not null) DetailInterval = (int)Math.Min(Count - _detailAt, Window);
            Detail = step;
            _detailAt = Count;
        }
        double loss = step.Loss ?? double.NaN;
        Loss.Push(loss);
        if (double.IsFinite(loss) && _firstLossCount < SmoothOver)
        {
            _firstLosses[_firstLossCount++] = loss;
            InitialLoss = Median(_firstLosses.AsSpan(0, _firstLossCount));
        }
        double smoothed = SmoothedLoss();
        Smoothed.Push(smoothed);
        // The best loss counts only once the median has its five values: a median of one or two losses is not yet robust,
        // and a first loss that momentum then overshoots must not make the recovery look like a fourfold rise.
        if (double.IsFinite(smoothed) && Count >= SmoothOver) MinSmoothed = Math.Min(MinSmoothed, smoothed);
        GradNorm.Push(step.GlobalGradNorm);
        if (BaselineCount < BaselineNorms.Length) BaselineNorms[BaselineCount++] = step.GlobalGradNorm;
        double weightSq = 0;
        for (int at = 0; at < step.Parameters.Count; at++) { var p = step.Parameters[at]; weightSq += p.ParamNorm * p.ParamNorm; }
        WeightNorm.Push(Math.Sqrt(weightSq));
        if (step.Setup is { } setup)
        {
            Setup = setup;
            Recurrent = setup.Parameters.Any(p => p.Name.Contains("weight_hh", StringComparison.Ordinal));
        }
        DecayShare.Push(Decay(step, Math.Sqrt(weightSq)));
        Inward.Push(InwardShare(step));
        if (step.LearningRate is { } rate && double.IsFinite(rate)) PeakLearningRate = Math.Max(PeakLearningRate, rate);
        if (Count == 1) FirstWeightNorm = Math.Sqrt(weightSq);
        double maxRatio = double.NaN, outRatio = double.NaN;
        for (int at = 0; at < step.Layers.Count; at++)
        {
            var l = step.Layers[at];
            if (l.UpdateToWeight is not { } r || l.Gradient.Count == 0) continue;
            maxRatio = double.IsNaN(maxRatio) ? r : Math.Max(maxRatio, r);
            outRatio = r; // layers are in depth order: the last one is nearest the loss
        }
        OutputUpdateRatio.Push(outRatio);
        if (double.IsFinite(outRatio)) OutputMovement += outRatio;
        MaxUpdateRatio.Push(maxRatio);
        if (maxRatio > LearningRateTooHigh.RatioThreshold) _largeUpdateSteps++;
        if (maxRatio > PeakUpdateRatio) PeakUpdateRatio = maxRatio;
        Symptoms = Judge(loss, smoothed);
        // Rising: high and still going up. A loss high above its start but already falling back is recovering, not diverging.
        _rising.Push(double.IsFinite(loss) && (Symptoms & Symptoms.Diverging) != 0 && (Smoothed.Count < 2 || !(smoothed <= Smoothed[1])));
        RisingSteps = (int)Math.Round(_rising.Share * 5);
    }

    private double InwardShare(StepRecord step)
    {
        if (WeightNorm.Count < 2) return double.NaN;
        double updateSq = 0;
        for (int at = 0; at < step.Parameters.Count; at++) { var p = step.Parameters[at]; if (p.UpdateNorm is { } u) updateSq += u * u; }
        return updateSq > 0 ? (WeightNorm[1] - WeightNorm[0]) / Math.Sqrt(updateSq) : double.NaN;
    }

    private double Decay(StepRecord step, double weightNorm)
    {
        if (Setup?.Optimizer is not { WeightDecay: > 0 } o) return double.NaN;
        if (!o.DecoupledWeightDecay)
        {
            double d = o.WeightDecay * weightNorm;
            return d / (d + step.GlobalGradNorm);
        }
        double updateSq = 0;
        for (int at = 0; at < step.Parameters.Count; at++) { var p = step.Parameters[at]; if (p.UpdateNorm is { } u) updateSq += u * u; }
        double decay = (step.LearningRate ?? o.LearningRate) * o.WeightDecay * weightNorm;
        return updateSq > 0 ? Math.Min(1, decay / Math.Sqrt(updateSq)) : double.NaN;
    }

    /// <summary>
    /// The level the loss must fall below to count as learning: its start, or chance when that is lower (a poor start far
    /// above chance is not progress). A resumed history starts at a trained network's loss, which a converged run need not
    /// fall below: chance alone is its reference, or without a chance level where its records start.
    /// </summary>
    public double ReferenceLoss => !double.IsFinite(ChanceLoss) ? InitialLoss : StartsAtInitialisation ? Math.Min(InitialLoss, ChanceLoss) : ChanceLoss;

    /// <summary>
    /// The loss a rise is judged from (the divergence symptom): where the records start. A resumed history starts at a
    /// trained network's loss, low enough for mini-batch noise to take half as high again; the start of training a fresh
    /// run's rise is judged from is then estimated by chance, where a standard initialisation starts (PoorInitialisation's
    /// first-loss check), and the higher of the two is used.
    /// </summary>
    public double StartLoss => RiseFrom(InitialLoss);

    private double RiseFrom(double loss) => StartsAtInitialisation || !double.IsFinite(ChanceLoss) ? loss : Math.Max(loss, ChanceLoss);

    private Symptoms Judge(double loss, double smoothed)
    {
        if (Current.Loss is null) return Symptoms.None;
        if (!double.IsFinite(loss)) return Symptoms.Diverging;
        // Before a smoothed loss exists, only an acute blow-up counts: ten times the first loss (after a resume, or chance if higher).
        if (Count < SmoothOver) return double.IsFinite(_firstLosses[0]) && _firstLossCount > 0 && loss > 10 * RiseFrom(_firstLosses[0]) ? Symptoms.Diverging : Symptoms.None;
        if (!double.IsFinite(InitialLoss) || !double.IsFinite(smoothed)) return Symptoms.None;
        var s = Symptoms.None;
        double start = StartLoss;
        // Risen 50% above its start, or four times its best after having been low: no optimiser noise does that.
        if (smoothed > 1.5 * start || (smoothed > 0.5 * start && smoothed > 4 * MinSmoothed)) s |= Symptoms.Diverging;
        if (WarmedUp && smoothed > 0.9 * ReferenceLoss) s |= Symptoms.Stalled;
        if (Count >= 2 * Window && Smoothed[Window] is var before && double.IsFinite(before)
            && before - smoothed < 0.02 * before && smoothed > 0.25 * ReferenceLoss) s |= Symptoms.Slow;
        return s;
    }

    /// <summary>|net change| / path length of the smoothed loss over the window: near 0 when it goes back and forth.</summary>
    public double LossEfficiency()
    {
        int n = Math.Min(Window, Smoothed.Count - 1);
        if (n < 2) return 1;
        double path = 0;
        for (int i = 0; i < n; i++) path += Math.Abs(Smoothed[i] - Smoothed[i + 1]);
        return path == 0 ? 1 : Math.Abs(Smoothed[0] - Smoothed[n]) / path;
    }

    /// <summary>std / |mean| of the raw loss over the window (NaN when a value is not finite).</summary>
    public double LossSpread()
    {
        int n = Math.Min(Window, Loss.Count);
        if (n < 2) return 0;
        double sum = 0, sq = 0;
        for (int i = 0; i < n; i++) { sum += Loss[i]; sq += Loss[i] * Loss[i]; }
        double mean = sum / n;
        return Math.Sqrt(Math.Max(0, sq / n - mean * mean)) / Math.Abs(mean);
    }

    /// <summary>The largest finite value among a ring's latest <paramref name="n"/> (NaN if none).</summary>
    public double MaxOf(Ring ring, int n)
    {
        double max = double.NaN;
        for (int i = 0; i < Math.Min(n, ring.Count); i++)
            if (double.IsFinite(ring[i]) && !(ring[i] <= max)) max = ring[i];
        return max;
    }

    /// <summary>The median of a ring's latest <paramref name="n"/> finite values (NaN if none).</summary>
    public double MedianOf(Ring ring, int n)
    {
        var span = ring.Latest(n, _scratch);
        int k = 0;
        foreach (double v in span) if (double.IsFinite(v)) _scratch[k++] = v;
        return Median(_scratch.AsSpan(0, k));
    }

    /// <summary>The q-quantile (0..1) of a set of values (sorts a copy; used when a finding is written, not per step).</summary>
    public static double Quantile(IEnumerable<double> values, double q)
    {
        var v = values.Where(double.IsFinite).Order().ToArray();
        if (v.Length == 0) return double.NaN;
        double pos = q * (v.Length - 1);
        int lo = (int)Math.Floor(pos), hi = Math.Min(lo + 1, v.Length - 1);
        return v[lo] + (v[hi] - v[lo]) * (pos - lo);
    }

    public static double Median(Span<double> values)
    {
        if (values.Length == 0) return double.NaN;
        values.Sort();
        int m = values.Length / 2;
        return values.Length % 2 == 1 ? values[m] : 0.5 * (values[m - 1] + values[m]);
    }

    private double SmoothedLoss()
    {
        var span = Loss.Latest(SmoothOver, _scratch);
        foreach (double v in span) if (!double.IsFinite(v)) return double.NaN;
        return Median(span);
    }

    /// <summary>The symptoms as evidence, for a finding's record.</summary>
    public Evidence SymptomEvidence() => SymptomNow.ToEvidence();

    /// <summary>The figures behind <see cref="SymptomEvidence"/>, kept by a detector that writes its finding later.</summary>
    public SymptomState SymptomNow => new(Symptoms, LatestSmoothed, StartLoss, ReferenceLoss, First?.Step ?? 1, double.IsFinite(ChanceLoss));

    /// <summary>What <see cref="StartLoss"/> is, for a finding's text.</summary>
    public string StartLossName => SymptomState.StartName(First?.Step ?? 1, double.IsFinite(ChanceLoss));

    /// <summary>A value rounded to one significant digit, as a person would type it ("3e-3").</summary>
    public static string Round1(double value)
    {
        if (!(value > 0) || !double.IsFinite(value)) return value.ToString("G2", System.Globalization.CultureInfo.InvariantCulture);
        double exp = Math.Floor(Math.Log10(value));
        double mant = Math.Round(value / Math.Pow(10, exp));
        if (mant >= 10) { mant = 1; exp++; }
        return exp is >= -2 and <= 3 ? (mant * Math.Pow(10, exp)).ToString("G3", System.Globalization.CultureInfo.InvariantCulture) : $"{mant}e{exp}";
    }
}

/// <summary>The loss symptoms of one step and the losses they were judged on (<see cref="RunHistory.StartLoss"/>, <see cref="RunHistory.ReferenceLoss"/>).</summary>
internal readonly record struct SymptomState(Symptoms Symptoms, double Smoothed, double StartLoss, double ReferenceLoss, long FirstStep, bool Chance)
{
    public Evidence ToEvidence()
    {
        string what = Symptoms == Symptoms.None ? "no loss symptom" : $"loss symptom {Symptoms}";
        bool diverging = (Symptoms & Symptoms.Diverging) != 0;
        return new Evidence($"{what}: smoothed loss / {(diverging ? StartName(FirstStep, Chance) : ReferenceName(FirstStep, Chance))}",
            Smoothed / (diverging ? StartLoss : ReferenceLoss), diverging ? 1.5 : 0.9, "symptom gate (AUTOTRAINER ICSE'21: gradient rules only when training is unwell)");
    }

    /// <summary>What <see cref="RunHistory.StartLoss"/> is, for records whose first is step <paramref name="firstStep"/>.</summary>
    public static string StartName(long firstStep, bool chance) =>
        RunHistory.IsStartOfTraining(firstStep) ? "starting loss"
        : chance ? $"the higher of chance, ln(classes), and the loss at step {firstStep}, where the records start"
        : $"loss at step {firstStep}, where the records start";

    private static string ReferenceName(long firstStep, bool chance) =>
        RunHistory.IsStartOfTraining(firstStep) ? "reference loss (start or chance, the lower)"
        : chance ? $"chance level ln(classes) (the records start at step {firstStep}, after training began)"
        : $"loss at step {firstStep}, where the records start";
}
