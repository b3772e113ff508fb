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
    public void BadArgumentsAreNamed()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => MpiLauncher.Command(0, MpiJob.Worker));
        var e = Assert.Throws<FileNotFoundException>(() => MpiLauncher.Command(2, "/nonexistent/app.dll"));
        Assert.Contains("/nonexistent/app.dll", e.Message);
    }
}
