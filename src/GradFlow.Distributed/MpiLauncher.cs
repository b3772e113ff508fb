using System.Diagnostics;
using System.Globalization;

namespace GradFlow.Distributed;

/// <summary>How <see cref="MpiLauncher"/> starts a job.</summary>
public sealed class MpiLaunchOptions
{
    /// <summary>An Open MPI hostfile ("node1 slots=8" per line) to spread the ranks over machines; null runs them all here.</summary>
    public string? Hostfile { get; init; }

    /// <summary>
    /// Kernel threads of each rank (GRADFLOW_NUM_THREADS). 0 chooses: on one machine, cores / N for N ranks (at least 1);
    /// with a hostfile, each rank takes its share of the cores it may run on (<see cref="Communicator.World"/>).
    /// </summary>
    public int ThreadsPerRank { get; init; }

    /// <summary>Let more ranks than cores run on one machine (mpirun --oversubscribe); otherwise Open MPI refuses to start them.</summary>
    public bool Oversubscribe { get; init; } = true;

    /// <summary>The mpirun to use; by default the first on PATH.</summary>
    public string? MpiRun { get; init; }
}

/// <summary>
/// Starts <c>mpirun -np N dotnet app.dll args</c> for the user: what <c>gradflow train --nproc N</c> runs. As root (a
/// container, a CI machine) it adds Open MPI's <c>--allow-run-as-root</c>. The ranks' output goes to this process's.
/// <para>
/// On one machine each rank gets a share of the cores of its own: with N ranks of T threads and N T at most the cores,
/// <c>--map-by slot:PE=T</c> binds each rank to T cores nobody else's kernels use (Open MPI's own default binds up to
/// two ranks to one core each, and more to a whole socket, where ranks with several threads would crowd each other);
/// with more, <c>--bind-to none</c> lets the operating system spread them. With a hostfile Open MPI's defaults stand.
/// </para>
/// </summary>
public static class MpiLauncher
{
    /// <summary>The mpirun command line for <paramref name="nproc"/> ranks of <paramref name="dll"/>, without starting it.</summary>
    public static ProcessStartInfo Command(int nproc, string dll, IEnumerable<string>? args = null, MpiLaunchOptions? options = null)
    {
        if (nproc <= 0) throw new ArgumentOutOfRangeException(nameof(nproc), $"MpiLauncher: the number of processes must be positive, got {nproc}.");
        ArgumentException.ThrowIfNullOrEmpty(dll);
        if (!File.Exists(dll)) throw new FileNotFoundException($"MpiLauncher: the application '{dll}' does not exist.", dll);
        options ??= new MpiLaunchOptions();
        if (options.ThreadsPerRank < 0) throw new ArgumentOutOfRangeException(nameof(options), $"MpiLauncher: ThreadsPerRank must not be negative, got {options.ThreadsPerRank}.");
        var start = new ProcessStartInfo(options.MpiRun ?? FindMpiRun()) { UseShellExecute = false };
        start.ArgumentList.Add("-np");
        start.ArgumentList.Add(nproc.ToString(CultureInfo.InvariantCulture));
        if (options.Oversubscribe) start.ArgumentList.Add("--oversubscribe");
        if (Environment.UserName == "root") start.ArgumentList.Add("--allow-run-as-root");
        if (options.Hostfile is { } hostfile)
        {
            if (!File.Exists(hostfile)) throw new FileNotFoundException($"MpiLauncher: the hostfile '{hostfile}' does not exist.", hostfile);
            start.ArgumentList.Add("--hostfile");
            start.ArgumentList.Add(hostfile);
        }
        int threads = options.ThreadsPerRank;
        if (options.Hostfile is null)
        {
            int cores = Environment.ProcessorCount;
            if (threads == 0) threads = Math.Max(1, cores / nproc);
            bool fits = (long)nproc * threads <= cores;
            start.ArgumentList.Add(fits ? "--map-by" : "--bind-to");
            start.ArgumentList.Add(fits ? string.Create(CultureInfo.InvariantCulture, $"slot:PE={threads}") : "none");
        }
        if (threads > 0)
        {
            // -x exports the variable to every rank, on other machines too.
            start.Environment["GRADFLOW_NUM_THREADS"] = threads.ToString(CultureInfo.InvariantCulture);
            start.ArgumentList.Add("-x");
            start.ArgumentList.Add("GRADFLOW_NUM_THREADS");
        }
        start.ArgumentList.Add("dotnet");
        start.ArgumentList.Add(Path.GetFullPath(dll));
        foreach (var a in args ?? []) start.ArgumentList.Add(a);
        return start;
    }

    /// <summary>Runs the job to its end and returns mpirun's exit code (non-zero when any rank failed).</summary>
    public static int Run(int nproc, string dll, IEnumerable<string>? args = null, MpiLaunchOptions? options = null)
    {
        using var process = Process.Start(Command(nproc, dll, args, options))
            ?? throw new InvalidOperationException("MpiLauncher: mpirun did not start.");
        process.WaitForExit();
        return process.ExitCode;
    }

    /// <summary>The first mpirun on PATH; throws naming the Debian packages when there is none.</summary>
    public static string FindMpiRun()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var path = Path.Combine(dir, "mpirun");
            if (File.Exists(path)) return path;
        }
        throw new FileNotFoundException("MpiLauncher: mpirun is not on PATH. Install Open MPI: `apt-get install openmpi-bin libopenmpi-dev` (Debian, Ubuntu).");
    }
}
