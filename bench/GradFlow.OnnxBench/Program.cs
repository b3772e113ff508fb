using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using GradFlow;
using GradFlow.Kernels;
using GradFlow.NN;
using GradFlow.Onnx;
using GradFlow.Optim;
using Microsoft.ML.OnnxRuntime;

// Usage: GradFlow.OnnxBench [--case mlp|cnn]... [--side NAME]... [--threads N] [--seconds S] [--reps N]
// Exports the bench's mlp and cnn models (bench/GradFlow.Bench/Cases: same layers, same batch) with OnnxExporter and
// times, in one process on the same input, these sides (--side picks some; default all):
//   gradflow_eval        the eval-mode forward as a user writes it: model.Call(x) under Autograd.NoGrad()
//   gradflow_eval_arena  the same inside TensorArena.InferenceStep(), which recycles the pass's buffers
//   gradflow_train_fwd   the forward of a training step (grad recorded, inside TensorArena.Step()), no backward
//   gradflow_train_step  a whole training step as GradFlow.Bench times it: ZeroGrad, forward, cross entropy,
//                        backward, Adam, inside TensorArena.Step() (on a twin model, so the eval model stays exported)
//   onnxruntime          InferenceSession.Run with intra- and inter-op threads set to --threads (default 1)
// Blocks of five steps go round the sides in turn, so all see the same machine load. One JSON line per side and case:
// the median step in wall time and in the stepping thread's CPU time, bytes allocated and garbage collections per
// step, and the median over rounds of (side block median) / (gradflow_eval block median) and of
// (side) / (gradflow_train_step): a forward should cost about a third of a training step.
var names = new List<string>();
var sideNames = new List<string>();
int threads = 1, reps = 30;
double seconds = 2;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--case": names.Add(args[++i]); break;
        case "--side": sideNames.Add(args[++i]); break;
        case "--threads": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--seconds": seconds = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--reps": reps = Math.Max(5, int.Parse(args[++i], CultureInfo.InvariantCulture)); break;
        default: Console.Error.WriteLine($"unknown argument {args[i]}"); return 2;
    }
}
if (names.Count == 0) names = ["mlp", "cnn"];
string[] allSides = ["gradflow_eval", "gradflow_eval_arena", "gradflow_train_fwd", "gradflow_train_step", "onnxruntime"];
if (sideNames.Count == 0) sideNames = [.. allSides];
foreach (var s in sideNames.Where(s => !allSides.Contains(s)))
{
    Console.Error.WriteLine($"unknown side {s} ({string.Join(", ", allSides)})");
    return 2;
}
Parallelism.NumThreads = threads;

foreach (var name in names)
{
    var (model, shape, classes) = Build(name);
    var (trainModel, _, _) = Build(name);
    model.Eval();
    var x = Tensor.Randn(shape, DType.Float32, new Generator(1));
    var labels = Tensor.FromArray(Enumerable.Range(0, shape[0]).Select(i => 7L * i % classes).ToArray(), shape[0]);
    var bytes = OnnxExporter.Export(model, shape);

    using var options = new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = threads, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL };
    options.GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL;
    using var session = new InferenceSession(bytes, options);
    using var runOptions = new RunOptions();
    float[] data = x.ToArray<float>();
    using var input = OrtValue.CreateTensorValueFromMemory(data, [.. shape.Select(d => (long)d)]);
    string[] inputNames = ["input"], outputNames = ["output"];
    OrtValue[] inputs = [input];
    var inferenceArena = new TensorArena();
    var trainArena = new TensorArena();
    var optimizer = new Adam(trainModel.Parameters(), lr: 1e-3);
    var lossFn = new CrossEntropyLoss();
    var output = new float[shape[0] * classes];

    // Every side copies its output out, as ONNX Runtime's side must.
    float[] Eval()
    {
        using (Autograd.NoGrad()) model.Call(x).ToArray<float>().CopyTo(output);
        return output;
    }

    float[] EvalArena()
    {
        using (Autograd.NoGrad())
        using (inferenceArena.InferenceStep())
            model.Call(x).ToArray<float>().CopyTo(output);
        return output;
    }

    void TrainForward()
    {
        using (trainArena.Step()) trainModel.Call(x).ToArray<float>().CopyTo(output);
    }

    void TrainStep()
    {
        using (trainArena.Step())
        {
            optimizer.ZeroGrad();
            var loss = lossFn.Call(trainModel.Call(x), labels);
            loss.Backward();
            optimizer.Step();
        }
    }

    float[] Ort()
    {
        using var results = session.Run(runOptions, inputNames, inputs, outputNames);
        results[0].GetTensorDataAsSpan<float>().CopyTo(output);
        return output;
    }

    // The eval sides and ONNX Runtime agree before anything is timed.
    var expected = Eval().ToArray();
    double relErr = Math.Max(RelErr(expected, EvalArena()), RelErr(expected, Ort()));

    var sides = new Dictionary<string, Action>
    {
        ["gradflow_eval"] = () => Eval(),
        ["gradflow_eval_arena"] = () => EvalArena(),
        ["gradflow_train_fwd"] = TrainForward,
        ["gradflow_train_step"] = TrainStep,
        ["onnxruntime"] = () => Ort(),
    };
    var timed = sideNames.Select(s => new Side(s, sides[s])).ToList();

    var warm = Stopwatch.StartNew();
    while (warm.Elapsed.TotalSeconds < 1)
    {
        foreach (var side in timed) side.Step();
    }
    var clock = Stopwatch.StartNew();
    int rounds = 0;
    while (rounds * Side.Block < reps || clock.Elapsed.TotalSeconds < seconds)
    {
        foreach (var side in timed) side.TimeBlock();
        rounds++;
    }
    var eval = timed.Find(s => s.Name == "gradflow_eval");
    var train = timed.Find(s => s.Name == "gradflow_train_step");
    foreach (var side in timed) Console.WriteLine(side.Line(name, threads, relErr, eval, train));
}
return 0;

