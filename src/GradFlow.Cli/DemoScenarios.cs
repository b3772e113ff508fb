using System.Globalization;
using GradFlow.Data;
using GradFlow.Diagnostics;
using GradFlow.NN;
using GradFlow.Optim;
using GradFlow.Reporting.Html;
using Spectre.Console;

namespace GradFlow.Cli;

/// <summary>
/// `gradflow demo SCENARIO`: a gradient problem and its fixes, trained side by side on Digits under the monitor; the
/// accuracies and each variant's gradient figures are printed, and every variant goes into one HTML report.
/// </summary>
internal static class DemoScenarios
{
    /// <summary>One network (given the generator and the features per example) and optimiser of a scenario.</summary>
    internal sealed record Variant(string Name, Func<Generator, int, Module> Model, Func<Module, Optimizer> Optimizer, double? ClipNorm = null);

    private sealed record Scenario(string Name, string Question, Variant[] Variants);

    private static readonly Scenario[] s_scenarios =
    [
        new("vanishing", "A 10-layer sigmoid MLP barely learns: the gradient shrinks at every layer on its way back. ReLU with He initialisation, BatchNorm and residual connections each restore the flow.",
        [
            new("sigmoid x10", (g, n) => Deep(g, n, () => new Sigmoid(), kaiming: false, batchNorm: false, residual: false), m => new SGD(m.Parameters(), 0.1, momentum: 0.9)),
            new("relu + He init", (g, n) => Deep(g, n, () => new ReLU(), kaiming: true, batchNorm: false, residual: false), m => new SGD(m.Parameters(), 0.1, momentum: 0.9)),
            new("sigmoid + BatchNorm", (g, n) => Deep(g, n, () => new Sigmoid(), kaiming: false, batchNorm: true, residual: false), m => new SGD(m.Parameters(), 0.1, momentum: 0.9)),
            new("sigmoid + residual", (g, n) => Deep(g, n, () => new Sigmoid(), kaiming: false, batchNorm: false, residual: true), m => new SGD(m.Parameters(), 0.1, momentum: 0.9)),
        ]),
        new("exploding", "A ReLU RNN reads each image as 16 slices; its recurrent weights are orthogonal times 2, so every singular value is 2 and the gradient through 16 steps can grow by up to 2^16. Unclipped, the first such spikes throw the weights to infinity (or dead ReLUs) and it never learns; clipping the gradient norm to 1 bounds every step and it learns; an LSTM avoids the growth.",
        [
            new("relu rnn, radius 2", (g, n) => new RowReader(g, n, lstm: false, recurrentGain: 2), m => new SGD(m.Parameters(), 0.05, momentum: 0.9)),
            new("relu rnn, radius 2, clipped at 1", (g, n) => new RowReader(g, n, lstm: false, recurrentGain: 2), m => new SGD(m.Parameters(), 0.05, momentum: 0.9), ClipNorm: 1),
            new("lstm", (g, n) => new RowReader(g, n, lstm: true, recurrentGain: 1), m => new SGD(m.Parameters(), 0.2, momentum: 0.9)),
        ]),
        new("dead-relu", "A learning rate of 1 knocks most ReLU units of this MLP into the region where they output 0 for every input: they never recover. A sane rate, or LeakyReLU, keeps them alive.",
        [
            new("relu, lr 1", (g, n) => Mlp(g, n, () => new ReLU()), m => new SGD(m.Parameters(), 1.0)),
            new("relu, lr 0.1", (g, n) => Mlp(g, n, () => new ReLU()), m => new SGD(m.Parameters(), 0.1)),
            new("leaky relu, lr 1", (g, n) => Mlp(g, n, () => new LeakyReLU(0.1)), m => new SGD(m.Parameters(), 1.0)),
        ]),
        new("lr", "The same tanh MLP at three learning rates: too low barely moves the weights (update/weight ratio far below 1e-3), too high oscillates, a good one learns.",
        [
            new("lr 1e-4", (g, n) => Mlp(g, n, () => new Tanh()), m => new SGD(m.Parameters(), 1e-4, momentum: 0.9)),
            new("lr 0.05", (g, n) => Mlp(g, n, () => new Tanh()), m => new SGD(m.Parameters(), 0.05, momentum: 0.9)),
            new("lr 3", (g, n) => Mlp(g, n, () => new Tanh()), m => new SGD(m.Parameters(), 3, momentum: 0.9)),
        ]),
        new("saddle", "Every weight starts at zero: the hidden units are identical and get no gradient, a saddle point of the loss. Any random start breaks the symmetry.",
        [
            new("all-zero start", (g, n) => ZeroStart(Mlp(g, n, () => new Tanh())), m => new SGD(m.Parameters(), 0.1, momentum: 0.9)),
            new("random start", (g, n) => Mlp(g, n, () => new Tanh()), m => new SGD(m.Parameters(), 0.1, momentum: 0.9)),
        ]),
    ];

