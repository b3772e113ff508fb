using System.Globalization;
using GradFlow.Data;
using GradFlow.Diagnostics;
using GradFlow.Distributed;
using GradFlow.NN;
using GradFlow.Optim;
using GradFlow.Reporting;
using GradFlow.Reporting.Html;
using GradFlow.Training;
using Spectre.Console;

namespace GradFlow.Cli;

/// <summary>Where a training run writes, and what watches it; free to change between a run and its resumption.</summary>
internal sealed record TrainOutputs
{
    public string? LogDir { get; init; }
    public string? TensorBoardDir { get; init; }
    public string? CheckpointDir { get; init; }
    public int CheckpointEvery { get; init; } = 1;
    public string? ReportPath { get; init; }
    public bool Monitor { get; init; } = true;
    public bool Doctor { get; init; } = true;
    public int SharpnessEvery { get; init; }
}

/// <summary>
/// The `gradflow train` loop: mini-batches in a seeded order, evaluation after each epoch, checkpoints every N epochs and
/// on interruption. A checkpoint holds the model, optimiser, schedule, the generators and the settings; the shuffle
/// generator is saved as it was when the interrupted epoch began, so a resumed run draws the same order, skips the
/// batches already done and continues bit for bit as the uninterrupted run would.
/// </summary>
internal sealed class Trainer
{
    /// <summary>Exit code of a run stopped by Ctrl+C (128 + SIGINT, as shells report it) after saving its checkpoint.</summary>
    public const int Interrupted = 130;

    public const string SettingsKey = "gradflow.train";
    private const int EvalBatch = 1000;

    private readonly TrainSettings _s;
    private readonly TrainOutputs _o;
    private readonly IAnsiConsole _console;
    private readonly Generator _shuffle, _dropout;
    private readonly Module _model;
    private readonly Optimizer _optimizer;
    private readonly ILRScheduler? _scheduler;
    private readonly Action _scheduleStep;
    private readonly TensorDataset _train, _test;
    private readonly string _dataName;
    private readonly int _stepsPerEpoch;
    private readonly ModelSpec _spec;
    private readonly Communicator? _world; // under mpirun (gradflow train --nproc N): this rank's communicator
    private readonly DistributedDataParallel? _ddp;
    private GradientMonitor? _monitor;

    public Trainer(TrainSettings settings, TrainOutputs outputs, IAnsiConsole console, Communicator? world = null)
    {
        (_s, _o, _console, _world) = (settings, outputs, console, world);
        _spec = settings.ParseSpec();
        (_train, _test, _dataName) = settings.LoadData();
        CheckData(_train, "training");
        CheckData(_test, "test");
        ulong seed = (ulong)settings.Seed;
        _shuffle = new Generator(seed + 1);
        _dropout = new Generator(seed + 2);
        _model = _spec.Build(new Generator(seed), _dropout);
        _optimizer = settings.CreateOptimizer(_model);
        if (world is not null)
        {
            if (settings.BatchSize < world.Size)
                throw new CliException($"--batch-size {settings.BatchSize} is the batch of all {world.Size} processes together; give at least one example per process.");
            // Every rank built the same weights from the same seed; the broadcast also checks the ranks agree on the model.
            _ddp = new DistributedDataParallel(_model, world);
        }
        _stepsPerEpoch = (_train.Count + settings.BatchSize - 1) / settings.BatchSize;
        (_scheduler, _scheduleStep) = settings.CreateScheduler(_optimizer, _stepsPerEpoch);
    }

    private IReadOnlyDictionary<string, Generator> Generators(Generator shuffle) =>
        new Dictionary<string, Generator> { ["shuffle"] = shuffle, ["dropout"] = _dropout };

    private void CheckData(TensorDataset data, string which)
    {
        int features = data.Count == 0 ? 0 : data.Inputs.NumEl / data.Count;
        if (features != _spec.InputFeatures)
            throw new CliException($"the model takes {_spec.InputFeatures} input values per example, but the {which} set of {_s.Data} has {features}; " +
                                   $"change the model's input to match (e.g. mlp:{features}-...).");
        if (data.Targets.DType != DType.Int64) throw new CliException($"the {which} set of {_s.Data} has non-integer labels; train classifies, so labels must be classes 0..N-1.");
        long max = data.Count == 0 ? 0 : (long)data.Targets.Max().Item();
        if (max >= _spec.Outputs)
            throw new CliException($"the {which} set of {_s.Data} has labels up to {max}, but the model has {_spec.Outputs} outputs; make its last layer {max + 1}.");
    }

