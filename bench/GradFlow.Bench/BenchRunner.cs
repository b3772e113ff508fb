using System.Diagnostics;
using System.Globalization;

namespace GradFlow.Bench;

/// <summary>
/// Times a case: warm-up steps (JIT tiers, packing buffers, worker threads), then timed repetitions;
/// reports the median and the bytes this thread allocated per step, as one JSON line.
/// </summary>
internal static class BenchRunner
{
    public static string Run(IBenchCase benchCase, int repetitions, int warmup, int threads)
    {
        benchCase.Setup();
        for (int i = 0; i < warmup; i++)
        {
            benchCase.Step();
        }

        var times = new double[repetitions];
        long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < repetitions; i++)
        {
            long start = Stopwatch.GetTimestamp();
            benchCase.Step();
            times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }

        long allocated = (GC.GetAllocatedBytesForCurrentThread() - allocatedBefore) / repetitions;
        Array.Sort(times);
        double median = times[repetitions / 2];
        double gflops = benchCase.FlopsPerStep / (median * 1e6);
        return string.Create(CultureInfo.InvariantCulture,
            $"{{\"impl\": \"gradflow\", \"case\": \"{benchCase.Name}\", \"threads\": {threads}, \"ms\": {median:F4}, " +
            $"\"min_ms\": {times[0]:F4}, \"gflops\": {gflops:F2}, \"alloc_bytes_per_step\": {allocated}, \"reps\": {repetitions}}}");
    }
}
