using System.Runtime.InteropServices;

namespace GradFlow.Bench;

/// <summary>
/// CPU time of the calling thread (Linux CLOCK_THREAD_CPUTIME_ID): unlike wall time it does not count the time another
/// process held the core, so single-thread A/B splits stay readable on a shared machine. Elsewhere: wall time.
/// </summary>
internal static partial class ThreadCpu
{
    private const int ClockThreadCpuTimeId = 3;

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec time);

    /// <summary>Milliseconds of CPU this thread has used (wall milliseconds where the clock is missing).</summary>
    public static double NowMs()
    {
        if (OperatingSystem.IsLinux() && ClockGetTime(ClockThreadCpuTimeId, out var t) == 0) return t.Seconds * 1e3 + t.Nanoseconds / 1e6;
        return System.Diagnostics.Stopwatch.GetTimestamp() * 1e3 / System.Diagnostics.Stopwatch.Frequency;
    }
}
