using System.CommandLine;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using GradFlow.Distributed;
using GradFlow.Training;
using Spectre.Console;

namespace GradFlow.Cli;

/// <summary>
/// `gradflow train`: a classifier from a model spec or JSON file on a named or IDX/CSV data set, under the monitor and
/// the doctor, with checkpoints, `--resume` and Ctrl+C that saves before it stops. Grammar and examples in docs/TRAIN.md.
/// </summary>
internal static class TrainCommand
{
    private static readonly Option<string?> s_model = new("--model", "-m")
    {
        Description = "The model: a spec such as mlp:784-256-128-10,relu,he,bn or cnn:1x28x28-c16-p-c32-p-10,relu,he,bn, or a JSON file (docs/TRAIN.md)",
    };
    private static readonly Option<string> s_data = new("--data", "-d")
    {
        Description = "digits (embedded), fashion-mnist (Debian's dataset-fashion-mnist), mnist (with --data-dir), a directory of MNIST-layout IDX files, or a CSV file (label last)",
        DefaultValueFactory = _ => "digits",
    };
    private static readonly Option<string?> s_dataDir = new("--data-dir") { Description = "Where fashion-mnist or mnist's IDX files are" };
    private static readonly Option<string?> s_testData = new("--test-data") { Description = "A CSV test set (default: a seeded 20% of --data)" };
    private static readonly Option<string> s_optimizer = new("--optimizer") { Description = "sgd, momentum (SGD with --momentum), adam or adamw", DefaultValueFactory = _ => "momentum" };
    private static readonly Option<double> s_lr = CliApp.DoubleOption("--lr", 0.05, 1e-12, 100, "Learning rate (default 0.05 for sgd and momentum, 0.001 for adam and adamw)");
    private static readonly Option<double> s_momentum = CliApp.DoubleOption("--momentum", 0.9, 0, 0.999999, "Momentum of --optimizer momentum");
    private static readonly Option<double> s_weightDecay = CliApp.DoubleOption("--weight-decay", 0, 0, 10, "Weight decay (default 0; adamw 0.01)");
    private static readonly Option<string> s_schedule = new("--schedule") { Description = "Learning-rate schedule per step: constant, step (x --gamma every --step-epochs) or cosine (to 0 at the end)", DefaultValueFactory = _ => "constant" };
    private static readonly Option<int> s_warmup = CliApp.IntOption("--warmup", 0, 0, 100_000_000, "Linear warm-up steps before the schedule");
    private static readonly Option<int> s_stepEpochs = CliApp.IntOption("--step-epochs", 1, 1, 100_000, "Epochs between decays of --schedule step (default a third of the epochs)");
    private static readonly Option<double> s_gamma = CliApp.DoubleOption("--gamma", 0.1, 1e-6, 1, "Decay factor of --schedule step");
    private static readonly Option<int> s_batchSize = CliApp.IntOption("--batch-size", 64, 1, 100_000, "Mini-batch size");
    private static readonly Option<int> s_epochs = CliApp.IntOption("--epochs", 10, 1, 100_000, "Epochs to train (on --resume: the total, which may be raised)");
    private static readonly Option<double> s_clipNorm = CliApp.DoubleOption("--clip-norm", 1, 1e-12, 1e12, "Clip the gradient's global L2 norm to this (default: no clipping)");
    private static readonly Option<int> s_seed = CliApp.IntOption("--seed", 0, 0, int.MaxValue, "Random seed (weights, order, dropout)");
    private static readonly Option<bool> s_noMonitor = new("--no-monitor") { Description = "Train without the gradient monitor (no run log, TensorBoard, doctor or report)" };
    private static readonly Option<bool> s_noDoctor = new("--no-doctor") { Description = "Keep the monitor but not the doctor" };
    private static readonly Option<string?> s_logDir = new("--log-dir") { Description = "Write the monitor's run log (runlog.jsonl) there; a resumed run appends to it" };
    private static readonly Option<string?> s_tensorBoard = new("--tensorboard") { Description = "Write TensorBoard event files there" };
    private static readonly Option<string?> s_checkpointDir = new("--checkpoint-dir") { Description = "Save checkpoints there (step-NNNNNNNN.safetensors)" };
    private static readonly Option<int> s_checkpointEvery = CliApp.IntOption("--checkpoint-every", 1, 1, 100_000, "Epochs between checkpoints (the last epoch is always saved)");
    private static readonly Option<string?> s_resume = new("--resume") { Description = "Continue from a checkpoint file, or the latest in a directory; settings come from it" };
    private static readonly Option<string?> s_report = new("--report") { Description = "Write the HTML report of the run to this file" };
    private static readonly Option<int> s_sharpnessEvery = CliApp.IntOption("--sharpness-every", 0, 0, 1_000_000,
        "Measure sharpness (top Hessian eigenvalue) against the stability threshold every N steps on a fixed batch; with --report, also the spectral density and loss slices at the end (0: off)");

