// Data-parallel figures, printed one line per measurement (bench/distributed.sh runs every configuration):
//   throughput --case mlp|cnn [--blocks 7 --steps 10 --ddp 1 --bucket-mb 25]   training steps per second of the bench case
//       (bench/GradFlow.Bench's mlp and cnn, the same models and batches); under mpirun each rank trains its own batch with
//       DistributedDataParallel, alone it trains without. Prints examples per second over all ranks (median and best of the
//       blocks). --ddp 0 under mpirun: every rank trains its own model without DistributedDataParallel (no collective but
//       the barriers around each block), the ceiling two ranks could reach on this machine with communication for free.
//       Under DistributedDataParallel a `ddp` line also counts, per step, the MPI calls and bytes (load-independent).
//   ab --case mlp|cnn [--rounds 15 --steps 10 --bucket-mb 25]   A/B in one job, under mpirun -np 2: four sides trained in
//       turn by blocks of steps, each on its own copy of the model (the order rotating every round): solo (rank 0 trains
//       alone, rank 1 sleeps), none (both ranks train without communication), mpi and shm (DistributedDataParallel with
//       GradientReduction.Mpi and .SharedMemory; mpi-blocking, .Mpi without overlap). Prints the medians over rounds of each side's throughput against solo's
//       in the same round (the 1.8x goal is 2 ranks / 1 process), and each DDP's per-step time breakdown on each rank.
//   reducers [--bytes 7454760 --rounds 15 --iterations 10]   one buffer (the mlp's gradient by default) averaged by
//       MPI_Allreduce, MPI_Iallreduce + MPI_Wait and the shared-memory window in turn (Reducers.cs).
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
    "throughput" => Throughput(world, map.GetValueOrDefault("case", "mlp"), Int("blocks", 7), Int("steps", 10), Int("ddp", 1) == 1, Int("bucket-mb", 25),
        map.GetValueOrDefault("reduction", "shm") == "mpi" ? GradientReduction.Mpi : GradientReduction.SharedMemory),
    "reducers" => Reducers.Run(world, long.Parse(map.GetValueOrDefault("bytes", "7454760"), CultureInfo.InvariantCulture), Int("rounds", 15), Int("iterations", 10)),
    "ab" => AB.Run(world, map.GetValueOrDefault("case", "mlp"), Int("rounds", 15), Int("steps", 10), Int("bucket-mb", 25)),
    "allreduce" => Allreduce(world, Int("min", 4096), Int("max", 64 << 20)),
    _ => throw new ArgumentException($"unknown mode '{mode}'"),
});

static int Throughput(Communicator world, string name, int blocks, int steps, bool useDdp, int bucketMegabytes, GradientReduction reduction)
{
    var (model, optimizer, x, y) = Cases.Build(name);
    using var ddp = world.Size > 1 && useDdp
        ? new DistributedDataParallel(model, world, new DistributedDataParallelOptions { BucketBytes = (long)bucketMegabytes << 20, Reduction = reduction })
        : null;
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
    int warmBlocks = WarmUp(world, Step, steps);
    var times = new double[blocks];
    // What else competes for the core besides the kernels (docs/DISTRIBUTED.md, "Why two ranks may not scale"): bytes
    // allocated by the training thread and collections per step, the threads the process runs, and its core budget.
    long allocated = GC.GetAllocatedBytesForCurrentThread();
    int[] collections = [GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2)];
    long jitted = System.Runtime.JitInfo.GetCompiledMethodCount(currentThread: false);
    var calls = world.Counts;
    var jitTime = System.Runtime.JitInfo.GetCompilationTime(currentThread: false);
    for (int b = 0; b < blocks; b++)
    {
        world.Barrier();
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < steps; i++) Step();
        world.Barrier();
        times[b] = clock.Elapsed.TotalSeconds;
    }
    double perStep = (double)(GC.GetAllocatedBytesForCurrentThread() - allocated) / (blocks * steps);
    var mpi = world.Counts - calls;
    long jittedDuring = System.Runtime.JitInfo.GetCompiledMethodCount(currentThread: false) - jitted;
    double jitMs = (System.Runtime.JitInfo.GetCompilationTime(currentThread: false) - jitTime).TotalMilliseconds;
    string gcs = string.Join("/", collections.Select((c, g) => GC.CollectionCount(g) - c));
    Array.Sort(times);
    double examples = (double)world.Size * x.Size(0) * steps;
    if (world.IsRoot)
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"throughput case={name} ranks={world.Size} ddp={(ddp is null ? 0 : 1)} threads={Environment.GetEnvironmentVariable("GRADFLOW_NUM_THREADS") ?? "default"} examples_per_s_median={examples / times[blocks / 2]:F1} examples_per_s_best={examples / times[0]:F1}"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"process case={name} rank={world.Rank} ddp={(ddp is null ? 0 : 1)} cpus={Environment.ProcessorCount} kernel_threads={GradFlow.Kernels.Parallelism.NumThreads} os_threads={Process.GetCurrentProcess().Threads.Count} server_gc={System.Runtime.GCSettings.IsServerGC} alloc_bytes_per_step={perStep:F0} gc0/1/2={gcs} jit_methods_while_timed={jittedDuring} jit_ms_while_timed={jitMs:F0} warmup_blocks={warmBlocks}"));
    if (ddp is not null)
    {
        // Per step, counted (the same on a loaded machine): MPI calls and bytes, and the gradient bytes the DDP copies
        // into bucket buffers and back out (the small gradients; large ones are reduced in place). The barriers around
        // the blocks are the bench's, two per block, and are not counted.
        double n = blocks * steps;
        long gradientBytes = model.Parameters().Sum(p => (long)p.NumEl * p.DType.ElementSize());
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"ddp case={name} rank={world.Rank} gradient_bytes={gradientBytes} buckets={ddp.Buckets.Count} overlapped={ddp.BucketsOverlapped} completed_during_backward={ddp.BucketsCompletedDuringBackward} " +
            $"blocking_per_step={(mpi.BlockingCollectives - 2 * blocks) / n:F2} iallreduce_per_step={mpi.NonBlockingStarted / n:F2} tests_per_step={mpi.Tests / n:F2} " +
            $"tests_completed_per_step={mpi.TestsCompleted / n:F2} waits_per_step={mpi.Waits / n:F2} reduced_bytes_per_step={mpi.ReducedBytes / n:F0} " +
            $"other_bytes_per_step={mpi.OtherBytes / n:F0} ddp_copy_bytes_per_step={2 * ddp.CopiedGradientBytes}"));
    }
    return 0;
}

// Warm-up until, in two blocks in a row, no rank's JIT compiled a method (at most 100 blocks). Tiered compilation goes on
// recompiling hundreds of methods for many steps after the first (call counting, then tier 1 with PGO) on a background
// thread. A process alone runs it on the idle core; under mpirun each rank is bound to one core and that thread takes
// its training thread's time, which a short fixed warm-up hid inside the timed blocks of the ranks only.
static int WarmUp(Communicator world, Action step, int steps)
{
    Span<long> compiled = [0];
    int blocks = 0, quiet = 0;
    while (quiet < 2 && blocks < 100)
    {
        long before = System.Runtime.JitInfo.GetCompiledMethodCount(currentThread: false);
        for (int i = 0; i < steps; i++) step();
        compiled[0] = System.Runtime.JitInfo.GetCompiledMethodCount(currentThread: false) - before;
        world.Allreduce(compiled, ReduceOp.Max); // every rank runs the same number of steps: each step has collectives
        quiet = compiled[0] == 0 ? quiet + 1 : 0;
        blocks++;
    }
    return blocks;
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
