using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using GradFlow.Data;
using GradFlow.NN;
using GradFlow.Optim;
using GradFlow.Training;

namespace GradFlow.Cli;

/// <summary>
/// What defines a `gradflow train` run, as given on the command line; kept in every checkpoint so that `--resume`
/// continues the very same run. The JSON names are the options' names (batch-size, clip-norm, ...).
/// </summary>
internal sealed record TrainSettings
{
    public static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.KebabCaseLower };

    // May differ on resume: a run can be given more epochs.
    private static readonly string[] s_free = ["epochs"];

    public string Model { get; init; } = "";
    public string Data { get; init; } = "digits";
    public string? DataDir { get; init; }
    public string? TestData { get; init; }
    public string Optimizer { get; init; } = "momentum";
    public double? Lr { get; init; }
    public double Momentum { get; init; } = 0.9;
    public double? WeightDecay { get; init; }
    public string Schedule { get; init; } = "constant";
    public int Warmup { get; init; }
    public int? StepEpochs { get; init; }
    public double Gamma { get; init; } = 0.1;
    public int BatchSize { get; init; } = 64;
    public int Epochs { get; init; } = 10;
    public double? ClipNorm { get; init; }
    public int Seed { get; init; }

    [JsonIgnore]
    public double LearningRate => Lr ?? (Optimizer is "adam" or "adamw" ? 1e-3 : 0.05);

    public JsonObject ToJson() => JsonSerializer.SerializeToNode(this, Json)!.AsObject();

    public static TrainSettings FromJson(JsonObject json) => json.Deserialize<TrainSettings>(Json)
        ?? throw new InvalidDataException("the checkpoint's training settings are empty.");

    /// <summary>
    /// The checkpoint's settings, with the options given explicitly now: a free one (epochs) replaces the checkpoint's,
    /// any other must equal it, or the resumed run would not be the same run.
    /// </summary>
    public static TrainSettings Merge(JsonObject saved, JsonObject given, IReadOnlySet<string> explicitOptions, string checkpoint)
    {
        var merged = saved.DeepClone().AsObject();
        foreach (var name in explicitOptions)
        {
            var now = given[name];
            if (s_free.Contains(name)) merged[name] = now?.DeepClone();
            else if (!JsonNode.DeepEquals(now, saved[name]))
                throw new CliException($"--{name} {Show(now)} differs from the checkpoint's {Show(saved[name])} in {checkpoint}; drop --{name} to resume that run, or start a new run without --resume.");
        }
        return FromJson(merged);
    }

    private static string Show(JsonNode? n) => n is null ? "default" : n is JsonValue v && v.TryGetValue(out string? s) ? $"'{s}'" : n.ToJsonString();

    /// <summary>Reads --model: a compact spec (it has a colon) or a JSON file; the canonical form is stored.</summary>
    public static ModelSpec ParseModel(string model)
    {
        bool file = model.EndsWith(".json", StringComparison.OrdinalIgnoreCase) || (!model.Contains(':', StringComparison.Ordinal) && File.Exists(model));
        if (!file) return ModelSpec.Parse(model);
        if (!File.Exists(model)) throw new CliException($"--model file '{model}' does not exist; give a JSON model file (see docs/TRAIN.md) or a spec such as mlp:64-128-10,relu.");
        return ModelSpec.Load(model);
    }

    /// <summary>The model as stored: the compact spec, or JSON when a layer sets its own options.</summary>
    public ModelSpec ParseSpec() => Model.TrimStart().StartsWith('{') ? ModelSpec.FromJson(Model, "in the checkpoint") : ModelSpec.Parse(Model);

    public Optimizer CreateOptimizer(Module model)
    {
        double lr = LearningRate;
        return Optimizer switch
        {
            "sgd" => new SGD(model.Parameters(), lr, weightDecay: WeightDecay ?? 0),
            "momentum" => new SGD(model.Parameters(), lr, Momentum, weightDecay: WeightDecay ?? 0),
            "adam" => new Adam(model.Parameters(), lr, weightDecay: WeightDecay ?? 0),
            _ => new AdamW(model.Parameters(), lr, weightDecay: WeightDecay ?? 1e-2),
        };
    }

    /// <summary>The schedule, stepped once per optimiser step (null: a constant rate); its Step action beside it.</summary>
    public (ILRScheduler? Scheduler, Action Step) CreateScheduler(Optimizer optimizer, int stepsPerEpoch)
    {
        int total = Epochs * stepsPerEpoch;
        LRScheduler? main = Schedule switch
        {
            "cosine" => new CosineAnnealingLR(optimizer, Math.Max(1, total - Warmup)),
            "step" => new StepLR(optimizer, (StepEpochs ?? Math.Max(1, Epochs / 3)) * stepsPerEpoch, Gamma),
            _ => null,
        };
        if (Warmup > 0)
        {
            var warmup = new LinearLR(optimizer, 1.0 / Warmup, 1.0, Warmup);
            if (main is null) return (warmup, warmup.Step);
            var sequence = new SequentialLR(optimizer, [warmup, main], [Warmup]);
            return (sequence, sequence.Step);
        }
        return main is null ? (null, () => { }) : (main, main.Step);
    }

    /// <summary>The training and test sets named by --data.</summary>
    public (TensorDataset Train, TensorDataset Test, string Name) LoadData()
    {
        switch (Data)
        {
            case "digits":
                var (train, test) = Digits.Load(testFraction: 0.2, seed: (ulong)Seed);
                return (train, test, "Digits");
            case "fashion-mnist":
                return (FashionMnist.Load(DataDir), FashionMnist.Load(DataDir, train: false), "Fashion-MNIST");
            case "mnist":
                if (DataDir is null) throw new CliException("--data mnist needs --data-dir DIR holding the four MNIST IDX files (train-images-idx3-ubyte.gz, ...).");
                return (Mnist.Load(DataDir), Mnist.Load(DataDir, train: false), "MNIST");
        }
        if (Directory.Exists(Data)) return (Mnist.Load(Data), Mnist.Load(Data, train: false), Data);
        if (!File.Exists(Data))
            throw new CliException($"--data '{Data}' is neither digits, fashion-mnist, mnist, a directory of IDX files nor a CSV file; check the name or path.");
        if (!Data.EndsWith(".csv", StringComparison.OrdinalIgnoreCase) && !Data.EndsWith(".csv.gz", StringComparison.OrdinalIgnoreCase))
            throw new CliException($"--data '{Data}' is a file but not .csv or .csv.gz; give a CSV file (label in the last column) or a directory of IDX files.");
        var all = Csv.Read(Data);
        if (TestData is not null) return (all, Csv.Read(TestData), Path.GetFileName(Data));
        // No test file: a seeded 80/20 split, the same on every machine.
        var perm = new Generator((ulong)Seed).Permutation(all.Count);
        int testCount = Math.Max(1, all.Count / 5);
        Tensor Rows(IEnumerable<int> rows) => Tensor.FromArray(rows.Select(i => (long)i).ToArray());
        var testRows = Rows(perm.Take(testCount));
        var trainRows = Rows(perm.Skip(testCount));
        return (new TensorDataset(all.Inputs.IndexSelect(0, trainRows), all.Targets.IndexSelect(0, trainRows)),
                new TensorDataset(all.Inputs.IndexSelect(0, testRows), all.Targets.IndexSelect(0, testRows)), Path.GetFileName(Data));
    }
}
