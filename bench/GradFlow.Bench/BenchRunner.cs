using System.Diagnostics;
using System.Globalization;

namespace GradFlow.Bench;

/// <summary>
/// Times a case: warm-up (at least <c>warmup</c> steps and <see cref="MinSeconds"/>, so the JIT's tier-1
/// code, packing buffers and worker threads are in place), then timed steps (at least <c>reps</c> and
/// <see cref="MinSeconds"/>); reports the median, the process CPU time per step (mean; robust to other
/// processes taking the cores, which a wall-clock median on a shared machine is not), the bytes this thread allocated per step and the share
/// of the timed wall time spent in GC pauses and the process's peak resident memory, as one JSON line. Training cases also report the bytes
/// per step without their <see cref="TensorArena"/>; monitor cases alternate blocks of steps with and
/// without the monitor and report both medians.
/// </summary>
internal static class BenchRunner
{
    /// <summary>Least wall time of warm-up, and of timed steps (--seconds).</summary>
    public static double MinSeconds { get; set; } = 1.0;

    private const int MaxReps = 200_000;

    /// <summary>Monitor cases time each family of statistics separately (--split).</summary>
    public static bool Split { get; set; }

    /// <summary>Plain training cases run with the default monitor attached (--monitor), for a profiler to compare with a run without.</summary>
    public static bool AlwaysMonitor { get; set; }

    public static string Run(IBenchCase benchCase, int repetitions, int warmup, int threads)
    {
        benchCase.Setup();
        if (benchCase is MonitorCase monitored)
            return Split ? RunMonitorSplit(monitored, repetitions, warmup, threads) : RunMonitored(monitored, repetitions, warmup, threads);
        if (AlwaysMonitor && benchCase is TrainingCase monitoredAlways) monitoredAlways.SetMonitor(true);
        Repeat(benchCase, warmup, MinSeconds, null);
        WarmUntilJitQuiet(benchCase.Step);

        var times = new List<double>();
        long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var pauseBefore = GC.GetTotalPauseDuration();
        int gcBefore = GC.CollectionCount(0);
        var cpuBefore = Environment.CpuUsage.TotalTime;
        double wall = Repeat(benchCase, repetitions, MinSeconds, times);
        double cpuMs = (Environment.CpuUsage.TotalTime - cpuBefore).TotalMilliseconds / times.Count;
        long allocated = (GC.GetAllocatedBytesForCurrentThread() - allocatedBefore) / times.Count;
        double gcPercent = 100 * (GC.GetTotalPauseDuration() - pauseBefore).TotalMilliseconds / wall;
        int collections = GC.CollectionCount(0) - gcBefore;

        string noArena = "null";
        if (benchCase is TrainingCase training)
        {
            training.UseArena = false;
            Repeat(benchCase, 3, 0, null);
            long before = GC.GetAllocatedBytesForCurrentThread();
            const int steps = 5;
            Repeat(benchCase, steps, 0, null);
            noArena = ((GC.GetAllocatedBytesForCurrentThread() - before) / steps).ToString(CultureInfo.InvariantCulture);
            training.UseArena = true;
        }

        double median = Median(times);
        double gflops = benchCase.FlopsPerStep / (median * 1e6);
        return string.Create(CultureInfo.InvariantCulture,
            $"{{\"impl\": \"gradflow\", \"case\": \"{benchCase.Name}\", \"threads\": {threads}, \"ms\": {median:F4}, \"cpu_ms\": {cpuMs:F4}, \"mean_ms\": {times.Average():F4}, " +
            $"\"min_ms\": {times.Min():F4}, \"p90_ms\": {Percentile(times, 0.9):F4}, \"gflops\": {gflops:F2}, \"alloc_bytes_per_step\": {allocated}, " +
            $"\"alloc_bytes_no_arena\": {noArena}, \"peak_rss_bytes\": {PeakRss()}, \"gc_pct\": {gcPercent:F2}, \"gen0\": {collections}, \"reps\": {times.Count}}}");
    }

    /// <summary>The process's peak working set so far (VmHWM on Linux): one case per process (run.sh), so it is that case's peak.</summary>
    private static long PeakRss()
    {
        using var self = Process.GetCurrentProcess();
        return self.PeakWorkingSet64;
    }