    public static IEnumerable<string> Names => s_scenarios.Select(s => s.Name);

    /// <summary>The variants of a scenario, by its name.</summary>
    internal static IReadOnlyList<Variant> VariantsOf(string name) => s_scenarios.Single(s => s.Name == name).Variants;

    public static int Run(string name, DemoData data, int epochs, int batchSize, int seed, string reportPath, IAnsiConsole console)
    {
        var chosen = name == "all" ? s_scenarios : s_scenarios.Where(s => s.Name == name).ToArray();
        var (train, test) = (data.Train, data.Test);
        var runs = new List<ReportRun>();
        foreach (var scenario in chosen)
        {
            console.WriteLine();
            console.Write(new Rule($"[bold]{Markup.Escape(scenario.Name)}[/]").LeftJustified());
            console.WriteLine(scenario.Question);
            var doctorLines = new List<(string Variant, IReadOnlyList<Finding> Findings)>();
            var table = new Table().AddColumns("variant", "final loss", "test acc.", "peak ‖g‖", "|g| first / last layer", "update/weight (first layer)", "dead or saturated");
            foreach (var variant in scenario.Variants)
            {
                var (records, accuracy) = Train(variant, train, test, epochs, batchSize, seed);
                var findings = Doctor.Diagnose(records);
                doctorLines.Add((variant.Name, findings));
                runs.Add(new ReportRun($"{scenario.Name}: {variant.Name}", records,
                    new Dictionary<string, string> { ["scenario"] = scenario.Name, ["epochs"] = epochs.ToString(CultureInfo.InvariantCulture), ["test accuracy"] = accuracy.ToString("P1", CultureInfo.InvariantCulture) })
                { Findings = findings });
                table.AddRow(Row(variant.Name, records, accuracy).Select(Markup.Escape).ToArray());
            }
            console.Write(table);
            foreach (var (variantName, findings) in doctorLines)
            {
                if (findings.Count == 0)
                {
                    console.WriteLine($"doctor, {variantName}: no finding");
                    continue;
                }
                foreach (var f in findings)
                    console.WriteLine($"doctor, {variantName}: [{f.Severity.ToString().ToLowerInvariant()}] {f.Title}" +
                                      (f.Fixes.Count > 0 ? $"; fix: {f.Fixes[0].Action}" : ""));
            }
        }
        HtmlReport.Write(reportPath, runs, new HtmlReportOptions { Title = $"GradFlow demo: {name}" });
        console.WriteLine($"report: {reportPath}");
        return 0;
    }

    /// <summary>Trains one variant under the monitor; returns its records and its final test accuracy.</summary>
    internal static (List<StepRecord> Records, double Accuracy) Train(Variant variant, TensorDataset train, TensorDataset test, int epochs, int batchSize, int seed)
    {
        var gen = new Generator((ulong)seed);
        var model = variant.Model(gen, train.Inputs.NumEl / train.Count);
        var optimizer = variant.Optimizer(model);
        using var monitor = GradientMonitor.Attach(model, optimizer);
        var records = new List<StepRecord>();
        monitor.StepRecorded += records.Add;
        var arena = new TensorArena();
        int n = train.Inputs.Size(0);
        for (int epoch = 0; epoch < epochs; epoch++)
        {
            model.Train();
            var order = gen.Permutation(n);
            for (int start = 0; start < n; start += batchSize)
            {
                using var step = arena.Step();
                var idx = Tensor.FromArray(Array.ConvertAll(order[start..Math.Min(n, start + batchSize)], i => (long)i));
                optimizer.ZeroGrad();
                Functional.CrossEntropy(model.Call(train.Inputs.IndexSelect(0, idx)), train.Targets.IndexSelect(0, idx)).Backward();
                if (variant.ClipNorm is { } clip) monitor.ClipGradNorm(clip);
                optimizer.Step();
            }
        }
        model.Eval();
        using var _ = Autograd.NoGrad();
        double accuracy = model.Call(test.Inputs).ArgMax(1).Eq(test.Targets).Sum().Item() / test.Inputs.Size(0);
        return (records, accuracy);
    }

