using System.Diagnostics;
using System.Globalization;
using GradFlow.Distributed;

/// <summary>
/// The `reducers` mode: one gradient-sized float32 buffer averaged over the ranks by the three routes a step can take,
/// alternated by blocks in one job: MPI_Allreduce (blocking: Open MPI's coll/tuned), MPI_Iallreduce + MPI_Wait (what
/// the DDP's MPI path starts during backward: coll/libnbc), and the shared-memory window (copy in, meet, and as the DDP does:
/// with two ranks each adds both segments into its buffer, with more each adds its share and copies every share out). Medians over the rounds of the time per call and of its ratio to
/// the shared window's in the same round.
/// </summary>
internal static unsafe class Reducers
{
    public static int Run(Communicator world, long bytes, int rounds, int iterations)
    {
        int n = (int)(bytes / 4);
        var buffer = GC.AllocateArray<float>(n, pinned: true);
        var shared = SharedMemoryAllreduce.TryCreate(world, bytes) ?? throw new InvalidOperationException("no shared window: the machines hold different numbers of ranks");
        void Fill() => Array.Fill(buffer, 0.5f + world.Rank);
        void Shm()
        {
            buffer.AsSpan().CopyTo(new Span<float>(shared.Mine, n));
            shared.Publish(null);
            if (shared.Fused) shared.SumPair<float>(0, buffer, destinationIsMine: true, world.Size);
            else
            {
                shared.ReduceShares<float>(n, world.Size);
                shared.CopyAveraged<float>(0, n, buffer);
            }
            shared.Release();
        }
        (string Name, Action Call)[] routes =
        [
            ("allreduce", () => world.Allreduce<float>(buffer)),
            ("iallreduce", () => world.StartAllreduce<float>(buffer).Wait()),
            ("shm", Shm),
        ];
        var times = routes.Select(_ => new List<double>()).ToArray();
        foreach (var (_, call) in routes) call(); // warm-up: connections, JIT, first touch of the window
        for (int round = 0; round < rounds; round++)
            for (int k = 0; k < routes.Length; k++)
            {
                int r = (k + round) % routes.Length;
                Fill();
                world.Barrier();
                var clock = Stopwatch.StartNew();
                for (int i = 0; i < iterations; i++) routes[r].Call();
                world.Barrier();
                times[r].Add(clock.Elapsed.TotalSeconds / iterations);
            }
        if (world.IsRoot)
            for (int r = 0; r < routes.Length; r++)
            {
                var ratio = times[r].Zip(times[2], (t, shm) => t / shm).Order().ToArray();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"reducers route={routes[r].Name} ranks={world.Size} bytes={bytes} us_median={times[r].Order().ElementAt(rounds / 2) * 1e6:F0} us_best={times[r].Min() * 1e6:F0} vs_shm_median={ratio[rounds / 2]:F2}"));
            }
        shared.Dispose();
        return 0;
    }
}
