// The distributed tests' worker: `mpirun -np 2 dotnet GradFlow.Distributed.Worker.dll <mode> [options]`.
//   train       data-parallel SGD on a seeded MLP: rank r takes rows [r*B, (r+1)*B) of each step's global batch of
//               size*B rows; writes every parameter's bits to OUT.rank<r>, and rank 0 a run log and a checkpoint.
//   reference   the same training in one process without MPI, each step's global batch of 2B rows either whole (--halves 1)
//               or as --halves micro-batches whose summed gradients are divided by their number, as the allreduce does.
//   mismatch    rank 1 builds a wider hidden layer than rank 0.
//   die         rank 1 exits in the middle of training, without a word to MPI.
//   collectives each binding once, every rank printing what it received.
//   threads     every rank prints the cores it may run on and its kernel threads.
//   window      the shared-memory reduction alone, --steps reductions of a known float64 bucket in a row, the last local
//               rank reading late on every other one; every rank counts the elements that differ from the exact average.
// Options: --out PATH --steps N --batch B --dtype f32|f64 --bucket-bytes X --overlap 0|1 --nan-rank R --nan-step S
//          --accumulate K (micro-batches per rank per step, all but the last under NoSync) --halves K
//          --scale-rank R --scale F (rank R multiplies its loss by F) --unused 1 (a layer the forward never calls)
//          --thread 1 (train on a thread of its own) --batchnorm 1 (a BatchNorm1d after the first layer)
//          --buffers broadcast|average|none (DistributedDataParallelOptions.Buffers; for reference: what to mimic)
//          --skip-nosync-rank R (rank R ignores --accumulate's NoSync scopes and synchronises every micro-batch)
//          --stop-rank R --stop-step S (rank R alone calls RequestStop before step S) --signal 1 (SIGUSR1 calls RequestStop,
//          and training runs, cycling through its data, until a stop is requested: "rank 0: training" says it began)
//          --reduction shm|mpi (DistributedDataParallelOptions.Reduction; "rank r: shared memory True" says which ran)
//          --ranks N (reference: the global batch of N ranks, N*B rows a step)
//          --in-place-bytes X (DistributedDataParallelOptions.InPlaceBytes) --part-rank R (rank R moves one weight by one ulp before the checkpoint, which every rank must then refuse)
using System.Globalization;
using GradFlow;
using GradFlow.Diagnostics;
using GradFlow.Distributed;
using GradFlow.NN;
using GradFlow.Optim;
using GradFlow.Reporting;

var mode = args.Length > 0 ? args[0] : "train";
var options = Options.Parse(args.Skip(1).ToArray());
return mode switch
{
    "train" => Communicator.Run(world => Train(world, options)),
    "reference" => Reference(options),
    "mismatch" => Communicator.Run(world => Mismatch(world, options)),
    "collectives" => Communicator.Run(world => Collectives(world)),
    "die" => Communicator.Run(world => Die(world, options)),
    "window" => Communicator.Run(world => Window(world, options)),
    "threads" => Communicator.Run(world =>
    {
        Console.WriteLine($"rank {world.Rank}: cpus {Environment.ProcessorCount} threads {GradFlow.Kernels.Parallelism.NumThreads}");
        return 0;
    }),
    _ => throw new ArgumentException($"unknown mode '{mode}'"),
};

