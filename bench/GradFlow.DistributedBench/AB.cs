using System.Diagnostics;
using System.Globalization;
using GradFlow;
using GradFlow.Distributed;
using GradFlow.NN;
using GradFlow.Optim;

/// <summary>
/// The `ab` mode: the data-parallel step's variants against one process, alternated by blocks in one job so that the
/// machine's load, which moves absolute figures by tens of percent here, falls on every side alike; only ratios within a
/// round are kept, and their medians over the rounds reported.
/// </summary>
internal static class AB
{
    private sealed class Side(string name, Module model, Optimizer optimizer, DistributedDataParallel? ddp)
    {
        public string Name { get; } = name;
        public Module Model { get; } = model;
        public Optimizer Optimizer { get; } = optimizer;
        public DistributedDataParallel? Ddp { get; } = ddp;
        public TensorArena Arena { get; } = new();
        public List<double> Seconds { get; } = [];
        public DistributedStepTimes Times;
    }

    public static int Run(Communicator world, string name, int rounds, int steps, int bucketMegabytes)
    {
        if (world.Size != 2) throw new ArgumentException("ab runs under mpirun -np 2");
        DistributedDataParallel Ddp(Module m, GradientReduction r, bool overlap = true) =>
            new(m, world, new DistributedDataParallelOptions { BucketBytes = (long)bucketMegabytes << 20, Reduction = r, Profile = true, Overlap = overlap });
        var sides = new List<Side>();
        foreach (var side in new[] { "solo", "none", "mpi", "shm", "mpi-blocking" })
        {
            var (model, optimizer, _, _) = Cases.Build(name);
            var ddp = side switch
            {
                "mpi" => Ddp(model, GradientReduction.Mpi),
                "shm" => Ddp(model, GradientReduction.SharedMemory),
                "mpi-blocking" => Ddp(model, GradientReduction.Mpi, overlap: false), // MPI_Allreduce (coll/tuned) after backward
                _ => null,
            };
            sides.Add(new Side(side, model, optimizer, ddp));
        }
        var (_, _, x, y) = Cases.Build(name);
        var loss = new CrossEntropyLoss();
        void Step(Side s)
        {
            using (s.Arena.Step())
            {
                s.Optimizer.ZeroGrad();
                loss.Call(s.Model.Call(x), y).Backward();
                s.Optimizer.Step();
            }
        }
        // Warm-up: every side until the JIT is quiet (see Program.WarmUp), solo run by both ranks here.
        for (int warm = 0; warm < 8; warm++)
            foreach (var s in sides)
                for (int i = 0; i < steps; i++) Step(s);
        foreach (var s in sides) s.Times = s.Ddp?.StepTimes ?? default; // the breakdown counts the timed rounds only
        float[] token = GC.AllocateArray<float>(1, pinned: true);
        for (int round = 0; round < rounds; round++)
            for (int k = 0; k < sides.Count; k++)
            {
                var s = sides[(k + round) % sides.Count];
                world.Barrier();
                var clock = Stopwatch.StartNew();
                if (s.Name == "solo")
                {
                    // Rank 0 trains alone; rank 1 sleeps, polling a non-blocking allreduce that rank 0 joins when done.
                    if (world.IsRoot) for (int i = 0; i < steps; i++) Step(s);
                    double elapsed = clock.Elapsed.TotalSeconds;
                    var request = world.StartAllreduce<float>(token);
                    while (!request.Test()) Thread.Sleep(1);
                    s.Seconds.Add(elapsed);
                    continue;
                }
                for (int i = 0; i < steps; i++) Step(s);
                world.Barrier();
                s.Seconds.Add(clock.Elapsed.TotalSeconds);
            }
        var solo = sides[0].Seconds;
        foreach (var s in sides.Skip(1))
        {
            // 2 ranks' examples over 1 process's in the same round: (2 / t_side) / (1 / t_solo).
            var ratios = s.Seconds.Zip(solo, (t, t0) => 2 * t0 / t).Order().ToArray();
            if (world.IsRoot)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"ab case={name} side={s.Name} vs_solo_median={ratios[ratios.Length / 2]:F3} min={ratios[0]:F3} max={ratios[^1]:F3} step_ms_median={Median(s.Seconds) / steps * 1e3:F2} solo_step_ms_median={Median(solo) / steps * 1e3:F2}"));
        }
        foreach (var s in sides.Skip(3))
        {
            // Block time of the previous path (mpi: MPI_Iallreduce) over this side's, round by round: above 1 is faster.
            var speedup = s.Seconds.Zip(sides[2].Seconds, (t, mpi) => mpi / t).Order().ToArray();
            if (world.IsRoot)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ab case={name} side={s.Name} speedup_over_mpi_median={speedup[speedup.Length / 2]:F3} min={speedup[0]:F3} max={speedup[^1]:F3} rounds={rounds}"));
        }
        // Each rank's breakdown, printed whole in one write so the two ranks' lines never mix.
        foreach (var s in sides.Where(s => s.Ddp is not null))
        {
            var t = s.Ddp!.StepTimes - s.Times;
            double ms = 1e3 / Math.Max(1, t.Steps);
            Console.Out.Write(string.Create(CultureInfo.InvariantCulture,
                $"breakdown case={name} side={s.Name} rank={world.Rank} shared={s.Ddp!.SharedMemoryReduction} ms_per_step: header={t.Header * ms:F3} imbalance={t.Imbalance * ms:F3} launch={t.Launch * ms:F3} wait={t.Wait * ms:F3} reduce={t.Reduce * ms:F3} average={t.Average * ms:F3} compare={t.Compare * ms:F3} total={t.Total * ms:F3} step={Median(s.Seconds) / steps * 1e3:F2}\n"));
            Console.Out.Flush();
        }
        foreach (var s in sides) s.Ddp?.Dispose();
        return 0;
    }

    private static double Median(List<double> xs)
    {
        var sorted = xs.Order().ToArray();
        return sorted[sorted.Length / 2];
    }
}
