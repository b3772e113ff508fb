using System.Diagnostics;
using GradFlow;
using GradFlow.Optim;
using GradFlow.Tests.Formats;
using GradFlow.Training;

// gradflow-fuzz fuzz <reader|all> <cases> [first]   damaged copies per reader; prints clean / other / hang counts
// gradflow-fuzz save-loop <dir>                     saves a checkpoint in a loop until killed
// gradflow-fuzz check <dir>                         loads and restores the newest checkpoint; counts temporary files
return args.FirstOrDefault() switch
{
    "fuzz" when args.Length >= 3 => Fuzz(args[1], int.Parse(args[2]), args.Length > 3 ? int.Parse(args[3]) : 0),
    "save-loop" when args.Length == 2 => SaveLoop(args[1]),
    "check" when args.Length == 2 => Check(args[1]),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: fuzz <reader|all> <cases> [first] | save-loop <dir> | check <dir>");
    return 2;
}

static int Fuzz(string which, int cases, int first)
{
    var readers = which == "all" ? DamagedFiles.Readers : [which];
    using var files = new DamagedFiles();
    int failedReaders = 0;
    foreach (var reader in readers)
    {
        files.Original(reader);
        long clean = 0, slowest = 0;
        var other = new Dictionary<string, int>();
        string? firstOther = null;
        long started = Stopwatch.GetTimestamp();
        int current = -1;
        // A case that runs for a minute is a hang: report it and stop (the suite's readers bound every size).
        var watchdog = new Thread(() =>
        {
            int seen = -2;
            long since = Stopwatch.GetTimestamp();
            while (true)
            {
                Thread.Sleep(1000);
                int now = Volatile.Read(ref current);
                if (now != seen) { (seen, since) = (now, Stopwatch.GetTimestamp()); continue; }
                if (now >= 0 && Stopwatch.GetElapsedTime(since).TotalSeconds > 60)
                {
                    Console.WriteLine($"{reader}: HANG at case {now}");
                    Environment.Exit(3);
                }
            }
        })
        { IsBackground = true };
        watchdog.Start();
        for (int seed = first; seed < first + cases; seed++)
        {
            Volatile.Write(ref current, seed);
            long t0 = Stopwatch.GetTimestamp();
            try
            {
                files.ReadCase(reader, seed);
                clean++;
            }
            catch (Exception ex)
            {
                string key = ex.GetType().Name;
                other[key] = other.GetValueOrDefault(key) + 1;
                firstOther ??= $"case {seed}: {ex}";
            }
            slowest = Math.Max(slowest, (long)Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        }
        Volatile.Write(ref current, -1);
        int others = other.Values.Sum();
        if (others > 0) failedReaders++;
        Console.WriteLine($"{reader}: {cases} cases from {first}: {clean} clean (loaded or InvalidDataException naming the file), {others} other "
            + $"[{string.Join(", ", other.Select(kv => $"{kv.Key} {kv.Value}"))}], 0 hangs, slowest case {slowest} ms, {Stopwatch.GetElapsedTime(started).TotalSeconds:F0} s");
        if (firstOther is not null) Console.WriteLine("  first: " + firstOther.Split('\n')[0]);
    }
    return failedReaders == 0 ? 0 : 1;
}

static (Dictionary<string, Tensor> Model, Adam Opt, StepLR Sched, Generator Data) NewRun()
{
    // About 4 MB of tensors, so a kill often lands inside a write.
    var model = new Dictionary<string, Tensor>
    {
        ["0.weight"] = Tensor.Randn([256, 1024], DType.Float32, new Generator(1), requiresGrad: true),
        ["0.bias"] = Tensor.Zeros([1024], DType.Float32, requiresGrad: true),
    };
    var opt = new Adam(model.Values, lr: 1e-3);
    return (model, opt, new StepLR(opt, 10, 0.5), new Generator(2));
}

static int SaveLoop(string dir)
{
    var (model, opt, sched, data) = NewRun();
    string path = Path.Combine(dir, "run.safetensors");
    for (long step = 1; ; step++)
    {
        var x = Tensor.Randn([8, 256], DType.Float32, data);
        opt.ZeroGrad();
        var y = x.MatMul(model["0.weight"]) + model["0.bias"];
        (y * y).Mean().Backward();
        opt.Step();
        sched.Step();
        Checkpoint.Capture(model, opt, sched, new Dictionary<string, Generator> { ["data"] = data }, step).Save(path);
    }
}

static int Check(string dir)
{
    string path = Path.Combine(dir, "run.safetensors");
    int temps = Directory.GetFiles(dir, ".run.safetensors.*.tmp").Length;
    if (!File.Exists(path))
    {
        Console.WriteLine($"none {temps}");
        return 0;
    }
    try
    {
        var c = Checkpoint.Load(path);
        var (model, opt, sched, data) = NewRun();
        c.Restore(model, opt, sched, new Dictionary<string, Generator> { ["data"] = data });
        Console.WriteLine($"ok {temps} {c.Step}");
        return 0;
    }
    catch (Exception ex)
    {
        Console.WriteLine($"torn {temps} {ex.GetType().Name}: {ex.Message}");
        return 1;
    }
}