static int Train(Communicator world, Options o)
{
    var net = Model.Build(o.DType, hidden: 32, seed: (ulong)(1000 + world.Rank), o.BatchNorm); // different on each rank: DDP's broadcast makes them equal
    // With --unused 1 the model also holds a layer the forward never calls: backward cannot reach it.
    Module model = o.Unused ? new Sequential(net, new Linear(4, 4, dtype: o.DType, generator: new Generator((ulong)world.Rank))) : net;
    var ddp = new DistributedDataParallel(model, world, new DistributedDataParallelOptions { BucketBytes = o.BucketBytes, InPlaceBytes = o.InPlaceBytes, Overlap = o.Overlap, Buffers = o.Buffers, Reduction = o.Reduction });
    var optimizer = new SGD(model.Parameters(), lr: 0.1, momentum: 0.9);
    using var monitor = GradientMonitor.Attach(model, optimizer);
    ddp.Watch(monitor);
    using var log = world.IsRoot && o.Out is not null ? RunLog.Attach(monitor, o.Out + ".runlog.jsonl") : null;
    var unusedBefore = o.Unused ? ((Sequential)model)[1].Parameters().Select(p => p.ToDoubleArray()).ToArray() : [];
    var data = Model.Data(o.DType, o.Steps * world.Size * o.Batch);
    // SIGUSR1 is 10 on Linux; PosixSignal names only the portable signals, and takes others by number.
    using var usr1 = o.Signal ? System.Runtime.InteropServices.PosixSignalRegistration.Create((System.Runtime.InteropServices.PosixSignal)10, c =>
    {
        c.Cancel = true;
        ddp.RequestStop();
    }) : null;
    void Loop()
    {
        for (int step = 0; o.Signal || step < o.Steps; step++)
        {
            if (world.Rank == o.StopRank && step == o.StopStep) ddp.RequestStop();
            Step(step);
            if (step == 0 && world.IsRoot && o.Signal) Console.WriteLine("rank 0: training");
            if (ddp.StopRequested)
            {
                Console.WriteLine($"rank {world.Rank}: stopped after step {step + 1}");
                return;
            }
        }
    }
    void Step(int step)
    {
        optimizer.ZeroGrad();
        int rows = o.Batch / o.Accumulate;
        for (int k = 0; k < o.Accumulate; k++)
        {
            int start = (step % o.Steps * world.Size + world.Rank) * o.Batch + k * rows;
            var (x, y) = (data.X.Narrow(0, start, rows), data.Y.Narrow(0, start, rows));
            if (world.Rank == o.NanRank && step == o.NanStep && k == 0) x = x * Tensor.FromArray(new[] { double.NaN }).To(o.DType);
            var loss = Functional.MseLoss(net.Call(x), y);
            if (o.Accumulate > 1) loss = loss * (1.0 / o.Accumulate);
            if (world.Rank == o.ScaleRank) loss = loss * o.Scale; // a rank whose gradients stray from the others'
            if (k < o.Accumulate - 1 && world.Rank != o.SkipNoSyncRank)
            {
                using (ddp.NoSync()) loss.Backward();
            }
            else loss.Backward();
        }
        optimizer.Step();
    }
    if (o.OtherThread)
    {
        // Training on another thread than the one that built the DDP (and, here, the monitor: it watches its own thread).
        var thread = new Thread(Loop);
        thread.Start();
        thread.Join();
    }
    else Loop();
    if (ddp.Latest?.FirstNonFinite is { } f)
        Console.WriteLine($"rank {world.Rank}: first non-finite gradient at step {f.Step} on rank {f.Rank} in {f.Parameter}");
    Console.WriteLine($"rank {world.Rank}: syncs {ddp.SyncCount}, divergent [{string.Join(",", ddp.Latest?.DivergentRanks ?? [])}]");
    if (o.Unused)
        Console.WriteLine($"rank {world.Rank}: unused layer unchanged {((Sequential)model)[1].Parameters().Select(p => p.ToDoubleArray()).Zip(unusedBefore).All(z => z.First.SequenceEqual(z.Second))}");
    Console.WriteLine($"rank {world.Rank}: {ddp.Buckets.Count} buckets, {ddp.BucketsOverlapped} started during backward");
    Console.WriteLine($"rank {world.Rank}: shared memory {ddp.SharedMemoryReduction}");
    if (o.Out is not null)
    {
        Model.WriteBits(model, $"{o.Out}.rank{world.Rank}");
        if (world.Rank == o.PartRank)
            using (Autograd.NoGrad())
            {
                var bias = model.NamedParameters().Last().Parameter; // the weights part: one value moves by one ulp
                var v = bias.ToArray<float>();
                v[0] = MathF.BitIncrement(v[0]);
                bias.CopyFrom(Tensor.FromArray(v, v.Length));
            }
        // Collective: every rank's model and optimiser state is checked against what rank 0 wrote.
        ddp.SaveCheckpoint(o.Out + ".checkpoint", m => GradFlow.Training.Checkpoint.Capture(m, optimizer, step: ddp.SyncCount));
        // Every rank reads the file rank 0 wrote after the barrier and checks it holds its own weights.
        var saved = GradFlow.Training.Checkpoint.Load(o.Out + ".checkpoint").Model;
        foreach (var (name, p) in model.NamedParameters())
            if (!saved[name].ToDoubleArray().SequenceEqual(p.ToDoubleArray())) throw new InvalidOperationException($"rank {world.Rank}: checkpoint differs at {name}");
        Console.WriteLine($"rank {world.Rank}: checkpoint matches");
    }
    ddp.Dispose();
    return 0;
}