    /// <summary>Restores a checkpoint's state; returns its step.</summary>
    public long Restore(Checkpoint checkpoint)
    {
        checkpoint.Restore(_model, _optimizer, _scheduler, Generators(_shuffle));
        long total = (long)_s.Epochs * _stepsPerEpoch;
        if (checkpoint.Step > total)
            throw new CliException($"the checkpoint is at step {checkpoint.Step}, past the {total} steps of {_s.Epochs} epochs; give more --epochs.");
        return checkpoint.Step;
    }

    /// <summary>Under mpirun: asks every rank to stop after the same step and save (see <see cref="DistributedDataParallel.RequestStop"/>).</summary>
    public void RequestStop() => _ddp?.RequestStop();

    public int Run(long startStep, CancellationToken token)
    {
        using var monitor = _o.Monitor ? GradientMonitor.Attach(_model, _optimizer, new MonitorOptions { StartStep = startStep }) : null;
        using var doctor = monitor is not null && _o.Doctor ? Diagnostics.Doctor.Attach(monitor, new DoctorOptions { Classes = _spec.Outputs }) : null;
        _monitor = monitor;
        if (monitor is not null) _ddp?.Watch(monitor); // rank 0's run log holds every rank's gradient norms
        var records = new List<StepRecord>();
        if (monitor is not null && _o.ReportPath is not null) monitor.StepRecorded += records.Add;
        if (monitor is not null && _o.SharpnessEvery > 0) monitor.AddSharpnessProbe(new SharpnessProbe(ProbeLoss, _model, _optimizer, _o.SharpnessEvery));
        if (monitor is not null && _o.LogDir is not null) CutRunLogAfter(Path.Combine(_o.LogDir, "runlog.jsonl"), startStep);
        using var runLog = monitor is not null && _o.LogDir is not null
            ? RunLog.Attach(monitor, Path.Combine(_o.LogDir, "runlog.jsonl"), new RunLogWriterOptions { Metadata = _s.ToJson() })
            : null;
        using var tensorBoard = monitor is not null && _o.TensorBoardDir is not null ? TensorBoard.Attach(monitor, _o.TensorBoardDir) : null;

        long total = (long)_s.Epochs * _stepsPerEpoch;
        _console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"gradflow train: {_spec} ({_model.ParameterCount():N0} parameters) on {_dataName} ({_train.Count} train, {_test.Count} test)"));
        _console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{_s.Optimizer} lr={_s.LearningRate} {_s.Schedule}{(_s.Warmup > 0 ? $" after {_s.Warmup} warm-up steps" : "")}, batch {_s.BatchSize}, " +
            $"{_s.Epochs} epochs ({total} steps), seed {_s.Seed}{(startStep > 0 ? $"; resumed at step {startStep}" : "")}"));
        int code = TrainProgress.Run(_console, startStep, total, progress => Loop(startStep, progress, token));

        if (doctor is not null)
        {
            var findings = doctor.Findings;
            _console.WriteLine(findings.Count == 0 ? $"doctor: no problem found in {monitor!.StepCount - startStep} steps" : $"doctor: {findings.Count} finding(s)");
            foreach (var f in findings) _console.WriteLine(f.ToString());
            if (doctor is { StartsAtInitialisation: false, FirstStep: { } first })
                _console.WriteLine($"doctor: this run resumed at step {startStep} (first record: step {first}); the initialisation was not judged, only what it watched since");
        }
        if (_o.LogDir is not null && monitor is not null) _console.WriteLine($"run log: {Path.Combine(_o.LogDir, "runlog.jsonl")}");
        if (_o.TensorBoardDir is not null && monitor is not null) _console.WriteLine($"TensorBoard: tensorboard --logdir {_o.TensorBoardDir}");
        if (_o.ReportPath is not null && records.Count > 0)
        {
            var run = new ReportRun(_spec.ToString(), records, RunMetadata()) { Findings = doctor?.Findings ?? [] };
            monitor!.Suspend(); // the curvature passes below are not training steps
            if (_o.SharpnessEvery > 0) run = WithCurvature(run);
            HtmlReport.Write(_o.ReportPath, [run]);
            _console.WriteLine($"report: {_o.ReportPath}");
        }
        return code;
    }

    // The probes' fixed batch: the first examples of the training set, through the loss the optimiser descends.
    // BatchNorm normalises with the batch's statistics as in training: with its running statistics the biases before
    // it, which training never moves (the batch mean cancels them) and Adam therefore preconditions by 1/eps, read as
    // curvature 10^2-10^3 x the stability threshold (docs/CURVATURE.md). The running statistics the forward updates
    // are put back. Dropout is off, so a probe draws no mask and the training's bits stay those of a run without probes.
    private Tensor ProbeLoss()
    {
        int n = Math.Min(_train.Count, Math.Max(_s.BatchSize, 256));
        bool training = _model.Training;
        var norms = _model.Modules().OfType<BatchNormBase>().ToArray();
        var saved = norms.SelectMany(m => m.Buffers()).Select(b => (Buffer: b, Value: b.Detach().Clone())).ToArray();
        _model.Eval();
        foreach (var norm in norms) norm.Train();
        try
        {
            return Functional.CrossEntropy(_model.Call(_train.Inputs.Narrow(0, 0, n)), _train.Targets.Narrow(0, 0, n));
        }
        finally
        {
            _model.Train(training);
            using (Autograd.NoGrad())
                foreach (var (buffer, value) in saved) buffer.CopyFrom(value);
        }
    }

    // At the end of the run: the Hessian's spectral density and two loss slices through the final weights, for the report.
    private ReportRun WithCurvature(ReportRun run)
    {
        var alphas = LossLandscape.Range(-1, 1, 21);
        return run with
        {
            Density = Spectrum.Density(CurvatureOperator.Hessian(ProbeLoss, _model), steps: 30),
            Landscape = new Dictionary<string, LossSlice>
            {
                ["direction 1"] = LossLandscape.Slice(ProbeLoss, _model, LossLandscape.FilterNormalizedDirection(_model, new Generator(1)), alphas),
                ["direction 2"] = LossLandscape.Slice(ProbeLoss, _model, LossLandscape.FilterNormalizedDirection(_model, new Generator(2)), alphas),
            },
        };
    }

    /// <summary>
    /// A run that crashed after its last checkpoint logged steps the resumed run will take again: cut the log before the
    /// first step past <paramref name="step"/>, so every step number appears once. (Ctrl+C leaves nothing to cut.)
    /// </summary>
    internal static void CutRunLogAfter(string path, long step)
    {
        if (!File.Exists(path)) return;
        long cut = -1, offset = 0;
        using (var file = File.OpenRead(path))
        using (var reader = new StreamReader(file, new System.Text.UTF8Encoding(false), detectEncodingFromByteOrderMarks: false))
        {
            for (string? line; (line = reader.ReadLine()) is not null; offset += System.Text.Encoding.UTF8.GetByteCount(line) + 1)
            {
                if (StepOf(line) is > 0 and var s && s > step)
                {
                    cut = offset;
                    break;
                }
            }
        }
        if (cut < 0) return;
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Write);
        stream.SetLength(cut);
    }

    // The "step" of a step line, or 0 (the header, a torn line; the writer deals with those).
    private static long StepOf(string line)
    {
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(line);
            return doc.RootElement.TryGetProperty("type", out var t) && t.ValueEquals("step") && doc.RootElement.TryGetProperty("step", out var s) && s.TryGetInt64(out long v) ? v : 0;
        }
        catch (System.Text.Json.JsonException)
        {
            return 0;
        }
    }

    private Dictionary<string, string> RunMetadata() => new()
    {
        ["model"] = _spec.ToString(), ["data"] = _s.Data, ["optimizer"] = _s.Optimizer,
        ["lr"] = _s.LearningRate.ToString("R", CultureInfo.InvariantCulture), ["schedule"] = _s.Schedule,
        ["batch size"] = _s.BatchSize.ToString(CultureInfo.InvariantCulture), ["seed"] = _s.Seed.ToString(CultureInfo.InvariantCulture),
    };

    private int Loop(long startStep, TrainProgress progress, CancellationToken token)
    {
        int n = _train.Count;
        long step = startStep;
        int firstEpoch = (int)(step / _stepsPerEpoch), batch = (int)(step % _stepsPerEpoch);
        var arena = new TensorArena();
        for (int epoch = firstEpoch; epoch < _s.Epochs; epoch++, batch = 0)
        {
            var epochStart = _shuffle.GetState();
            var order = _shuffle.Permutation(n);
            _model.Train();
            double lossSum = 0;
            long correct = 0, seen = 0;
            for (; batch < _stepsPerEpoch; batch++)
            {
                int start = batch * _s.BatchSize, count = Math.Min(n - start, _s.BatchSize);
                double weight = 1; // this rank's loss scale: the allreduce's average of the ranks' gradients is then the global batch's
                if (_world is not null)
                {
                    // --batch-size is the global batch: each rank takes its share of it, so N ranks train on the same
                    // examples per step as one process; an uneven share (the last batch) is weighted by its size.
                    int lo = start + count * _world.Rank / _world.Size, hi = start + count * (_world.Rank + 1) / _world.Size;
                    weight = (double)(hi - lo) * _world.Size / count;
                    if (hi == lo) (lo, hi) = (start, start + 1); // a last batch smaller than the ranks: a weight-0 example rather than nothing
                    (start, count) = (lo, hi - lo);
                }
                using (arena.Step())
                {
                    var rows = Tensor.FromArray(Array.ConvertAll(order[start..(start + count)], i => (long)i));
                    var (x, y) = (_train.Inputs.IndexSelect(0, rows), _train.Targets.IndexSelect(0, rows));
                    _optimizer.ZeroGrad();
                    var logits = _model.Call(x);
                    var loss = Functional.CrossEntropy(logits, y);
                    (weight == 1 ? loss : loss * weight).Backward();
                    if (_s.ClipNorm is { } clip)
                    {
                        if (_monitor is not null) _monitor.ClipGradNorm(clip); // the monitor records the norms it clipped
                        else GradientClipping.ClipGradNorm(_model.Parameters(), clip);
                    }
                    _optimizer.Step();
                    _scheduleStep();
                    lossSum += loss.Item() * count;
                    using (Autograd.NoGrad()) correct += (long)logits.ArgMax(1).Eq(y).Sum().Item();
                }
                step++;
                seen += count;
                progress.Step(step, epoch + 1, _s.Epochs, lossSum / seen, (double)correct / seen, count);
                // Under mpirun a stop is agreed by all ranks at a step's header, so every rank stops after the same step.
                bool stop = _ddp is not null ? _ddp.StopRequested : token.IsCancellationRequested;
                if (stop && step < (long)_s.Epochs * _stepsPerEpoch)
                {
                    // At an epoch's end the next epoch's order is drawn from the generator as it is now.
                    var shuffleState = batch + 1 == _stepsPerEpoch ? _shuffle.GetState() : epochStart;
                    string path = _ddp is null ? SaveCheckpoint(step, shuffleState, "interrupted", InterruptDirectory())
                        : SaveCheckpointFromRoot(step, shuffleState, "interrupted", InterruptDirectory());
                    progress.Line($"interrupted at step {step}: checkpoint saved to {path}; continue with --resume {path}");
                    return Interrupted;
                }
            }
            double testAccuracy = Evaluate(_test);
            progress.Epoch(step, epoch + 1, _s.Epochs, lossSum / Math.Max(seen, 1), (double)correct / Math.Max(seen, 1), testAccuracy);
            if (_o.CheckpointDir is { } dir && ((epoch + 1) % _o.CheckpointEvery == 0 || epoch + 1 == _s.Epochs))
                progress.Line($"checkpoint: {(_ddp is null ? SaveCheckpoint(step, _shuffle.GetState(), "epoch", dir) : SaveCheckpointFromRoot(step, _shuffle.GetState(), "epoch", dir))}");
        }
        return 0;
    }

    private string InterruptDirectory() => _o.CheckpointDir ?? _o.LogDir ?? "gradflow-checkpoints";

    private string SaveCheckpoint(long step, ulong[] shuffleState, string reason, string dir)
    {
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, CheckpointName(step));
        Capture(step, shuffleState, reason).Save(path);
        return path;
    }

    // Collective: rank 0 writes, every rank captures its own state, and all return once the file holds every rank's state
    // (or all fail alike: a failed write, ranks whose weights parted).
    private string SaveCheckpointFromRoot(long step, ulong[] shuffleState, string reason, string dir)
    {
        string path = Path.Combine(dir, CheckpointName(step));
        _ddp!.SaveCheckpoint(path, _ =>
        {
            if (_world!.IsRoot) Directory.CreateDirectory(dir);
            return Capture(step, shuffleState, reason);
        });
        return path;
    }

    private Checkpoint Capture(long step, ulong[] shuffleState, string reason)
    {
        var shuffle = new Generator(0);
        shuffle.SetState(shuffleState);
        var checkpoint = Checkpoint.Capture(_model, _optimizer, _scheduler, Generators(shuffle), step);
        checkpoint.Metadata[SettingsKey] = _s.ToJson().ToJsonString();
        checkpoint.Metadata["reason"] = reason;
        return checkpoint;
    }

    public static string CheckpointName(long step) => string.Create(CultureInfo.InvariantCulture, $"step-{step:D8}.safetensors");

    /// <summary>Test accuracy in evaluation mode, in batches (a CNN's activations for 10,000 images at once would not fit).</summary>
    private double Evaluate(TensorDataset data)
    {
        _model.Eval();
        using var _ = Autograd.NoGrad();
        long correct = 0;
        for (int start = 0; start < data.Count; start += EvalBatch)
        {
            int count = Math.Min(EvalBatch, data.Count - start);
            var logits = _model.Call(data.Inputs.Narrow(0, start, count));
            correct += (long)logits.ArgMax(1).Eq(data.Targets.Narrow(0, start, count)).Sum().Item();
        }
        _model.Train();
        return (double)correct / Math.Max(data.Count, 1);
    }
}
