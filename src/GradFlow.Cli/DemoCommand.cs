using System.CommandLine;
using System.Diagnostics;
using GradFlow.Data;
using GradFlow.Diagnostics;
using GradFlow.NN;
using GradFlow.Optim;
using GradFlow.Reporting;
using GradFlow.Reporting.Html;
using Spectre.Console;

namespace GradFlow.Cli;

/// <summary>
/// `gradflow demo`: a 64-128-64-10 ReLU network on the embedded Digits data set (784 inputs on Fashion-MNIST), trained with
/// mini-batch SGD with momentum under a <see cref="GradientMonitor"/>, reporting per epoch the loss,
/// accuracy, and for every layer its gradient norm, update-to-weight ratio and dead ReLU units.
/// </summary>
internal static class DemoCommand
{
    private static readonly Argument<string> s_scenario = new("scenario")
    {
        Description = "What to show: mlp (one healthy network, the default), or a gradient problem and its fixes trained side by side: " +
                      string.Join(", ", DemoScenarios.Names) + ", or all of them.",
        DefaultValueFactory = _ => "mlp",
    };
    private static readonly Option<int> s_epochs = CliApp.IntOption("--epochs", 15, 1, 10_000, "Epochs to train (default 15; scenarios: 8 per variant; on fashion-mnist 2 and 1)");
    private static readonly Option<string> s_data = new("--data") { Description = "digits (embedded, the default) or fashion-mnist (60,000 28x28 images; Debian's dataset-fashion-mnist)", DefaultValueFactory = _ => "digits" };
    private static readonly Option<string?> s_dataDir = new("--data-dir") { Description = "Where Fashion-MNIST's IDX files are (default " + GradFlow.Data.FashionMnist.DefaultDirectory + ")" };
    private static readonly Option<int> s_batchSize = CliApp.IntOption("--batch-size", 64, 1, 100_000, "Mini-batch size");
    private static readonly Option<double> s_lr = CliApp.DoubleOption("--lr", 0.05, 1e-9, 100, "Learning rate of SGD with momentum 0.9 (mlp)");
    private static readonly Option<int> s_seed = CliApp.IntOption("--seed", 0, 0, int.MaxValue, "Random seed");
    private static readonly Option<string?> s_logDir = new("--log-dir") { Description = "Also write the monitor's run log (runlog.jsonl) and TensorBoard event files there" };
    private static readonly Option<string?> s_report = new("--report") { Description = "Write the HTML report to this file (scenarios default to gradflow-demo.html)" };

    static DemoCommand()
    {
        s_scenario.AcceptOnlyFromAmong(["mlp", .. DemoScenarios.Names, "all"]);
        s_data.AcceptOnlyFromAmong(DemoData.Names);
    }

    public static Command Create(IAnsiConsole console)
    {
        var command = new Command("demo", "Train on the embedded Digits data set (or Fashion-MNIST) under the gradient monitor and show what it sees.")
        {
            s_scenario, s_epochs, s_batchSize, s_lr, s_seed, s_logDir, s_report, s_data, s_dataDir,
        };
        command.SetAction(r =>
        {
            string scenario = r.GetValue(s_scenario)!;
            int seed = r.GetValue(s_seed);
            bool fashion = r.GetValue(s_data) == "fashion-mnist";
            int? epochs = r.GetResult(s_epochs) is { Implicit: false } ? r.GetValue(s_epochs) : null;
            string? logDir = r.GetValue(s_logDir);
            if (logDir is not null) CliApp.EnsureWritableDirectory(logDir, "--log-dir");
            var data = DemoData.Load(r.GetValue(s_data)!, r.GetValue(s_dataDir), seed);
            // Fashion-MNIST has 42 times Digits' examples: fewer epochs still take many more steps.
            if (scenario != "mlp")
                return DemoScenarios.Run(scenario, data, epochs ?? (fashion ? 1 : 8), r.GetValue(s_batchSize), seed, r.GetValue(s_report) ?? "gradflow-demo.html", console);
            return Run(data, epochs ?? (fashion ? 2 : 15), r.GetValue(s_batchSize), r.GetValue(s_lr), seed, logDir, r.GetValue(s_report), console);
        });
        return command;
    }

