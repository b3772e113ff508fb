using System.Diagnostics;
using System.Globalization;

namespace GradFlow.Distributed.Tests;

/// <summary>
/// Starts the worker under <c>mpirun -np N --oversubscribe</c> and collects what it printed. The time limit is a
/// safety net against a hang (the test then fails saying so), never what a test asserts: a job that ends, ends by itself.
/// </summary>
internal static class MpiJob
{
    private static readonly TimeSpan SafetyNet = TimeSpan.FromMinutes(5);

    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public string Output => Stdout + Stderr;
    }

    public static string Worker => Path.Combine(AppContext.BaseDirectory, "GradFlow.Distributed.Worker.dll");

    public static string MpiRun
    {
        get
        {
            foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin").Split(':').Append("/usr/bin"))
            {
                var path = Path.Combine(dir, "mpirun");
                if (File.Exists(path)) return path;
            }
            Assert.Fail("mpirun is missing: the distributed tests need Open MPI (apt-get install openmpi-bin libopenmpi-dev; tests/run-tests.sh installs it).");
            return "";
        }
    }

    public static Result Run(int ranks, params string[] args) => Run(ranks, new Dictionary<string, string?>(), args);

    /// <summary>The worker under mpirun with extra environment variables (a null value removes one).</summary>
    public static Result Run(int ranks, IReadOnlyDictionary<string, string?> environment, params string[] args)
    {
        var start = new ProcessStartInfo(MpiRun)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "-np", ranks.ToString(CultureInfo.InvariantCulture), "--oversubscribe", "--allow-run-as-root", "dotnet", Worker }.Concat(args))
            start.ArgumentList.Add(a);
        // One thread per rank: two ranks share this machine's cores, and results do not depend on the thread count.
        start.Environment["GRADFLOW_NUM_THREADS"] = "1";
        foreach (var (key, value) in environment)
            if (value is null) start.Environment.Remove(key);
            else start.Environment[key] = value;
        return Start(start);
    }

    /// <summary>
    /// The worker under mpirun; once a line of its output contains <paramref name="marker"/>, mpirun is sent SIGUSR1 (which
    /// Open MPI forwards to every rank). The job must then end by itself.
    /// </summary>
    public static Result RunAndSignal(int ranks, string marker, params string[] args)
    {
        var start = new ProcessStartInfo(MpiRun) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-np", ranks.ToString(CultureInfo.InvariantCulture), "--oversubscribe", "--allow-run-as-root", "dotnet", Worker }.Concat(args))
            start.ArgumentList.Add(a);
        start.Environment["GRADFLOW_NUM_THREADS"] = "1";
        using var process = new Process { StartInfo = start };
        var stdout = new System.Text.StringBuilder();
        var stderr = new System.Text.StringBuilder();
        bool signalled = false;
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (stdout) stdout.AppendLine(e.Data);
            if (!signalled && e.Data.Contains(marker, StringComparison.Ordinal))
            {
                signalled = true;
                using var kill = Process.Start("kill", ["-USR1", process.Id.ToString(CultureInfo.InvariantCulture)]);
                kill.WaitForExit();
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data);
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(SafetyNet))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{start.FileName} {string.Join(' ', start.ArgumentList)} did not end within {SafetyNet} (signalled: {signalled}).\n{stdout}{stderr}");
        }
        process.WaitForExit();
        lock (stdout) return new Result(process.ExitCode, stdout.ToString(), stderr.ToString());
    }

    /// <summary>The worker alone, without mpirun (the single-process reference).</summary>
    public static Result RunAlone(params string[] args) => RunAlone(new Dictionary<string, string>(), args);

    /// <summary>The worker alone with extra environment variables.</summary>
    public static Result RunAlone(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var (key, value) in environment) start.Environment[key] = value;
        start.ArgumentList.Add(Worker);
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["GRADFLOW_NUM_THREADS"] = "1";
        return Start(start);
    }

    private static Result Start(ProcessStartInfo start)
    {
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(SafetyNet))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{start.FileName} {string.Join(' ', start.ArgumentList)} did not end within {SafetyNet} (a hang).");
        }
        process.WaitForExit();
        return new Result(process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Each parameter's values from a file the worker wrote (name, then each value's 64 bits in hex).</summary>
    public static Dictionary<string, double[]> ReadWeights(string path) =>
        File.ReadAllLines(path).Select(l => l.Split(' ')).ToDictionary(
            p => p[0], p => p.Skip(1).Select(h => BitConverter.Int64BitsToDouble(long.Parse(h, NumberStyles.HexNumber, CultureInfo.InvariantCulture))).ToArray());
}