static int Reference(Options o)
{
    var model = Model.Build(o.DType, hidden: 32, seed: 1000, o.BatchNorm); // rank 0's initial weights
    var optimizer = new SGD(model.Parameters(), lr: 0.1, momentum: 0.9);
    int global = o.Ranks * o.Batch; // what --ranks ranks of --batch rows take per step
    var data = Model.Data(o.DType, o.Steps * global);
    int parts = o.Halves;
    int rows = global / parts;
    var buffers = model.Buffers().ToArray();
    for (int step = 0; step < o.Steps; step++)
    {
        optimizer.ZeroGrad();
        // Each part's forward updates the running statistics from the same starting point, as each rank's does; then
        // they become part 0's (rank 0's, broadcast), the parts' mean (average), or stay the last part's (none).
        var before = buffers.Select(b => b.Clone()).ToArray();
        var after = new Tensor[parts][];
        for (int k = 0; k < parts; k++)
        {
            for (int i = 0; i < buffers.Length; i++) buffers[i].CopyFrom(before[i]);
            Functional.MseLoss(model.Call(data.X.Narrow(0, step * global + k * rows, rows)), data.Y.Narrow(0, step * global + k * rows, rows)).Backward();
            after[k] = buffers.Select(b => b.Clone()).ToArray();
        }
        for (int i = 0; i < buffers.Length; i++)
        {
            var merged = o.Buffers == BufferSync.Average && buffers[i].DType.IsFloatingPoint() ? after.Skip(1).Aggregate(after[0][i], (sum, a) => sum + a[i]) / parts
                : o.Buffers == BufferSync.None ? after[^1][i] : after[0][i];
            buffers[i].CopyFrom(merged);
        }
        if (parts > 1)
            using (Autograd.NoGrad())
                foreach (var p in model.Parameters()) p.Grad = p.Grad! / parts;
        optimizer.Step();
    }
    Model.WriteBits(model, o.Out ?? throw new ArgumentException("--out is required"));
    return 0;
}

static int Mismatch(Communicator world, Options o)
{
    var model = Model.Build(DType.Float32, hidden: world.Rank == 1 ? 48 : 32, seed: 1);
    using var ddp = new DistributedDataParallel(model, world, new DistributedDataParallelOptions { Reduction = o.Reduction });
    return 0;
}

static int Collectives(Communicator world)
{
    int r = world.Rank;
    var sum = new double[] { r + 1, 10 * (r + 1) };
    world.Allreduce<double>(sum);
    var max = new long[] { r, -r };
    world.Allreduce<long>(max, ReduceOp.Max);
    var min = new float[] { r };
    world.Allreduce<float>(min, ReduceOp.Min);
    var pending = new float[1 << 16];
    Array.Fill(pending, r + 0.5f);
    var request = world.StartAllreduce<float>(pending);
    request.Wait();
    var broadcast = new int[] { r == 1 ? 42 : 0 };
    world.Broadcast<int>(broadcast, root: 1);
    var gathered = world.AllGather(r * r);
    var bytes = world.AllGatherBytes(System.Text.Encoding.UTF8.GetBytes(new string('x', r + 1)));
    world.Barrier();
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"rank {r}/{world.Size}: sum {sum[0]} {sum[1]} max {max[0]} {max[1]} min {min[0]} async {pending[0]} {pending[^1]} {request.IsCompleted} bcast {broadcast[0]} gather {string.Join(",", gathered)} bytes {string.Join(",", bytes.Select(b => b.Length))}"));
    return 0;
}

// Each reduction's values differ from the previous one's, and the last local rank sleeps before reading every other
// reduction while the others go on and write the next: a set overwritten before every rank has read it shows as wrong
// averages. Half the reductions (on two ranks) sum into a buffer that holds this rank's values, as the DDP's gradients do.
static unsafe int Window(Communicator world, Options o)
{
    const int count = 1000; // not a multiple of the shares' cache lines
    using var shared = SharedMemoryAllreduce.TryCreate(world, count * sizeof(double)) ?? throw new InvalidOperationException("no shared window");
    static double Value(int use, int rank, int i) => (use * 1000.0 + i) * (rank + 1) + 0.25 * rank;
    var result = new double[count];
    long wrong = 0;
    for (int use = 0; use < o.Steps; use++)
    {
        var mine = new Span<double>(shared.Mine, count);
        for (int i = 0; i < count; i++) mine[i] = Value(use, world.Rank, i);
        shared.Publish(null);
        if (shared.LocalRank == shared.LocalSize - 1 && use % 2 == 0) Thread.Sleep(30);
        bool holdsMine = use % 4 < 2;
        if (holdsMine) mine.CopyTo(result);
        if (shared.Fused) shared.SumPair<double>(0, result, holdsMine, world.Size);
        else
        {
            shared.ReduceShares<double>(count, world.Size);
            shared.CopyAveraged<double>(0, count, result);
        }
        shared.Release();
        for (int i = 0; i < count; i++)
        {
            double sum = Value(use, 0, i);
            for (int r = 1; r < world.Size; r++) sum += Value(use, r, i);
            if (BitConverter.DoubleToInt64Bits(result[i]) != BitConverter.DoubleToInt64Bits(sum / world.Size)) wrong++;
        }
    }
    Console.WriteLine($"rank {world.Rank}: window sets {shared.Sets} fused {shared.Fused} reductions {o.Steps} wrong {wrong}");
    return 0;
}

