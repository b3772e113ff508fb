using GradFlow.NN;
using GradFlow.Optim;

namespace GradFlow.Diagnostics;

/// <summary>
/// Names what is wrong with a training run, shows the evidence and gives the fix. It reads the monitor's step records
/// (offline with <see cref="Diagnose"/>, online with <see cref="Attach"/>) and runs one small detector per
/// <see cref="FindingKind"/>. Gradient rules fire only while the loss shows a symptom (diverging, stalled, slow) and
/// after their condition has held over a window, judged against the run's own history; the thresholds and their
/// sources are in docs/DOCTOR.md. Per step the doctor does O(layers) work on fixed-size rings; while a condition
/// holds, the finding's text is written only when it is raised, escalates or is read. A finding is raised once per
/// kind (later steps update it) and raised again one severity up when it persists (<see cref="DoctorOptions.EscalateAfterWindows"/>).
/// </summary>
public sealed class Doctor : IDisposable
{
    private readonly RunHistory _run;
    private readonly Detector[] _detectors;
    private readonly ZeroGradient _zero;
    private readonly Dictionary<FindingKind, Known> _findings = [];
    private readonly List<FindingKind> _order = [];
    private GradientMonitor? _monitor;
    private GraphProbe? _probe;
    private IDisposable? _probeRegistration;
    private AnomalyMode? _anomaly;
    private bool _anomalyUsed;
    private AutoFix? _autoFix;
    private readonly List<Finding> _actions = [];
    private readonly bool[] _heldNow = new bool[Enum.GetValues<FindingKind>().Length]; // kinds whose condition held this step

    /// <summary>A doctor fed by hand with <see cref="Observe"/>.</summary>
    public Doctor(DoctorOptions? options = null)
    {
        Options = options ?? new DoctorOptions();
        Options.Validate();
        _run = new RunHistory(Options);
        int w = Options.Window;
        double p = Options.Persistence;
        _detectors =
        [
            new NonFiniteValues(), new ExplodingGradients(w, p), new ExplodingThroughTime(p), new VanishingGradients(w, p),
            new DeadRelu(w, p),
            new SaturatedActivations(p), new RegularisationDominates(w, p), // before the learning rate: collapsed weights inflate the update ratio
            new LearningRateTooHigh(w, p), new LearningRateTooLow(w, p),
            new VanishingThroughTime(p), // after the learning rate: it stands aside when steps too small to move any weight explain the symptom
            new PoorInitialisation(), new GradientAccumulation(w, p), _zero = new ZeroGradient(w, p),
            new RanksDisagree(w, p),
            new NotLearning(w, p), // last: it stands aside when another detector has found a cause
        ];
    }

    /// <summary>The options in force.</summary>
    public DoctorOptions Options { get; }

    /// <summary>Raised when a finding is first made, and again when it escalates (online: as training runs).</summary>
    public event Action<Finding>? FindingRaised;

    /// <summary>The findings so far, one per kind (its latest evidence), in the order they were first raised.</summary>
    public IReadOnlyList<Finding> Findings => _order.Select(k => Latest(_findings[k])).Concat(_actions).ToArray();

    /// <summary>
    /// A finding raised so far. While its condition keeps holding only the count, the severity and the detector that
    /// can write its latest finding change: the text is written when it is read (a steady step allocates nothing).
    /// </summary>
    private sealed class Known(Finding finding)
    {
        public Finding? Finding = finding;
        public Detector? Pending;
        public readonly long FirstStep = finding.FirstStep;
        public Severity Severity = finding.Severity;
        public long Held = 1;
    }

    private static Finding Latest(Known known)
    {
        if (known.Pending is { } detector)
        {
            known.Finding = detector.Build() with { FirstStep = known.FirstStep, Severity = known.Severity };
            known.Pending = null;
        }
        return known.Finding!;
    }

    /// <summary>
    /// Lets the doctor apply the safe remedies itself (opt-in): roll back to the last healthy in-memory state after a
    /// non-finite step, lower the learning rate on an explosion or a divergence, and clip once the norms exploded (call
    /// <see cref="ClipGradients"/> between backward and the optimiser step). Every action is raised as an
    /// <see cref="FindingKind.AutoFixApplied"/> finding.
    /// </summary>
    public void EnableAutoFix(Module model, Optimizer optimizer, AutoFixOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(optimizer);
        options ??= new AutoFixOptions();
        options.Validate();
        _autoFix = new AutoFix(model, optimizer, options);
        _autoFix.Snapshot(_run.Count);
    }

    /// <summary>The max norm auto-fix clips at, once it decided to (null: no clipping).</summary>
    public double? ClipNorm => _autoFix?.ClipNorm;

