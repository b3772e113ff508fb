using System.Diagnostics;
using System.Text;
using GradFlow.Cli;
using GradFlow.Reporting;
using GradFlow.Training;

namespace GradFlow.Cli.Tests;

/// <summary>`gradflow train`: the run, its outputs, resuming bit for bit, interruption, and bad input in one line.</summary>
public sealed class TrainTests : IDisposable
{
    // Digits: 1,437 training examples in batches of 64 make 23 steps an epoch.
    private const int StepsPerEpoch = 23;
    private static readonly string[] s_run = ["train", "--model", "mlp:64-32-32-10,relu,he,bn,res,dropout=0.1", "--schedule", "cosine", "--warmup", "5", "--epochs", "3"];

    private readonly string _dir = Directory.CreateTempSubdirectory("gf-train").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string P(string name) => Path.Combine(_dir, name);

    private static (int Code, string Out, string Err) Run(string[] args, CancellationToken cancel = default, TextWriter? stdout = null)
    {
        var (o, e) = (stdout ?? new StringWriter(), new StringWriter());
        int code = CliApp.Run(args, o, e, cancel);
        return (code, o.ToString()!, e.ToString());
    }

    private static Dictionary<string, float[]> Weights(string checkpoint) =>
        Checkpoint.Load(checkpoint).Model.Where(kv => kv.Value.DType == DType.Float32).ToDictionary(kv => kv.Key, kv => kv.Value.ToArray<float>());

