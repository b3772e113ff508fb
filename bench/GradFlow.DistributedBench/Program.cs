// Data-parallel figures, printed one line per measurement (bench/distributed.sh runs every configuration):
//   throughput --case mlp|cnn [--blocks 7 --steps 10]   training steps per second of the bench case (bench/GradFlow.Bench's
//       mlp and cnn, the same models and batches); under mpirun each rank trains its own batch with DistributedDataParallel,
//       alone it trains without. Prints examples per second over all ranks (median and best of the blocks).
//   allreduce [--min 4096 --max 67108864]   in-place float32 allreduce through GradFlow's binding (Communicator.Allreduce,
//       MPI_Allreduce by P/Invoke) for buffers from --min to --max bytes; allreduce.c does the same in C for comparison.
// Timing: every rank meets at a barrier before each block; a block's time is rank 0's, the slowest rank ends it.
using System.Diagnostics;
using System.Globalization;
using GradFlow;
using GradFlow.Distributed;
using GradFlow.NN;
using GradFlow.Optim;

var mode = args.Length > 0 ? args[0] : "throughput";
var map = new Dictionary<string, string>();
for (int i = 1; i + 1 < args.Length; i += 2) map[args[i].TrimStart('-')] = args[i + 1];
int Int(string key, int fallback) => map.TryGetValue(key, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;

return Communicator.Run(world => mode switch
{
    "throughput" => Throughput(world, map.GetValueOrDefault("case", "mlp"), Int("blocks", 7), Int("steps", 10)),
    "allreduce" => Allreduce(world, Int("min", 4096), Int("max", 64 << 20)),
    _ => throw new ArgumentException($"unknown mode '{mode}'"),
});

static int Throughput(Communicator world, string name, int blocks, int steps)
{
    var (model, optimizer, x, y) = Cases.Build(name);
    using var ddp = world.Size > 1 ? new DistributedDataParallel(model, world) : null;
    var loss = new CrossEntropyLoss();
    var arena = new TensorArena();
    void Step()
    {
        using (arena.Step())
        {
            optimizer.ZeroGrad();
            loss.Call(model.Call(x), y).Backward();
            optimizer.Step();
        }
    }
    for (int i = 0; i < steps; i++) Step(); // warm-up: every hot method reaches tier 1
    var times = new double[blocks];
    for (int b = 0; b < blocks; b++)
    {
        world.Barrier();
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < steps; i++) Step();
        world.Barrier();
        times[b] = clock.Elapsed.TotalSeconds;
    }
    Array.Sort(times);
    double examples = (double)world.Size * x.Size(0) * steps;
    if (world.IsRoot)
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"throughput case={name} ranks={world.Size} threads={Environment.GetEnvironmentVariable("GRADFLOW_NUM_THREADS") ?? "default"} examples_per_s_median={examples / times[blocks / 2]:F1} examples_per_s_best={examples / times[0]:F1}"));
    return 0;
}

static int Allreduce(Communicator world, int minBytes, int maxBytes)
{
    for (long bytes = minBytes; bytes <= maxBytes; bytes *= 4)
    {
        var buffer = GC.AllocateArray<float>((int)(bytes / 4), pinned: true);
        Array.Fill(buffer, 1f / world.Size);
        int iterations = (int)Math.Clamp((256L << 20) / bytes, 5, 1000); // about 256 MB through each rank per block
        double best = double.MaxValue;
        world.Allreduce<float>(buffer); // warm-up: connections, JIT
        for (int block = 0; block < 5; block++)
        {
            world.Barrier();
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < iterations; i++) world.Allreduce<float>(buffer);
            best = Math.Min(best, clock.Elapsed.TotalSeconds / iterations);
        }
        // Bus bandwidth as NCCL's tests define it: what each rank's link carries in a ring, 2 (p - 1) / p bytes per byte.
        double bus = 2.0 * (world.Size - 1) / world.Size * bytes / best;
        if (world.IsRoot)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"allreduce impl=gradflow ranks={world.Size} bytes={bytes} us={best * 1e6:F1} bus_GBps={bus / 1e9:F3}"));
    }
    return 0;
}

internal static class Cases
{
    // bench/GradFlow.Bench/Cases/MlpCase.cs and CnnCase.cs: the same models, batches, data and optimisers.
    public static (Module, Optimizer, Tensor, Tensor) Build(string name)
    {
        var g = new Generator(0);
        return name switch
        {
            "mlp" => With(new Sequential(new Linear(784, 1024, generator: g), new ReLU(), new Linear(1024, 1024, generator: g), new ReLU(),
                new Linear(1024, 10, generator: g)), m => new SGD(m.Parameters(), lr: 0.01, momentum: 0.9), Wave(128, 784), Labels(128, 10)),
            "cnn" => With(new Sequential(
                new Conv2d(1, 32, 3, generator: g), new ReLU(), new MaxPool2d(2),
                new Conv2d(32, 64, 3, generator: g), new ReLU(), new MaxPool2d(2),
                new Flatten(), new Linear(1600, 128, generator: g), new ReLU(), new Linear(128, 10, generator: g)),
                m => new Adam(m.Parameters(), lr: 1e-3), Wave(64, 1, 28, 28), Labels(64, 10)),
            _ => throw new ArgumentException($"unknown case '{name}' (mlp, cnn)"),
        };
    }

    private static (Module, Optimizer, Tensor, Tensor) With(Module model, Func<Module, Optimizer> optimizer, Tensor x, Tensor y) => (model, optimizer(model), x, y);

    private static Tensor Wave(params int[] shape)
    {
        int n = shape.Aggregate(1, (a, b) => a * b);
        var data = new float[n];
        for (int i = 0; i < n; i++) data[i] = (float)Math.Sin(0.1 * i);
        return Tensor.FromArray(data, shape);
    }

    private static Tensor Labels(int n, int classes)
    {
        var data = new long[n];
        for (int i = 0; i < n; i++) data[i] = 7L * i % classes;
        return Tensor.FromArray(data, n);
    }
}
