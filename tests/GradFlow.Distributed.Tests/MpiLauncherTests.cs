using System.Globalization;
using System.Text.RegularExpressions;

namespace GradFlow.Distributed.Tests;

public sealed class MpiLauncherTests
{
    [Fact]
    public void TheLauncherStartsNRanksOfAnApplicationAndReturnsTheJobsExitCode()
    {
        // The worker's "die" mode: rank 1 leaves with exit code 3 at its third step; mpirun passes the code on.
        Assert.Equal(3, MpiLauncher.Run(2, MpiJob.Worker, ["die"]));
    }

    [Fact]
    public void TheCommandLineCarriesTheRanksTheHostfileAndTheThreads()
    {
        var hostfile = Path.GetTempFileName();
        try
        {
            var start = MpiLauncher.Command(4, MpiJob.Worker, ["train", "--steps", "3"], new MpiLaunchOptions { Hostfile = hostfile, ThreadsPerRank = 2, MpiRun = "/usr/bin/mpirun" });
            var args = start.ArgumentList.ToArray();
            Assert.Equal(["-np", "4"], args[..2]);
            Assert.Contains("--oversubscribe", args);
            Assert.Equal(hostfile, args[Array.IndexOf(args, "--hostfile") + 1]);
            Assert.Equal("GRADFLOW_NUM_THREADS", args[Array.IndexOf(args, "-x") + 1]);
            Assert.Equal("2", start.Environment["GRADFLOW_NUM_THREADS"]);
            Assert.Equal(["dotnet", Path.GetFullPath(MpiJob.Worker), "train", "--steps", "3"], args[^5..]);
        }
        finally
        {
            File.Delete(hostfile);
        }
    }

    [Fact]
    public void OnOneMachineEachRankIsBoundToItsShareOfTheCoresOrNotBoundWhenTheyDoNotFit()
    {
        int cores = Environment.ProcessorCount;
        var alone = MpiLauncher.Command(1, MpiJob.Worker).ArgumentList.ToArray();
        Assert.Equal(["--map-by", $"slot:PE={cores}"], alone[(Array.IndexOf(alone, "--map-by"))..(Array.IndexOf(alone, "--map-by") + 2)]);
        var crowded = MpiLauncher.Command(cores + 1, MpiJob.Worker);
        var args = crowded.ArgumentList.ToArray();
        Assert.Equal("none", args[Array.IndexOf(args, "--bind-to") + 1]);
        Assert.DoesNotContain("--map-by", args);
        Assert.Equal("1", crowded.Environment["GRADFLOW_NUM_THREADS"]);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)] // more ranks than this machine's cores: mpirun binds none, and each would see every core
    public void RanksOnOneMachineShareItsCoresUnlessToldOtherwise(int ranks)
    {
        var result = MpiJob.Run(ranks, new Dictionary<string, string?> { ["GRADFLOW_NUM_THREADS"] = null }, "threads");
        Assert.True(result.ExitCode == 0, result.Output);
        var threads = Enumerable.Range(0, ranks).Select(r => int.Parse(Regex.Match(result.Stdout, $"rank {r}: cpus \\d+ threads (\\d+)").Groups[1].Value, CultureInfo.InvariantCulture)).ToArray();
        Assert.All(threads, t => Assert.True(t >= 1));
        Assert.True(threads.Sum() <= Math.Max(Environment.ProcessorCount, ranks), $"{ranks} ranks run {string.Join(" + ", threads)} kernel threads on {Environment.ProcessorCount} cores");

        var told = MpiJob.Run(ranks, new Dictionary<string, string?> { ["GRADFLOW_NUM_THREADS"] = "2" }, "threads");
        for (int r = 0; r < ranks; r++) Assert.Contains($"rank {r}: cpus", told.Stdout);
        Assert.Equal(ranks, told.Stdout.Split("threads 2").Length - 1);
    }

    [Fact]
    public void EveryCollectiveOfTheBindingDeliversTheSameResultToEveryRank()
    {
        var result = MpiJob.Run(3, "collectives");
        Assert.True(result.ExitCode == 0, result.Output);
        // sums of r + 1 and 10 (r + 1), max of r and -r, min of r, the async sum of r + 0.5, rank 1's broadcast, r^2 gathered.
        for (int r = 0; r < 3; r++)
            Assert.Contains($"rank {r}/3: sum 6 60 max 2 0 min 0 async 4.5 4.5 True bcast 42 gather 0,1,4 bytes 1,2,3", result.Stdout);
    }

    [Fact]
    public void AMissingMpiLibraryIsNamedWithItsDebianPackages()
    {
        var result = MpiJob.RunAlone(new Dictionary<string, string> { ["GRADFLOW_MPI_LIBRARY"] = "/nonexistent/libmpi.so.40" }, "collectives");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("could not load the MPI library '/nonexistent/libmpi.so.40'", result.Stderr);
        Assert.Contains("apt-get install openmpi-bin libopenmpi-dev", result.Stderr);
    }

    [Fact]
    public void BadArgumentsAreNamed()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => MpiLauncher.Command(0, MpiJob.Worker));
        var e = Assert.Throws<FileNotFoundException>(() => MpiLauncher.Command(2, "/nonexistent/app.dll"));
        Assert.Contains("/nonexistent/app.dll", e.Message);
    }
}