    private static void AssertSameBits(string expected, string actual)
    {
        var (a, b) = (Weights(expected), Weights(actual));
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (name, values) in a)
            Assert.True(values.Select(BitConverter.SingleToInt32Bits).SequenceEqual(b[name].Select(BitConverter.SingleToInt32Bits)), $"{name} differs");
    }

    private static long[] LoggedSteps(string logDir)
    {
        using var reader = RunLog.Open(Path.Combine(logDir, "runlog.jsonl"));
        return reader.ReadRecords().Select(r => r.Step).ToArray();
    }

    [Fact]
    public void TrainsAndWritesRunLogTensorBoardCheckpointsAndReport()
    {
        var (code, output, error) = Run([.. s_run, "--log-dir", P("log"), "--tensorboard", P("tb"), "--checkpoint-dir", P("ck"), "--checkpoint-every", "2", "--report", P("r.html")]);
        Assert.True(code == 0, error);
        Assert.Contains("epoch 3/3  step 69  loss", output, StringComparison.Ordinal);
        Assert.Contains("doctor:", output, StringComparison.Ordinal);
        Assert.DoesNotContain("not judged", output, StringComparison.Ordinal);
        // Every second epoch, and the last.
        Assert.Equal(["step-00000046.safetensors", "step-00000069.safetensors"], Directory.GetFiles(P("ck")).Select(Path.GetFileName).Order());
        Assert.Equal(Enumerable.Range(1, 69).Select(i => (long)i), LoggedSteps(P("log")));
        Assert.NotEmpty(Directory.GetFiles(P("tb"), "events.out.tfevents.*"));
        Assert.Contains("id=\"run0-heat\"", File.ReadAllText(P("r.html")), StringComparison.Ordinal);
    }

    [Fact]
    public void ResumingFromAnEpochCheckpointGivesTheSameBitsAsTheUninterruptedRun()
    {
        Assert.Equal(0, Run([.. s_run, "--checkpoint-dir", P("full")]).Code);
        Directory.CreateDirectory(P("part"));
        File.Copy(Path.Combine(P("full"), Trainer.CheckpointName(StepsPerEpoch)), Path.Combine(P("part"), Trainer.CheckpointName(StepsPerEpoch)));
        // The directory's latest checkpoint; settings (model, schedule, epochs) come from it.
        var (code, output, error) = Run(["train", "--resume", P("part"), "--checkpoint-dir", P("part"), "--log-dir", P("log")]);
        Assert.True(code == 0, error);
        Assert.Contains("resumed at step 23", output, StringComparison.Ordinal);
        Assert.Contains("doctor: this run resumed at step 23 (first record: step 24); the initialisation was not judged", output, StringComparison.Ordinal);
        AssertSameBits(Path.Combine(P("full"), Trainer.CheckpointName(69)), Path.Combine(P("part"), Trainer.CheckpointName(69)));
        Assert.Equal(Enumerable.Range(24, 46).Select(i => (long)i), LoggedSteps(P("log"))); // the monitor's steps continue
    }

    [Fact]
    public void CancellingSavesMidEpochAndResumingContinuesExactly()
    {
        // The uninterrupted run also probes sharpness every 10 steps: the probes must not change a bit of the training.
        Assert.Equal(0, Run([.. s_run, "--checkpoint-dir", P("full"), "--sharpness-every", "10", "--report", P("full.html")]).Code);
        var page = File.ReadAllText(P("full.html"));
        foreach (var chart in new[] { "run0-sharpness", "run0-density", "run0-landscape" })
            Assert.Contains($"id=\"{chart}\"", page, StringComparison.Ordinal);
        // Cancel as the first epoch's line is printed: the loop stops after the next step, inside epoch 2.
        using var cts = new CancellationTokenSource();
        var watcher = new LineWatcher(line => { if (line.StartsWith("epoch 1/", StringComparison.Ordinal)) cts.Cancel(); });
        var (code, output, error) = Run([.. s_run, "--checkpoint-dir", P("cut"), "--log-dir", P("log")], cts.Token, watcher);
        Assert.True(code == Trainer.Interrupted, output + error);
        string saved = Path.Combine(P("cut"), Trainer.CheckpointName(StepsPerEpoch + 1));
        Assert.Contains($"interrupted at step 24: checkpoint saved to {saved}", output, StringComparison.Ordinal);
        Assert.Equal(24, Checkpoint.Load(saved).Step);

        (code, _, error) = Run(["train", "--resume", saved, "--checkpoint-dir", P("cut"), "--log-dir", P("log")]);
        Assert.True(code == 0, error);
        AssertSameBits(Path.Combine(P("full"), Trainer.CheckpointName(69)), Path.Combine(P("cut"), Trainer.CheckpointName(69)));
        Assert.Equal(Enumerable.Range(1, 69).Select(i => (long)i), LoggedSteps(P("log"))); // one log, no gap, no repeat
    }

    [Fact]
    public void SharpnessProbesOfAHealthyAdamWBatchNormRunReadBelowTheThreshold()
    {
        // The probe must take the Hessian of the loss AdamW descends (BatchNorm on batch statistics). With running
        // statistics it read the pre-BN biases, flat in training and so preconditioned by 1/eps, as 10^2-10^3 x the threshold.
        var (code, _, error) = Run([.. s_run, "--optimizer", "adamw", "--lr", "0.001", "--sharpness-every", "10", "--log-dir", P("log")]);
        Assert.True(code == 0, error);
        using var reader = RunLog.Open(Path.Combine(P("log"), "runlog.jsonl"));
        var probes = reader.ReadRecords().Where(r => r.Curvature is not null).Select(r => r.Curvature!).ToArray();
        Assert.Equal([10L, 20, 30, 40, 50, 60], probes.Select(p => p.Step));
        Assert.All(probes, p => Assert.True(p.Ratio < 1, $"step {p.Step}: preconditioned sharpness {p.PreconditionedSharpness:G4} is {p.Ratio:G3} x the threshold {p.StabilityThreshold:G4}"));
    }

    [Fact]
    public void AfterACrashTheResumedRunReplacesTheStepsLoggedPastItsCheckpoint()
    {
        // A run that logged all 69 steps but whose last surviving checkpoint is the first epoch's, as after a crash.
        Assert.Equal(0, Run([.. s_run, "--checkpoint-dir", P("ck"), "--log-dir", P("log")]).Code);
        var (code, _, error) = Run(["train", "--resume", Path.Combine(P("ck"), Trainer.CheckpointName(StepsPerEpoch)), "--log-dir", P("log")]);
        Assert.True(code == 0, error);
        Assert.Equal(Enumerable.Range(1, 69).Select(i => (long)i), LoggedSteps(P("log")));
    }

    [Fact]
    public void ResumeRefusesSettingsThatWouldMakeItAnotherRunButTakesMoreEpochs()
    {
        Assert.Equal(0, Run(["train", "--model", "mlp:64-16-10", "--epochs", "1", "--checkpoint-dir", P("ck")]).Code);
        var (code, _, error) = Run(["train", "--resume", P("ck"), "--lr", "0.1"]);
        Assert.Equal(2, code);
        Assert.Contains("--lr 0.1 differs from the checkpoint's default in", error, StringComparison.Ordinal);
        (code, _, error) = Run(["train", "--resume", P("ck"), "--model", "mlp:64-32-10"]);
        Assert.Equal(2, code);
        Assert.Contains("--model 'mlp:64-32-10,relu' differs from the checkpoint's 'mlp:64-16-10,relu'", error, StringComparison.Ordinal);
        string output;
        (code, output, error) = Run(["train", "--resume", P("ck"), "--epochs", "2", "--model", "mlp:64-16-10,relu"]);
        Assert.True(code == 0, error);
        Assert.Contains("epoch 2/2  step 46", output, StringComparison.Ordinal);
    }

    [Fact]
    public void TrainsAConvolutionalModelFromAJsonFileWithAdamW()
    {
        File.WriteAllText(P("cnn.json"), """
            {"input": [1, 8, 8], "layers": [{"conv": 8}, {"pool": 2}, {"linear": 32, "dropout": 0.2}, {"linear": 10}], "activation": "relu", "init": "he", "norm": "batch"}
            """);
        var (code, output, error) = Run(["train", "--model", P("cnn.json"), "--optimizer", "adamw", "--epochs", "2", "--clip-norm", "1", "--schedule", "step", "--step-epochs", "1"]);
        Assert.True(code == 0, error);
        Assert.Contains("adamw lr=0.001 step", output, StringComparison.Ordinal);
        Assert.Contains("epoch 2/2", output, StringComparison.Ordinal);
    }

    [Fact]
    public void TrainsOnACsvFileWithASeededSplit()
    {
        var rng = new Random(4);
        var csv = new StringBuilder();
        for (int i = 0; i < 200; i++)
        {
            double a = rng.NextDouble(), b = rng.NextDouble();
            csv.AppendLine(FormattableString.Invariant($"{a},{b},{(a > b ? 1 : 0)}"));
        }
        File.WriteAllText(P("d.csv"), csv.ToString());
        var (code, output, error) = Run(["train", "--model", "mlp:2-16-2,tanh", "--data", P("d.csv"), "--epochs", "2", "--batch-size", "16", "--no-monitor"]);
        Assert.True(code == 0, error);
        Assert.Contains("(160 train, 40 test)", output, StringComparison.Ordinal);
    }

    public static TheoryData<string[], string> BadInput => new()
    {
        { ["train"], "--model is required" },
        { ["train", "--model", "mlp:64-x-10"], "model spec 'mlp:64-x-10': 'x' is not a layer" },
        { ["train", "--model", "mlp:784-10"], "the model takes 784 input values per example, but the training set of digits has 64" },
        { ["train", "--model", "mlp:64-5"], "labels up to 9, but the model has 5 outputs" },
        { ["train", "--model", "/nonexistent/m.json"], "--model file '/nonexistent/m.json' does not exist" },
        { ["train", "--model", "mlp:64-10", "--data", "/nonexistent/d.csv"], "--data '/nonexistent/d.csv' is neither" },
        { ["train", "--model", "mlp:64-10", "--data", "mnist"], "--data mnist needs --data-dir" },
        { ["train", "--model", "mlp:64-10", "--checkpoint-dir", "/proc/gradflow-nope"], "--checkpoint-dir '/proc/gradflow-nope' cannot be written" },
        { ["train", "--model", "mlp:64-10", "--no-monitor", "--log-dir", "x"], "drop --no-monitor" },
        { ["train", "--resume", "/nonexistent/ck"], "--resume '/nonexistent/ck' does not exist" },
        { ["train", "--model", "mlp:64-10", "--optimizer", "lion"], "lion" },
    };

    [Theory]
    [MemberData(nameof(BadInput))]
    public void BadInputIsOneLineAndExitCode2(string[] args, string expected)
    {
        var (code, _, error) = Run(args);
        Assert.Equal(2, code);
        Assert.StartsWith("gradflow: ", error, StringComparison.Ordinal);
        Assert.Contains(expected, error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
        Assert.True(error.TrimEnd().Split('\n').Length <= 2, error); // the problem, and for a usage error where to find help
    }

    [Fact]
    public void MalformedJsonModelFileIsOneLineNamingIt()
    {
        File.WriteAllText(P("bad.json"), """{"input": [64], "layers": [{"linear": 10}], "activaton": "tanh"}""");
        var (code, _, error) = Run(["train", "--model", P("bad.json")]);
        Assert.Equal(2, code);
        Assert.Equal($"gradflow: model file '{P("bad.json")}': the model has an unknown field \"activaton\"; the fields are \"input\", \"layers\", \"activation\", \"init\", \"norm\", \"residual\", \"dropout\".",
            error.TrimEnd());
    }

    /// <summary>
    /// A real SIGINT to a child `gradflow train`: once it has printed its first epoch (so the handler is installed and
    /// training is under way; it has thousands of epochs to go), the signal makes it save a checkpoint and exit 130.
    /// </summary>
    [Fact]
    public async Task SigintSavesACheckpointAndExitsCleanly()
    {
        if (OperatingSystem.IsWindows()) return; // no kill(1); the cancellation path above covers the loop
        string cli = Path.Combine(AppContext.BaseDirectory, "GradFlow.Cli.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { cli, "train", "--model", "mlp:64-16-10", "--epochs", "100000", "--checkpoint-dir", P("ck"), "--checkpoint-every", "1000" }) psi.ArgumentList.Add(a);
        using var child = Process.Start(psi)!;
        var stderr = child.StandardError.ReadToEndAsync();
        var seen = new StringBuilder();
        for (string? line; (line = child.StandardOutput.ReadLine()) is not null;)
        {
            seen.AppendLine(line);
            if (line.StartsWith("epoch 1/", StringComparison.Ordinal)) break;
        }
        Assert.False(child.HasExited, seen.ToString());
        using (var kill = Process.Start("kill", ["-INT", child.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) kill.WaitForExit();
        seen.Append(child.StandardOutput.ReadToEnd());
        await child.WaitForExitAsync();
        Assert.True(child.ExitCode == Trainer.Interrupted, seen + await stderr);
        Assert.Contains("interrupted at step", seen.ToString(), StringComparison.Ordinal);
        var saved = Assert.Single(Directory.GetFiles(P("ck")));
        Assert.True(Checkpoint.Load(saved).Step > StepsPerEpoch);
    }

    /// <summary>Calls back with each whole line written, as the CLI writes it.</summary>
    private sealed class LineWatcher(Action<string> onLine) : StringWriter
    {
        private readonly StringBuilder _line = new();

        public override void Write(char value)
        {
            base.Write(value);
            if (value != '\n') _line.Append(value);
            else
            {
                onLine(_line.ToString().TrimEnd('\r'));
                _line.Clear();
            }
        }

        public override void Write(string? value)
        {
            foreach (char c in value ?? "") Write(c);
        }

        public override void Write(char[] buffer, int index, int count)
        {
            for (int i = 0; i < count; i++) Write(buffer[index + i]);
        }
    }
}