    /// <summary>Clips the monitored gradients when auto-fix has turned clipping on; call after backward, before the optimiser step.</summary>
    public void ClipGradients()
    {
        if (_autoFix?.ClipNorm is { } max && _monitor is { } monitor) monitor.ClipGradNorm(max);
    }

    /// <summary>The loss symptoms the latest step showed.</summary>
    public Symptoms Symptoms => _run.Symptoms;

    /// <summary>
    /// Whether the records seen start at the start of training (the first is step 1), so that the initialisation is judged;
    /// false for a resumed run's (a monitor attached with <see cref="MonitorOptions.StartStep"/>), whose first record shows
    /// trained weights: no finding then claims anything of the initialisation (docs/DOCTOR.md, "Resumed runs"). Null before
    /// the first record.
    /// </summary>
    public bool? StartsAtInitialisation => _run.First is null ? null : _run.StartsAtInitialisation;

    /// <summary>The step number of the first record seen, or null before it.</summary>
    public long? FirstStep => _run.First?.Step;

    /// <summary>
    /// Diagnoses a finished run from its step records (in step order), with curvature samples if a probe measured
    /// any. The findings are those the online doctor would have raised, minus the live-only probes (the graph and
    /// input checks and the op that made a NaN).
    /// </summary>
    public static IReadOnlyList<Finding> Diagnose(IEnumerable<StepRecord> steps, DoctorOptions? options = null, IEnumerable<CurvatureSample>? curvature = null)
    {
        ArgumentNullException.ThrowIfNull(steps);
        var doctor = new Doctor(options);
        var samples = curvature?.OrderBy(c => c.Step).ToList() ?? [];
        int next = 0;
        foreach (var step in steps)
        {
            ArgumentNullException.ThrowIfNull(step, nameof(steps));
            while (next < samples.Count && samples[next].Step <= step.Step) doctor.AddCurvature(samples[next++]);
            doctor.Observe(step);
        }
        return doctor.Findings;
    }

    /// <summary>
    /// Attaches a doctor to a monitor: it judges every recorded step as it is made and raises <see cref="FindingRaised"/>.
    /// With <paramref name="probes"/> it also watches the recorded graph for the first steps (a probability fed to a
    /// logit loss, unnormalised inputs) and, after a non-finite step, turns on anomaly mode for one step to name the op
    /// that made the NaN. Call on the training thread (the probes, like the monitor, watch that thread's ops); dispose to detach.
    /// </summary>
    public static Doctor Attach(GradientMonitor monitor, DoctorOptions? options = null, bool probes = true)
    {
        ArgumentNullException.ThrowIfNull(monitor);
        var doctor = new Doctor(options) { _monitor = monitor };
        doctor._run.DetailInterval = monitor.Options.DetailEvery; // offline it is learnt from the records' gaps
        monitor.StepRecorded += doctor.Observe;
        if (probes)
        {
            doctor._probe = new GraphProbe(steps: 3);
            doctor._probeRegistration = Autograd.AddObserver(doctor._probe);
        }
        return doctor;
    }

    /// <summary>
    /// Lets the doctor tell a saddle from a minimum from a plateau when the gradient goes to zero: the first time the
    /// zero-gradient condition holds it builds the exact Hessian of <paramref name="loss"/> (a closure over a fixed batch)
    /// at the model's weights and runs <see cref="StationaryPoint.Classify"/> once (one Lanczos run, about 2 x 30
    /// Hessian-vector products), with the monitor looking away. A live-only probe: offline, a curvature sample serves.
    /// </summary>
    public void AddStationaryProbe(Func<Tensor> loss, NN.Module model)
    {
        ArgumentNullException.ThrowIfNull(loss);
        ArgumentNullException.ThrowIfNull(model);
        _zero.Probe = () =>
        {
            StationaryPointReport Run() => StationaryPoint.Classify(CurvatureOperator.Hessian(loss, model));
            return _monitor is { } m ? m.Unobserved(Run) : Run();
        };
    }

    /// <summary>Curvature a probe measured (the latest sample is used by the learning-rate and stationary-point rules).</summary>
    public void AddCurvature(CurvatureSample sample)
    {
        ArgumentNullException.ThrowIfNull(sample);
        if (!double.IsFinite(sample.LambdaMax)) throw new ArgumentException($"{nameof(Doctor)}.{nameof(AddCurvature)}: LambdaMax must be finite, got {sample.LambdaMax}.", nameof(sample));
        _run.Curvature = sample;
    }