    private static readonly Option<int> s_nproc = CliApp.IntOption("--nproc", 1, 1, 1024,
        "Data-parallel training in N processes on this machine under Open MPI's mpirun (docs/DISTRIBUTED.md); --batch-size is then the batch of all of them together");

    // The options that define a run, by their settings name; the rest say where output goes.
    private static readonly (string Name, Option Option)[] s_defining =
    [
        ("model", s_model), ("data", s_data), ("data-dir", s_dataDir), ("test-data", s_testData), ("optimizer", s_optimizer), ("lr", s_lr),
        ("momentum", s_momentum), ("weight-decay", s_weightDecay), ("schedule", s_schedule), ("warmup", s_warmup), ("step-epochs", s_stepEpochs),
        ("gamma", s_gamma), ("batch-size", s_batchSize), ("epochs", s_epochs), ("clip-norm", s_clipNorm), ("seed", s_seed),
    ];

    static TrainCommand()
    {
        s_optimizer.AcceptOnlyFromAmong("sgd", "momentum", "adam", "adamw");
        s_schedule.AcceptOnlyFromAmong("constant", "step", "cosine");
    }

    public static Command Create(IAnsiConsole console, CancellationToken cancel)
    {
        var command = new Command("train", "Train a classifier from a model spec on a data set, watched by the gradient monitor and the doctor.")
        {
            s_model, s_data, s_dataDir, s_testData, s_optimizer, s_lr, s_momentum, s_weightDecay, s_schedule, s_warmup, s_stepEpochs, s_gamma,
            s_batchSize, s_epochs, s_clipNorm, s_seed, s_noMonitor, s_noDoctor, s_logDir, s_tensorBoard, s_checkpointDir, s_checkpointEvery,
            s_resume, s_report, s_sharpnessEvery, s_nproc,
        };
        command.SetAction(r => Run(r, console, cancel));
        return command;
    }

    private static bool Given(ParseResult r, Option o) => r.GetResult(o) is { Implicit: false };