    /// <summary>
    /// Short blocks of steps alternately without and with the monitor, on one model. The overhead is the median over
    /// rounds of (mean step with) / (mean step without): neighbouring blocks see the same machine load, so the
    /// ratio stays meaningful on a shared machine where the step time itself drifts. A block spans whole periods of the
    /// monitor's schedule (MonitorOptions.DetailEvery), so each "with" block holds its share of steps with details; a
    /// block median would pick a step without them and hide their cost.
    /// </summary>
    private static string RunMonitored(MonitorCase c, int repetitions, int warmup, int threads)
    {
        int block = Block(TrainingCase.FullMonitor);
        foreach (bool on in (bool[])[false, true])
        {
            c.Inner.SetMonitor(on);
            Repeat(c, warmup, MinSeconds / 2, null);
        }
        var off = new List<double>();
        var with = new List<double>();
        var ratios = new List<double>();
        var cpuRatios = new List<double>();
        long allocOff = 0, allocOn = 0;
        long start = Stopwatch.GetTimestamp();
        while (ratios.Count < repetitions || Stopwatch.GetElapsedTime(start).TotalSeconds < 3 * MinSeconds)
        {
            var blockOff = new List<double>();
            var blockOn = new List<double>();
            c.Inner.SetMonitor(false);
            long a0 = GC.GetAllocatedBytesForCurrentThread();
            double t0 = ThreadCpu.NowMs();
            Repeat(c, block, 0, blockOff);
            double t1 = ThreadCpu.NowMs();
            long a1 = GC.GetAllocatedBytesForCurrentThread();
            c.Inner.SetMonitor(true);
            long a2 = GC.GetAllocatedBytesForCurrentThread();
            double t2 = ThreadCpu.NowMs();
            Repeat(c, block, 0, blockOn);
            // The training thread's CPU time: at one thread, the same ratio without the time other processes held the core.
            cpuRatios.Add((ThreadCpu.NowMs() - t2) / (t1 - t0));
            allocOff += a1 - a0;
            allocOn += GC.GetAllocatedBytesForCurrentThread() - a2;
            off.AddRange(blockOff);
            with.AddRange(blockOn);
            ratios.Add(blockOn.Average() / blockOff.Average());
            if (off.Count >= MaxReps) break;
        }
        c.Inner.SetMonitor(false);
        return string.Create(CultureInfo.InvariantCulture,
            $"{{\"impl\": \"gradflow\", \"case\": \"{c.Name}\", \"threads\": {threads}, \"ms\": {Median(with):F4}, \"ms_off\": {Median(off):F4}, " +
            $"\"overhead_pct\": {100 * (Median(ratios) - 1):F2}, \"overhead_p25_p75\": [{100 * (Percentile(ratios, 0.25) - 1):F2}, {100 * (Percentile(ratios, 0.75) - 1):F2}], " +
            $"\"overhead_thread_cpu_pct\": {100 * (Median(cpuRatios) - 1):F2}, \"overhead_thread_cpu_p25_p75\": [{100 * (Percentile(cpuRatios, 0.25) - 1):F2}, {100 * (Percentile(cpuRatios, 0.75) - 1):F2}], \"alloc_bytes_per_step\": {allocOn / with.Count}, \"alloc_bytes_per_step_off\": {allocOff / off.Count}, \"rounds\": {ratios.Count}}}");
    }