static int Die(Communicator world, Options o)
{
    var model = Model.Build(DType.Float32, hidden: 32, seed: 1);
    using var ddp = new DistributedDataParallel(model, world);
    var data = Model.Data(DType.Float32, o.Steps * world.Size * o.Batch);
    for (int step = 0; step < o.Steps; step++)
    {
        if (world.Rank == 1 && step == 2) Environment.Exit(3);
        int start = (step * world.Size + world.Rank) * o.Batch;
        Functional.MseLoss(model.Call(data.X.Narrow(0, start, o.Batch)), data.Y.Narrow(0, start, o.Batch)).Backward();
    }
    return 0;
}

internal sealed record Options(string? Out, int Steps, int Batch, DType DType, long BucketBytes, bool Overlap, int NanRank, int NanStep, int Accumulate, int Halves, int ScaleRank, double Scale, bool Unused, bool OtherThread,
    bool BatchNorm, BufferSync Buffers, int SkipNoSyncRank, int StopRank, int StopStep, bool Signal, int PartRank, long InPlaceBytes,
    GradientReduction Reduction, int Ranks)
{
    public static Options Parse(string[] args)
    {
        var map = new Dictionary<string, string>();
        for (int i = 0; i + 1 < args.Length; i += 2) map[args[i].TrimStart('-')] = args[i + 1];
        string Get(string key, string fallback) => map.TryGetValue(key, out var v) ? v : fallback;
        int Int(string key, int fallback) => int.Parse(Get(key, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);
        return new Options(map.GetValueOrDefault("out"), Int("steps", 5), Int("batch", 8), Get("dtype", "f32") == "f64" ? DType.Float64 : DType.Float32,
            long.Parse(Get("bucket-bytes", (25L << 20).ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture), Get("overlap", "1") == "1",
            Int("nan-rank", -1), Int("nan-step", -1), Int("accumulate", 1), Int("halves", 2), Int("scale-rank", -1),
            double.Parse(Get("scale", "1"), CultureInfo.InvariantCulture), Get("unused", "0") == "1", Get("thread", "0") == "1",
            Get("batchnorm", "0") == "1", Enum.Parse<BufferSync>(Get("buffers", "broadcast"), ignoreCase: true), Int("skip-nosync-rank", -1),
            Int("stop-rank", -1), Int("stop-step", -1), Get("signal", "0") == "1", Int("part-rank", -1),
            long.Parse(Get("in-place-bytes", (256L << 10).ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture),
            Get("reduction", "shm") == "mpi" ? GradientReduction.Mpi : GradientReduction.SharedMemory, Int("ranks", 2));
    }
}

internal static class Model
{
    public static Sequential Build(DType dtype, int hidden, ulong seed, bool batchNorm = false)
    {
        var g = new Generator(seed);
        if (batchNorm)
            return new Sequential(new Linear(16, hidden, dtype: dtype, generator: g), new BatchNorm1d(hidden, dtype: dtype), new Tanh(),
                new Linear(hidden, hidden, dtype: dtype, generator: g), new ReLU(), new Linear(hidden, 4, dtype: dtype, generator: g));
        return new Sequential(new Linear(16, hidden, dtype: dtype, generator: g), new Tanh(), new Linear(hidden, hidden, dtype: dtype, generator: g), new ReLU(),
            new Linear(hidden, 4, dtype: dtype, generator: g));
    }

    // A seeded regression task: targets from a fixed random linear map of the inputs, through tanh.
    public static (Tensor X, Tensor Y) Data(DType dtype, int rows)
    {
        var g = new Generator(7);
        var x = Tensor.Randn([rows, 16], dtype, g);
        var w = Tensor.Randn([16, 4], dtype, g);
        return (x, x.MatMul(w).Tanh());
    }

    public static void WriteBits(Module model, string path)
    {
        using var w = new StreamWriter(path);
        foreach (var (name, p) in model.NamedParameters().Concat(model.NamedBuffers()))
            w.WriteLine(name + " " + string.Join(" ", p.ToDoubleArray().Select(v => BitConverter.DoubleToInt64Bits(v).ToString("x16", CultureInfo.InvariantCulture))));
    }
}