    private static int Run(ParseResult r, IAnsiConsole console, CancellationToken cancel)
    {
        var outputs = new TrainOutputs
        {
            LogDir = r.GetValue(s_logDir), TensorBoardDir = r.GetValue(s_tensorBoard), CheckpointDir = r.GetValue(s_checkpointDir),
            CheckpointEvery = r.GetValue(s_checkpointEvery), ReportPath = r.GetValue(s_report),
            Monitor = !r.GetValue(s_noMonitor), Doctor = !r.GetValue(s_noDoctor), SharpnessEvery = r.GetValue(s_sharpnessEvery),
        };
        if (!outputs.Monitor && ((outputs.LogDir ?? outputs.TensorBoardDir ?? outputs.ReportPath) is not null || outputs.SharpnessEvery > 0))
            throw new CliException("--log-dir, --tensorboard, --report and --sharpness-every record what the monitor sees; drop --no-monitor or those options.");
        if (outputs.LogDir is not null) CliApp.EnsureWritableDirectory(outputs.LogDir, "--log-dir");
        if (outputs.TensorBoardDir is not null) CliApp.EnsureWritableDirectory(outputs.TensorBoardDir, "--tensorboard");
        if (outputs.CheckpointDir is not null) CliApp.EnsureWritableDirectory(outputs.CheckpointDir, "--checkpoint-dir");

        int nproc = r.GetValue(s_nproc);
        int? mpiSize = int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE"), out int size) ? size : null;
        if (nproc > 1 && outputs.SharpnessEvery > 0)
            throw new CliException("--sharpness-every runs Hessian-vector products on one process; drop it, or --nproc.");
        if (nproc > 1 && mpiSize is null)
        {
            // The launcher: the same command line again, in nproc ranks under mpirun; each rank sees OMPI_COMM_WORLD_SIZE.
            string cli = typeof(TrainCommand).Assembly.Location;
            try
            {
                return MpiLauncher.Run(nproc, cli, r.Tokens.Select(t => t.Value));
            }
            catch (FileNotFoundException e)
            {
                throw new CliException(e.Message);
            }
        }
        if (nproc > 1 && mpiSize != nproc)
            throw new CliException($"--nproc {nproc} was given, but mpirun started {mpiSize} processes; give the same number to both.");
        Communicator? world = nproc > 1 ? Communicator.World : null;
        if (world is { IsRoot: false })
        {
            // Only rank 0 writes files and speaks; the others train their share silently. They keep the checkpoint
            // directory: each checkpoint is collective (every rank confirms the file holds its own state).
            outputs = outputs with { LogDir = null, TensorBoardDir = null, ReportPath = null, Doctor = false };
            console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(TextWriter.Null) });
        }

        var given = FromCommandLine(r);
        Checkpoint? checkpoint = null;
        TrainSettings settings;
        if (r.GetValue(s_resume) is { } resume)
        {
            string path = FindCheckpoint(resume);
            checkpoint = Checkpoint.Load(path);
            if (!checkpoint.Metadata.TryGetValue(Trainer.SettingsKey, out var json) || JsonNode.Parse(json) is not JsonObject saved)
                throw new CliException($"--resume '{path}' is a checkpoint but not of gradflow train (it has no training settings); resume only what gradflow train saved.");
            var explicitNames = s_defining.Where(d => Given(r, d.Option)).Select(d => d.Name).ToHashSet();
            settings = TrainSettings.Merge(saved, given.ToJson(), explicitNames, path);
        }
        else
        {
            if (!Given(r, s_model)) throw new CliException("--model is required, e.g. --model mlp:64-128-10,relu,he (or --resume a checkpoint).");
            settings = given;
        }

        var trainer = new Trainer(settings, outputs, console, world);
        long start = checkpoint is null ? 0 : trainer.Restore(checkpoint);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        if (world is not null)
        {
            // Under mpirun, Ctrl+C makes mpirun end the job (the epoch checkpoints resume it); SIGUSR1, which mpirun
            // forwards to every rank, asks all of them to stop after the same step and rank 0 to save (docs/DISTRIBUTED.md).
            using var usr1 = PosixSignalRegistration.Create((PosixSignal)10, c => // SIGUSR1 on Linux; PosixSignal takes it by number
            {
                c.Cancel = true;
                trainer.RequestStop();
            });
            return trainer.Run(start, CancellationToken.None);
        }
        // The first Ctrl+C (or SIGTERM) asks the loop to save and stop after the current step; a second one ends the process.
        void Stop(PosixSignalContext c)
        {
            if (cts.IsCancellationRequested) return;
            c.Cancel = true;
            Console.Error.WriteLine("gradflow: stopping after this step to save a checkpoint (press Ctrl+C again to quit at once)");
            cts.Cancel();
        }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        return trainer.Run(start, cts.Token);
    }

    private static TrainSettings FromCommandLine(ParseResult r) => new()
    {
        Model = Given(r, s_model) ? TrainSettings.ParseModel(r.GetValue(s_model)!).ToString() : "",
        Data = r.GetValue(s_data)!,
        DataDir = r.GetValue(s_dataDir),
        TestData = r.GetValue(s_testData),
        Optimizer = r.GetValue(s_optimizer)!,
        Lr = Given(r, s_lr) ? r.GetValue(s_lr) : null,
        Momentum = r.GetValue(s_momentum),
        WeightDecay = Given(r, s_weightDecay) ? r.GetValue(s_weightDecay) : null,
        Schedule = r.GetValue(s_schedule)!,
        Warmup = r.GetValue(s_warmup),
        StepEpochs = Given(r, s_stepEpochs) ? r.GetValue(s_stepEpochs) : null,
        Gamma = r.GetValue(s_gamma),
        BatchSize = r.GetValue(s_batchSize),
        Epochs = r.GetValue(s_epochs),
        ClipNorm = Given(r, s_clipNorm) ? r.GetValue(s_clipNorm) : null,
        Seed = r.GetValue(s_seed),
    };

    /// <summary>A checkpoint file, or the one with the highest step in a directory.</summary>
    private static string FindCheckpoint(string resume)
    {
        if (File.Exists(resume)) return resume;
        if (!Directory.Exists(resume)) throw new CliException($"--resume '{resume}' does not exist; give a checkpoint file or the --checkpoint-dir of an earlier run.");
        return Directory.EnumerateFiles(resume, "step-*.safetensors").Order(StringComparer.Ordinal).LastOrDefault()
            ?? throw new CliException($"--resume '{resume}' holds no step-*.safetensors checkpoint; give a checkpoint file or the --checkpoint-dir of an earlier run.");
    }
}