    /// <summary>
    /// Where the monitor's time goes (--split): blocks of steps round-robin over the monitor off, the default monitor, the
    /// details on every step, and the default without one family; each variant's overhead is the median over rounds of its block mean over the
    /// same round's monitor-off block mean. Steps are timed in this thread's CPU time, not wall time: at one thread
    /// the split then stays readable while other processes share the machine.
    /// </summary>
    private static string RunMonitorSplit(MonitorCase c, int repetitions, int warmup, int threads)
    {
        var full = TrainingCase.FullMonitor;
        int block = Block(full);
        (string Name, GradFlow.Diagnostics.MonitorOptions? Options)[] variants =
        [
            ("off", null), ("full", full), ("details_every_step", full with { DetailEvery = 1 }), ("no_histograms", full with { Histograms = false }),
            ("no_activations", full with { Activations = false }), ("no_flow", full with { Flow = false }),
            ("optimizer_pass_only", full with { Histograms = false, Activations = false, Flow = false }),
        ];
        foreach (var v in variants)
        {
            c.Inner.SetMonitor(v.Options);
            Repeat(c, warmup, MinSeconds / 4, null);
        }
        var ratios = variants.Select(_ => new List<double>()).ToArray();
        var medians = variants.Select(_ => new List<double>()).ToArray();
        long start = Stopwatch.GetTimestamp();
        while (ratios[0].Count < repetitions || Stopwatch.GetElapsedTime(start).TotalSeconds < 6 * MinSeconds)
        {
            var round = new double[variants.Length];
            for (int v = 0; v < variants.Length; v++)
            {
                c.Inner.SetMonitor(variants[v].Options);
                var times = new List<double>();
                for (int i = 0; i < block; i++)
                {
                    double t = ThreadCpu.NowMs();
                    c.Step();
                    times.Add(ThreadCpu.NowMs() - t);
                }
                round[v] = times.Average(); // whole periods of the schedule: see RunMonitored
                medians[v].AddRange(times);
            }
            for (int v = 0; v < variants.Length; v++) ratios[v].Add(round[v] / round[0]);
            if (ratios[0].Count >= MaxReps) break;
        }
        c.Inner.SetMonitor(null);
        var parts = variants.Select((v, i) => string.Create(CultureInfo.InvariantCulture,
            $"\"{v.Name}\": {{\"ms\": {Median(medians[i]):F4}, \"min_ms\": {medians[i].Min():F4}, \"overhead_pct\": {100 * (Median(ratios[i]) - 1):F2}, \"overhead_p25_p75\": [{100 * (Percentile(ratios[i], 0.25) - 1):F2}, {100 * (Percentile(ratios[i], 0.75) - 1):F2}]}}"));
        return string.Create(CultureInfo.InvariantCulture,
            $"{{\"impl\": \"gradflow\", \"case\": \"{c.Name}\", \"threads\": {threads}, \"split\": {{{string.Join(", ", parts)}}}, \"rounds\": {ratios[0].Count}}}");
    }

    /// <summary>Steps in an A/B block: whole periods of the monitor's schedule, at least 3.</summary>
    private static int Block(GradFlow.Diagnostics.MonitorOptions options)
    {
        int period = options.Every * options.DetailEvery;
        return period * (int)Math.Ceiling(3.0 / period);
    }

    /// <summary>Runs at least <paramref name="count"/> steps and at least <paramref name="seconds"/>; records each step's ms when asked. Returns the wall ms.</summary>
    /// <summary>
    /// Steps on until, in two blocks of at least 0.25 s in a row, the JIT compiled no method (at most 30 s). Tiered
    /// compilation recompiles the hot methods (call counting, then tier 1 with PGO) on a background thread for seconds
    /// after the first steps; a Hessian-vector product's methods were still being compiled after the fixed one-second
    /// warm-up, so its first timed steps ran partly unoptimised code while that thread took the other core and memory
    /// bandwidth (a training step's process CPU was 38-41 ms per 22-23 ms of wall time in the timed part, 20.5 with tiering off).
    /// </summary>
    internal static int WarmUntilJitQuiet(Action step)
    {
        int blocks = 0, quiet = 0;
        long start = Stopwatch.GetTimestamp();
        while (quiet < 2 && Stopwatch.GetElapsedTime(start).TotalSeconds < 30)
        {
            long before = System.Runtime.JitInfo.GetCompiledMethodCount(currentThread: false);
            long blockStart = Stopwatch.GetTimestamp();
            do step(); while (Stopwatch.GetElapsedTime(blockStart).TotalSeconds < 0.25);
            quiet = System.Runtime.JitInfo.GetCompiledMethodCount(currentThread: false) == before ? quiet + 1 : 0;
            blocks++;
        }
        return blocks;
    }

    private static double Repeat(IBenchCase c, int count, double seconds, List<double>? times)
    {
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < MaxReps && (i < count || Stopwatch.GetElapsedTime(start).TotalSeconds < seconds); i++)
        {
            long t = Stopwatch.GetTimestamp();
            c.Step();
            times?.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
        }
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    internal static double Percentile(List<double> times, double q)
    {
        var sorted = times.Order().ToArray();
        return sorted[(int)Math.Round(q * (sorted.Length - 1))];
    }

    internal static double Median(List<double> times)
    {
        var sorted = times.Order().ToArray();
        return sorted[(sorted.Length - 1) / 2];
    }
}
