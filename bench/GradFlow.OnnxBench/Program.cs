using System.Diagnostics;
using System.Globalization;
using GradFlow;
using GradFlow.Kernels;
using GradFlow.NN;
using GradFlow.Onnx;
using Microsoft.ML.OnnxRuntime;

// Usage: GradFlow.OnnxBench [--case mlp|cnn]... [--threads N] [--seconds S] [--reps N]
// Exports the bench's mlp and cnn models (bench/GradFlow.Bench/Cases: same layers, same batch) with OnnxExporter and
// times one inference step of each side on the same input in the same process: GradFlow's eval-mode forward under
// NoGrad, and ONNX Runtime's InferenceSession.Run with intra- and inter-op threads set to --threads (default 1).
// Blocks of steps alternate between the two sides, so both see the same machine load; prints one JSON line per side
// and case, the second with the median over blocks of (ONNX Runtime block median) / (GradFlow block median).
var names = new List<string>();
int threads = 1, reps = 30;
double seconds = 2;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--case": names.Add(args[++i]); break;
        case "--threads": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--seconds": seconds = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--reps": reps = Math.Max(5, int.Parse(args[++i], CultureInfo.InvariantCulture)); break;
        default: Console.Error.WriteLine($"unknown argument {args[i]}"); return 2;
    }
}
if (names.Count == 0) names = ["mlp", "cnn"];
Parallelism.NumThreads = threads;

foreach (var name in names)
{
    var g = new Generator(0);
    (Module model, int[] shape) = name switch
    {
        "mlp" => ((Module)new Sequential(new Linear(784, 1024, generator: g), new ReLU(), new Linear(1024, 1024, generator: g), new ReLU(),
            new Linear(1024, 10, generator: g)), new[] { 128, 784 }),
        "cnn" => (new Sequential(new Conv2d(1, 32, 3, generator: g), new ReLU(), new MaxPool2d(2), new Conv2d(32, 64, 3, generator: g), new ReLU(),
            new MaxPool2d(2), new Flatten(), new Linear(1600, 128, generator: g), new ReLU(), new Linear(128, 10, generator: g)), new[] { 64, 1, 28, 28 }),
        _ => throw new ArgumentException($"unknown case {name} (mlp, cnn)"),
    };
    model.Eval();
    var x = Tensor.Randn(shape, DType.Float32, new Generator(1));
    var bytes = OnnxExporter.Export(model, shape);

    using var options = new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = threads, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL };
    options.GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL;
    using var session = new InferenceSession(bytes, options);
    using var runOptions = new RunOptions();
    float[] data = x.ToArray<float>();
    using var input = OrtValue.CreateTensorValueFromMemory(data, [.. shape.Select(d => (long)d)]);
    string[] inputNames = ["input"], outputNames = ["output"];
    OrtValue[] inputs = [input];

    Tensor GradFlowStep()
    {
        using (Autograd.NoGrad()) return model.Call(x);
    }

    float[] OrtStep()
    {
        using var results = session.Run(runOptions, inputNames, inputs, outputNames);
        return results[0].GetTensorDataAsSpan<float>().ToArray();
    }

    // The two sides agree before anything is timed.
    var expected = GradFlowStep().ToArray<float>();
    var actual = OrtStep();
    double diff = 0, norm = 0;
    for (int i = 0; i < expected.Length; i++)
    {
        diff += (double)(expected[i] - actual[i]) * (expected[i] - actual[i]);
        norm += (double)expected[i] * expected[i];
    }
    double relErr = Math.Sqrt(diff / Math.Max(norm, 1e-30));

    const int block = 5;
    List<double> gf = [], ort = [], ratios = [];
    var warm = Stopwatch.StartNew();
    while (warm.Elapsed.TotalSeconds < 1)
    {
        GradFlowStep();
        OrtStep();
    }
    var clock = Stopwatch.StartNew();
    while (gf.Count < reps || clock.Elapsed.TotalSeconds < seconds)
    {
        var a = Time(() => GradFlowStep());
        var b = Time(() => OrtStep());
        gf.AddRange(a);
        ort.AddRange(b);
        ratios.Add(Median(b) / Median(a));
    }
    Console.WriteLine(Line("gradflow", name, threads, gf, relErr, null));
    Console.WriteLine(Line("onnxruntime", name, threads, ort, relErr, Median(ratios)));

    static List<double> Time(Action step)
    {
        var times = new List<double>(block);
        for (int i = 0; i < block; i++)
        {
            long start = Stopwatch.GetTimestamp();
            step();
            times.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
        return times;
    }
}
return 0;

static double Median(List<double> values)
{
    var sorted = values.Order().ToList();
    int n = sorted.Count;
    return n % 2 == 1 ? sorted[n / 2] : (sorted[(n / 2) - 1] + sorted[n / 2]) / 2;
}

static string Line(string impl, string name, int threads, List<double> times, double relErr, double? ratio)
{
    string extra = ratio is { } r ? string.Create(CultureInfo.InvariantCulture, $", \"ort_over_gradflow\": {r:F3}") : "";
    return string.Create(CultureInfo.InvariantCulture,
        $"{{\"impl\": \"{impl}\", \"case\": \"onnx_infer_{name}\", \"threads\": {threads}, \"ms\": {Median(times):F4}, \"min_ms\": {times.Min():F4}, \"mean_ms\": {times.Average():F4}, \"reps\": {times.Count}, \"rel_err\": {relErr:G3}{extra}}}");
}