    private static string[] Row(string name, List<StepRecord> records, double accuracy)
    {
        var last = records[^1];
        var tail = records.Skip(records.Count * 9 / 10).ToList();
        double Mean(Func<StepRecord, double?> f) => tail.Select(f).OfType<double>().Where(double.IsFinite).DefaultIfEmpty(double.NaN).Average();
        string first = last.Layers.Count > 0 ? last.Layers[0].Layer : "";
        string lastLayer = last.Layers.Count > 0 ? last.Layers[^1].Layer : "";
        double ratio = Mean(r => Layer(r, first)?.Gradient.L2Norm / Layer(r, lastLayer)?.Gradient.L2Norm);
        double update = Mean(r => Layer(r, first)?.UpdateToWeight);
        double unhealthy = Mean(r => r.Activations.Count == 0 ? null : r.Activations.Average(a => a.DeadFraction ?? a.SaturatedFraction ?? 0));
        double peak = records.Select(r => r.GlobalGradNorm).Where(double.IsFinite).DefaultIfEmpty(double.NaN).Max();
        return [name, Fmt(Mean(r => r.Loss)), accuracy.ToString("P1", CultureInfo.InvariantCulture), Fmt(peak), Fmt(ratio), Fmt(update), double.IsNaN(unhealthy) ? "-" : unhealthy.ToString("P0", CultureInfo.InvariantCulture)];
    }

    private static LayerGradientStats? Layer(StepRecord r, string name) => r.Layers.FirstOrDefault(l => l.Layer == name);

    private static string Fmt(double v) =>
        !double.IsFinite(v) ? "-" : v == 0 ? "0" : Math.Abs(v) is >= 1e-3 and < 1e4 ? v.ToString("0.###", CultureInfo.InvariantCulture) : v.ToString("0.##e0", CultureInfo.InvariantCulture);

    private static Module Mlp(Generator g, int inputs, Func<Module> act) =>
        new Sequential(new Linear(inputs, 64, generator: g), act(), new Linear(64, 64, generator: g), act(), new Linear(64, 10, generator: g));

    private static Module ZeroStart(Module m)
    {
        foreach (var p in m.Parameters()) Init.Zeros(p);
        return m;
    }

    // Ten hidden layers of width 32 between the inputs and the 10 classes.
    private static Module Deep(Generator g, int inputs, Func<Module> act, bool kaiming, bool batchNorm, bool residual)
    {
        var layers = new List<Module> { new Linear(inputs, 32, generator: g), act() };
        for (int i = 0; i < 9; i++)
        {
            var linear = new Linear(32, 32, generator: g);
            if (kaiming) Init.KaimingNormal(linear.Weight, generator: g);
            Module block = batchNorm ? new Sequential(linear, new BatchNorm1d(32), act()) : new Sequential(linear, act());
            layers.Add(residual ? new Residual(block) : block);
        }
        layers.Add(new Linear(32, 10, generator: g));
        return new Sequential([.. layers]);
    }

    /// <summary>Reads an image as a sequence of 16 slices (an 8x8 digit's half rows) with an RNN or an LSTM and classifies its last hidden state.</summary>
    private sealed class RowReader : Module
    {
        private readonly RNN? _rnn;
        private readonly LSTM? _lstm;
        private readonly Linear _head;
        private readonly int _slice;

        public RowReader(Generator g, int inputs, bool lstm, double recurrentGain)
        {
            _slice = inputs / 16;
            if (lstm) _lstm = RegisterModule("lstm", new LSTM(_slice, 32, batchFirst: true, generator: g));
            else
            {
                _rnn = RegisterModule("rnn", new RNN(_slice, 32, relu: true, batchFirst: true, generator: g));
                // An orthogonal matrix times the gain: every singular value of W_hh equals the gain.
                foreach (var (name, p) in _rnn.NamedParameters())
                    if (name.StartsWith("weight_hh", StringComparison.Ordinal)) Init.Orthogonal(p, recurrentGain, g);
            }
            _head = RegisterModule("head", new Linear(32, 10, generator: g));
        }

        public override Tensor Forward(Tensor input)
        {
            var seq = input.Reshape(input.Size(0), 16, _slice); // 16 time steps
            var output = _lstm is not null ? _lstm.Forward(seq) : _rnn!.Forward(seq);
            return _head.Call(output.Select(1, -1));
        }
    }
}