    /// <summary>Judges one recorded step (steps must come in order).</summary>
    public void Observe(StepRecord step)
    {
        ArgumentNullException.ThrowIfNull(step);
        _run.Update(step);
        DrainProbes(step);
        Array.Clear(_heldNow);
        foreach (var detector in _detectors)
            if (detector.Hold(_run, step) is { } severity)
            {
                _heldNow[(int)detector.Kind] = true;
                Raise(detector.Kind, severity, detector, null);
            }
        if (_autoFix?.After(_run, step, _heldNow[(int)FindingKind.ExplodingGradients], _heldNow[(int)FindingKind.LearningRateTooHigh]) is { } action)
            Raise(action.Kind, action.Severity, null, action);
        if (_findings.ContainsKey(FindingKind.NonFiniteValues) && !_anomalyUsed && _probe is not null) ArmAnomaly();
    }

    /// <summary>Records a finding made outside the detectors (an auto-fix action); de-duplicated like the rest.</summary>
    public void Report(Finding finding)
    {
        ArgumentNullException.ThrowIfNull(finding);
        Raise(finding.Kind, finding.Severity, null, finding);
    }

    /// <summary>A finding of <paramref name="kind"/> holds now: given, or for <paramref name="source"/> to write when it is seen.</summary>
    private void Raise(FindingKind kind, Severity found, Detector? source, Finding? finding)
    {
        _run.Raised[(int)kind] = true;
        if (kind == FindingKind.AutoFixApplied)
        {
            _actions.Add(finding!); // each action is its own finding
            FindingRaised?.Invoke(finding!);
            return;
        }
        if (!_findings.TryGetValue(kind, out var known))
        {
            finding ??= source!.Build();
            _findings[kind] = new Known(finding);
            _order.Add(kind);
            FindingRaised?.Invoke(finding);
            return;
        }
        long held = known.Held + 1;
        var severity = known.Severity;
        // Only a fault escalates: an Info finding (a minimum reached, the effect of a fault another finding names) stays Info.
        bool escalate = kind != FindingKind.AutoFixApplied && severity == Severity.Warning
                        && held >= (long)Options.EscalateAfterWindows * Options.Window * ((int)severity + 1);
        if (found > severity) (severity, escalate) = (found, true);
        else if (escalate) severity++;
        known.Held = held;
        known.Severity = severity;
        if (finding is null && !escalate)
        {
            known.Pending = source; // written when read
            return;
        }
        known.Finding = (finding ?? source!.Build()) with { FirstStep = known.FirstStep, Severity = severity };
        known.Pending = null;
        if (escalate) FindingRaised?.Invoke(known.Finding);
    }

    private void DrainProbes(StepRecord step)
    {
        if (_probe is not null)
        {
            foreach (var (_, make) in _probe.Pending) Report(make(step.Step));
            _probe.Pending.Clear();
            _run.OutputActivationScopes.UnionWith(_probe.OutputActivationScopes);
            if (_probe.Done && _probeRegistration is not null)
            {
                _probeRegistration.Dispose();
                _probeRegistration = null;
            }
        }
        if (_anomaly is not null)
        {
            var reports = _anomaly.Reports;
            _anomaly.Dispose();
            _anomaly = null;
            if (reports.Count > 0 && _findings.TryGetValue(FindingKind.NonFiniteValues, out var known))
            {
                var r = reports[0];
                var latest = Latest(known);
                var evidence = latest.Evidence.Append(new Evidence($"{r.Phase} op {r.Op}{(r.Module is null ? "" : $" in {r.Module}")} made {r.NaNCount} NaN and {r.InfCount} Inf" +
                    (r.Inputs.Count > 0 ? $" from {string.Join("; ", r.Inputs)}" : ""), r.NaNCount + r.InfCount, 0, "AnomalyMode, armed for the step after the first non-finite one")).ToList();
                known.Finding = latest with
                {
                    Evidence = evidence,
                    Layers = r.Module is null ? latest.Layers : [r.Module],
                    Title = $"{latest.Title}; {r.Op}{(r.Module is null ? "" : $" in {r.Module}")} made the first one",
                };
            }
        }
    }

    private void ArmAnomaly()
    {
        _anomalyUsed = true;
        _anomaly = AnomalyMode.Enable(throwOnAnomaly: false, captureStacks: false);
    }

    /// <summary>Detaches from the monitor and the engine.</summary>
    public void Dispose()
    {
        if (_monitor is not null) _monitor.StepRecorded -= Observe;
        _monitor = null;
        _probeRegistration?.Dispose();
        _probeRegistration = null;
        _anomaly?.Dispose();
        _anomaly = null;
    }
}
