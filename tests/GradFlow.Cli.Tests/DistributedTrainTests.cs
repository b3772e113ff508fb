using System.Diagnostics;
using GradFlow.Reporting;
using GradFlow.Training;

namespace GradFlow.Cli.Tests;

/// <summary>
/// `gradflow train --nproc 2`: the CLI starts itself under mpirun (Open MPI, installed by tests/run-tests.sh; the test
/// fails without it), each rank trains its half of every global batch, and rank 0 writes the checkpoints and the run log.
/// </summary>
public sealed class DistributedTrainTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gf-nproc").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string P(string name) => Path.Combine(_dir, name);

    private static readonly string[] s_run = ["train", "--model", "mlp:64-32-10,relu,he", "--epochs", "2", "--seed", "3"];

    [Fact]
    public async Task TwoRanksTrainTheSameModelAsOneProcess()
    {
        string cli = Path.Combine(AppContext.BaseDirectory, "GradFlow.Cli.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        string[] args = [cli, .. s_run, "--nproc", "2", "--checkpoint-dir", P("two"), "--log-dir", P("log")];
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var child = Process.Start(psi)!;
        var stderr = child.StandardError.ReadToEndAsync();
        string output = child.StandardOutput.ReadToEnd();
        await child.WaitForExitAsync();
        Assert.True(child.ExitCode == 0, output + await stderr);
        // Rank 0 alone speaks and writes.
        Assert.Single(output.Split('\n'), l => l.StartsWith("epoch 2/2", StringComparison.Ordinal));

        var o = new StringWriter();
        var e = new StringWriter();
        Assert.Equal(0, CliApp.Run([.. s_run, "--checkpoint-dir", P("one")], o, e));

        // The global batch is split and each share's loss weighted by its size, so the averaged gradient is the whole
        // batch's up to the order of summation: float32 rounding, far below what a wrong average or a lost share moves.
        var two = Checkpoint.Load(Directory.GetFiles(P("two")).Order().Last()).Model;
        var one = Checkpoint.Load(Directory.GetFiles(P("one")).Order().Last()).Model;
        Assert.Equal(one.Keys.Order(), two.Keys.Order());
        foreach (var (name, t) in one)
        {
            float[] a = t.ToArray<float>(), b = two[name].ToArray<float>();
            double diff = Math.Sqrt(a.Zip(b).Sum(z => (double)(z.First - z.Second) * (z.First - z.Second)));
            double norm = Math.Sqrt(a.Sum(v => (double)v * v));
            Assert.True(diff <= 1e-4 * norm, $"{name}: |one - two| = {diff:G3}, |one| = {norm:G3}");
        }

        // Rank 0's run log holds every step once, with both ranks' gradient norms.
        using var reader = RunLog.Open(Path.Combine(P("log"), "runlog.jsonl"));
        var records = reader.ReadRecords().ToList();
        Assert.Equal(Enumerable.Range(1, 46).Select(i => (long)i), records.Select(r => r.Step));
        Assert.All(records, r => Assert.Equal(2, r.Distributed!.WorldSize));
    }

    [Fact]
    public async Task AnEpochCheckpointRank0CannotWriteEndsEveryRankWithTheSameError()
    {
        // Every epoch checkpoint is collective: a directory in the way of the first one (step 23) fails rank 0's write,
        // and both ranks report it in one line each and end, rather than rank 1 training on into a collective alone.
        Directory.CreateDirectory(Path.Combine(P("blocked"), "step-00000023.safetensors"));
        string cli = Path.Combine(AppContext.BaseDirectory, "GradFlow.Cli.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        string[] args = [cli, .. s_run, "--nproc", "2", "--checkpoint-dir", P("blocked")];
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var child = Process.Start(psi)!;
        var stderrRead = child.StandardError.ReadToEndAsync();
        string stdout = child.StandardOutput.ReadToEnd();
        using var safetyNet = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        try
        {
            await child.WaitForExitAsync(safetyNet.Token);
        }
        catch (OperationCanceledException)
        {
            child.Kill(entireProcessTree: true);
            Assert.Fail("the job did not end after the failed checkpoint (a hang)");
        }
        string stderr = await stderrRead;
        Assert.True(child.ExitCode == 1, $"exit code {child.ExitCode}:\n{stdout}{stderr}");
        string what = $"DistributedDataParallel.SaveCheckpoint: checkpoint '{Path.Combine(P("blocked"), "step-00000023.safetensors")}' is not confirmed: rank 0 could not write it (";
        for (int r = 0; r < 2; r++) Assert.Contains($"gradflow: rank {r} of 2: {what}", stderr);
        Assert.DoesNotContain("epoch 2/2", stdout);
    }

    [Fact]
    public void SigUsr1ToMpirunStopsEveryRankAfterTheSameStepAndRank0SavesACheckpoint()
    {
        // mpirun forwards SIGUSR1 to every rank. The run is far too long to end by itself, so the job ends only through the
        // stop; when the signal lands (once rank 0 has printed its first line) does not matter.
        string cli = Path.Combine(AppContext.BaseDirectory, "GradFlow.Cli.dll");
        var psi = new ProcessStartInfo("mpirun") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        string[] args = ["-np", "2", "--oversubscribe", "--allow-run-as-root", "dotnet", cli, "train", "--model", "mlp:64-32-10,relu,he", "--epochs", "100000",
            "--seed", "3", "--nproc", "2", "--checkpoint-dir", P("stop")];
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["GRADFLOW_NUM_THREADS"] = "1";
        using var job = new Process { StartInfo = psi };
        var output = new System.Text.StringBuilder();
        bool signalled = false;
        job.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (output) output.AppendLine(e.Data);
            if (signalled) return;
            signalled = true;
            using var kill = Process.Start("kill", ["-USR1", job.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
            kill.WaitForExit();
        };
        job.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null) lock (output) output.AppendLine(e.Data);
        };
        job.Start();
        job.BeginOutputReadLine();
        job.BeginErrorReadLine();
        if (!job.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            job.Kill(entireProcessTree: true);
            Assert.Fail($"mpirun did not end after SIGUSR1 (a hang):\n{output}");
        }
        job.WaitForExit();
        string text;
        lock (output) text = output.ToString();
        Assert.True(job.ExitCode == 130, $"exit code {job.ExitCode}:\n{text}");
        // The last file is the stop's (an epoch may have ended, and been saved, before the signal arrived).
        var saved = Directory.GetFiles(P("stop")).Order(StringComparer.Ordinal).Last();
        Assert.Contains("interrupted at step", text);
        Assert.Equal("interrupted", Checkpoint.Load(saved).Metadata["reason"]);
    }

    [Fact]
    public void NprocWithSharpnessProbesIsRefusedInOneLine()
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        Assert.Equal(2, CliApp.Run([.. s_run, "--nproc", "2", "--sharpness-every", "5"], o, e));
        Assert.Contains("--sharpness-every", e.ToString(), StringComparison.Ordinal);
    }
}
