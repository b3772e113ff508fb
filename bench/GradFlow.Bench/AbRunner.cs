using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime.Loader;

namespace GradFlow.Bench;

/// <summary>
/// A/B in one process, for a shared machine where absolute times are noise: two sides, each a bench case run by this
/// build or by another build of the bench (its output directory, loaded into an <see cref="AssemblyLoadContext"/> of
/// its own with its own GradFlow.dll), step by step in turn, the order swapped every round. Each round gives the ratio
/// B/A of the two steps' thread CPU times and of their wall times; the medians and quartiles of those ratios are
/// printed as one JSON line. A side "DIR:case" runs DIR's build; ".:case" runs a second copy of this build (a null
/// control against "case": same code, separately loaded); "case" runs this build. With <c>--block N</c> a turn is one
/// untimed step, which brings the side's own weights and buffers back into the caches the other side just used, and N
/// timed ones (their mean is the turn's time): for sides of different sizes (a training step against a Hessian-vector
/// product), where a single step each would charge the smaller side the reloading of the larger one's leftovers. Usage:
/// <c>GradFlow.Bench --threads 1 --ab A B [--rounds N] [--block N]</c>.
/// </summary>
internal static class AbRunner
{
    public static int Run(string a, string b, int rounds, int threads, int block = 0)
    {
        var sideA = Load(a, threads);
        var sideB = Load(b, threads);
        for (int i = 0; i < 5; i++) (_, _) = (sideA(), sideB());
        var cpu = new List<double>();
        var wall = new List<double>();
        var (cpuA, cpuB, wallA, wallB) = (new List<double>(), new List<double>(), new List<double>(), new List<double>());
        for (int r = 0; r < rounds; r++)
        {
            (double Cpu, double Wall) ta, tb;
            if (r % 2 == 0) (ta, tb) = (Time(sideA, block), Time(sideB, block));
            else (tb, ta) = (Time(sideB, block), Time(sideA, block));
            cpu.Add(tb.Cpu / ta.Cpu);
            wall.Add(tb.Wall / ta.Wall);
            cpuA.Add(ta.Cpu); cpuB.Add(tb.Cpu); wallA.Add(ta.Wall); wallB.Add(tb.Wall);
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{{\"a\": \"{a}\", \"b\": \"{b}\", \"rounds\": {rounds}, \"block\": {block}, \"threads\": {threads}, " +
            $"\"cpu_ratio\": {BenchRunner.Median(cpu):F4}, \"cpu_ratio_q25_q75\": [{BenchRunner.Percentile(cpu, 0.25):F4}, {BenchRunner.Percentile(cpu, 0.75):F4}], " +
            $"\"wall_ratio\": {BenchRunner.Median(wall):F4}, \"wall_ratio_q25_q75\": [{BenchRunner.Percentile(wall, 0.25):F4}, {BenchRunner.Percentile(wall, 0.75):F4}], " +
            $"\"a_cpu_ms\": {BenchRunner.Median(cpuA):F3}, \"b_cpu_ms\": {BenchRunner.Median(cpuB):F3}, \"a_wall_ms\": {BenchRunner.Median(wallA):F3}, \"b_wall_ms\": {BenchRunner.Median(wallB):F3}}}"));
        return 0;
    }

    // One turn: the step once (block 0), or an untimed step and the mean of block timed ones.
    private static (double Cpu, double Wall) Time(Func<double> step, int block)
    {
        if (block > 0) step();
        int timed = Math.Max(1, block);
        long t0 = Stopwatch.GetTimestamp();
        double cpu = 0;
        for (int i = 0; i < timed; i++) cpu += step();
        return (cpu / timed, Stopwatch.GetElapsedTime(t0).TotalMilliseconds / timed);
    }

    // A side's step, timed in thread CPU milliseconds.
    private static Func<double> Load(string spec, int threads)
    {
        int colon = spec.LastIndexOf(':');
        if (colon < 0) return Prepare(spec, threads);
        string dir = spec[..colon], name = spec[(colon + 1)..];
        if (dir == ".") dir = AppContext.BaseDirectory;
        var context = new SideContext(Path.GetFullPath(dir));
        var bench = context.LoadFromAssemblyPath(Path.Combine(Path.GetFullPath(dir), "GradFlow.Bench.dll"));
        var prepare = bench.GetType("GradFlow.Bench.AbRunner", throwOnError: true)!
            .GetMethod(nameof(Prepare), BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public)!;
        return (Func<double>)prepare.Invoke(null, [name, threads])!;
    }

    /// <summary>Sets up the named case in this build and returns its step, timed in thread CPU ms (called by reflection in another build).</summary>
    internal static Func<double> Prepare(string name, int threads)
    {
        Kernels.Parallelism.NumThreads = threads;
        var benchCase = CaseRegistry.All().FirstOrDefault(c => c.Name == name)
            ?? throw new ArgumentException($"no case named {name}");
        benchCase.Setup();
        for (int i = 0; i < 3; i++) benchCase.Step();
        BenchRunner.WarmUntilJitQuiet(benchCase.Step);
        return () =>
        {
            double t0 = ThreadCpu.NowMs();
            benchCase.Step();
            return ThreadCpu.NowMs() - t0;
        };
    }

    private sealed class SideContext(string dir) : AssemblyLoadContext(isCollectible: false)
    {
        protected override Assembly? Load(AssemblyName name)
        {
            var path = Path.Combine(dir, name.Name + ".dll");
            return name.Name is "GradFlow" or "GradFlow.Bench" && File.Exists(path) ? LoadFromAssemblyPath(path) : null;
        }
    }
}