    public static int Run(DemoData data, int epochs, int batchSize, double lr, int seed, string? logDir, string? reportPath, IAnsiConsole console)
    {
        var output = console;
        Generator.Default.ManualSeed((ulong)seed);
        var (xTrain, yTrain, xTest, yTest) = (data.Train.Inputs, data.Train.Targets, data.Test.Inputs, data.Test.Targets);
        var gen = new Generator((ulong)seed);

        var model = new Sequential(new Linear(data.Features, 128), new ReLU(), new Linear(128, 64), new ReLU(), new Linear(64, 10));
        var optimizer = new SGD(model.Parameters(), lr, momentum: 0.9);
        using var monitor = GradientMonitor.Attach(model, optimizer);
        using var doctor = Doctor.Attach(monitor, new DoctorOptions { Classes = 10 });
        var epochRecords = new List<StepRecord>();
        var allRecords = new List<StepRecord>();
        monitor.StepRecorded += epochRecords.Add;
        monitor.StepRecorded += allRecords.Add;
        using var runLog = logDir is null ? null : RunLog.Attach(monitor, Path.Combine(logDir, "runlog.jsonl"));
        using var tensorBoard = logDir is null ? null : TensorBoard.Attach(monitor, logDir);

        output.WriteLine($"GradFlow demo: MLP {data.Features}-128-64-10 ({model.ParameterCount():N0} parameters) on {data.Title} " +
                         $"({xTrain.Size(0)} train, {xTest.Size(0)} test), SGD lr={lr} momentum=0.9, batch {batchSize}, seed {seed}");
        output.WriteLine("per layer: gradient L2 norm | update/weight ratio | dead ReLU units after it (means over the epoch)");
        output.WriteLine($"{"epoch",5} {"loss",7} {"train",6} {"test",6}   layers");

        var arena = new TensorArena();
        var clock = Stopwatch.StartNew();
        for (int epoch = 1; epoch <= epochs; epoch++)
        {
            epochRecords.Clear();
            model.Train();
            var order = gen.Permutation(xTrain.Size(0));
            for (int start = 0; start < order.Length; start += batchSize)
            {
                using var step = arena.Step();
                var (xb, yb) = Take(xTrain, yTrain, order[start..Math.Min(order.Length, start + batchSize)]);
                optimizer.ZeroGrad();
                Functional.CrossEntropy(model.Call(xb), yb).Backward();
                optimizer.Step(); // the monitor records the step here
            }
            model.Eval();
            output.WriteLine($"{epoch,5} {epochRecords.Average(r => r.Loss ?? double.NaN),7:0.0000} " +
                             $"{Accuracy(model, xTrain, yTrain),6:P1} {Accuracy(model, xTest, yTest),6:P1}   {StepRecord.Summary(epochRecords)}");
        }
        output.WriteLine($"done in {clock.Elapsed.TotalSeconds:0.00} s; test accuracy {Accuracy(model, xTest, yTest):P2}");
        var findings = doctor.Findings;
        output.WriteLine(findings.Count == 0
            ? $"doctor: no problem found in {monitor.StepCount} steps (try --lr 5 to see one)"
            : $"doctor: {findings.Count} finding(s)");
        foreach (var f in findings) output.WriteLine(f.ToString());
        if (logDir is not null)
            output.WriteLine($"run log: {Path.Combine(logDir, "runlog.jsonl")}; TensorBoard: tensorboard --logdir {logDir}");
        if (reportPath is not null)
        {
            HtmlReport.Write(reportPath, [new ReportRun("mlp", allRecords)]);
            output.WriteLine($"report: {reportPath}");
        }
        return 0;
    }

    private static (Tensor X, Tensor Y) Take(Tensor x, Tensor y, int[] rows)
    {
        var idx = Tensor.FromArray(Array.ConvertAll(rows, i => (long)i));
        return (x.IndexSelect(0, idx), y.IndexSelect(0, idx));
    }

    private static double Accuracy(Module model, Tensor x, Tensor y)
    {
        using var _ = Autograd.NoGrad();
        return model.Call(x).ArgMax(1).Eq(y).Sum().Item() / x.Size(0);
    }
}