static (Module Model, int[] Shape, int Classes) Build(string name)
{
    var g = new Generator(0);
    return name switch
    {
        "mlp" => (new Sequential(new Linear(784, 1024, generator: g), new ReLU(), new Linear(1024, 1024, generator: g), new ReLU(),
            new Linear(1024, 10, generator: g)), [128, 784], 10),
        "cnn" => (new Sequential(new Conv2d(1, 32, 3, generator: g), new ReLU(), new MaxPool2d(2), new Conv2d(32, 64, 3, generator: g), new ReLU(),
            new MaxPool2d(2), new Flatten(), new Linear(1600, 128, generator: g), new ReLU(), new Linear(128, 10, generator: g)), [64, 1, 28, 28], 10),
        _ => throw new ArgumentException($"unknown case {name} (mlp, cnn)"),
    };
}

static double RelErr(float[] expected, float[] actual)
{
    double diff = 0, norm = 0;
    for (int i = 0; i < expected.Length; i++)
    {
        diff += (double)(expected[i] - actual[i]) * (expected[i] - actual[i]);
        norm += (double)expected[i] * expected[i];
    }
    return Math.Sqrt(diff / Math.Max(norm, 1e-30));
}

/// <summary>One timed side: per-step wall and thread-CPU times, and per-block medians for the ratios.</summary>
internal sealed partial class Side(string name, Action step)
{
    public const int Block = 5;

    private readonly List<double> _wall = [], _cpu = [], _blockMedians = [];
    private long _bytes, _collections, _faults;
    private double _sys;

    public string Name { get; } = name;

    public void Step() => step();

    public void TimeBlock()
    {
        var block = new List<double>(Block);
        long bytes = GC.GetAllocatedBytesForCurrentThread();
        int collections = GC.CollectionCount(0);
        var usage = ThreadUsage();
        for (int i = 0; i < Block; i++)
        {
            double cpu = ThreadCpuMs();
            long start = Stopwatch.GetTimestamp();
            step();
            block.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            _cpu.Add(ThreadCpuMs() - cpu);
        }
        _bytes += GC.GetAllocatedBytesForCurrentThread() - bytes;
        _collections += GC.CollectionCount(0) - collections;
        var after = ThreadUsage();
        _faults += after.MinorFaults - usage.MinorFaults;
        _sys += after.SystemMs - usage.SystemMs;
        _wall.AddRange(block);
        _blockMedians.Add(Median(block));
    }

    public string Line(string name, int threads, double relErr, Side? eval, Side? train)
    {
        string Ratio(string key, Side? baseline) =>
            baseline is null ? "" : string.Create(CultureInfo.InvariantCulture,
                $", \"{key}\": {Median([.. _blockMedians.Zip(baseline._blockMedians, (a, b) => a / b)]):F3}");
        return string.Create(CultureInfo.InvariantCulture,
            $"{{\"impl\": \"{Name}\", \"case\": \"onnx_infer_{name}\", \"threads\": {threads}, \"ms\": {Median(_wall):F4}, \"min_ms\": {_wall.Min():F4}, " +
            $"\"cpu_ms\": {Median(_cpu):F4}, \"cpu_mean_ms\": {_cpu.Average():F4}, \"reps\": {_wall.Count}, \"bytes_per_step\": {_bytes / _wall.Count}, " +
            $"\"gcs_per_100_steps\": {100.0 * _collections / _wall.Count:F1}, \"page_faults_per_step\": {_faults / _wall.Count}, \"sys_ms\": {_sys / _wall.Count:F3}, " +
            $"\"rel_err\": {relErr:G3}" +
            $"{Ratio("over_gradflow_eval", eval)}{Ratio("over_train_step", train)}}}");
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        int n = sorted.Count;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[(n / 2) - 1] + sorted[n / 2]) / 2;
    }

    // CPU time of the stepping thread (Linux CLOCK_THREAD_CPUTIME_ID): unlike wall time it leaves out the time another
    // process held the core. Elsewhere, wall time.
    private static double ThreadCpuMs()
    {
        if (OperatingSystem.IsLinux() && ClockGetTime(3, out var t) == 0) return (t.Seconds * 1e3) + (t.Nanoseconds / 1e6);
        return Stopwatch.GetTimestamp() * 1e3 / Stopwatch.Frequency;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    // getrusage(RUSAGE_THREAD): minor page faults (first touches of fresh memory) and kernel time of this thread.
    private static (long MinorFaults, double SystemMs) ThreadUsage()
    {
        if (!OperatingSystem.IsLinux()) return (0, 0);
        Span<long> usage = stackalloc long[18];
        if (GetRUsage(1, ref usage[0]) != 0) return (0, 0);
        return (usage[8], (usage[2] * 1e3) + (usage[3] / 1e3));
    }

    [LibraryImport("libc", EntryPoint = "getrusage")]
    private static partial int GetRUsage(int who, ref long usage);

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec time);
}
