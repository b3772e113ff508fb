using System.Globalization;

namespace GradFlow.Distributed.Tests;

/// <summary>
/// The gradient reduction through a shared-memory window (the default) and MPI's allreduce (the fallback), each through
/// the same checks: the same bits as one process, bucketing, NoSync, a planted NaN, a mismatched model; and the shared
/// path's own cases: three ranks (uneven and empty shares) and two "machines" of two ranks (the hierarchical path).
/// </summary>
public sealed class SharedMemoryReductionTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gradflow-shm-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Out(string name) => Path.Combine(_dir, name);

    private MpiJob.Result Train(int ranks, string name, IReadOnlyDictionary<string, string?>? environment, params string[] args)
    {
        var result = MpiJob.Run(ranks, environment ?? new Dictionary<string, string?>(), ["train", "--out", Out(name), .. args]);
        Assert.True(result.ExitCode == 0, $"mpirun exited with {result.ExitCode}:\n{result.Output}");
        return result;
    }

    private void Reference(string name, params string[] args)
    {
        var result = MpiJob.RunAlone(["reference", "--out", Out(name), .. args]);
        Assert.True(result.ExitCode == 0, $"the reference exited with {result.ExitCode}:\n{result.Output}");
    }

    private void AssertSameBits(string a, string b) => Assert.Equal(File.ReadAllText(Out(a)), File.ReadAllText(Out(b)));

    private static string Shared(string reduction) => reduction == "shm" ? "True" : "False";

    [Theory]
    [InlineData("shm", "26214400")] // the whole model in one bucket
    [InlineData("shm", "1")]        // a bucket per parameter: six reductions a step, in backward order
    [InlineData("mpi", "26214400")]
    [InlineData("mpi", "1")]
    public void TwoRanksGiveTheBitsOfOneProcessSummingTheHalvesWithEitherReduction(string reduction, string bucketBytes)
    {
        // On two ranks both reductions compute (g0 + g1) / 2 in float32, one rounding each, as one process adding the two
        // halves' gradients does: the same bits, whatever the buckets.
        var result = Train(2, "ddp", null, "--reduction", reduction, "--bucket-bytes", bucketBytes);
        Reference("ref", "--halves", "2");
        Assert.Contains($"rank 0: shared memory {Shared(reduction)}", result.Stdout);
        Assert.Contains($"rank 1: shared memory {Shared(reduction)}", result.Stdout);
        AssertSameBits("ddp.rank0", "ddp.rank1");
        AssertSameBits("ddp.rank0", "ref");
    }

    [Theory]
    [InlineData("shm")]
    [InlineData("mpi")]
    public void NoSyncAccumulationAveragesOncePerStepWithEitherReduction(string reduction)
    {
        var result = Train(2, "accumulate", null, "--reduction", reduction, "--accumulate", "2", "--dtype", "f64", "--bucket-bytes", "1");
        Reference("ref", "--halves", "1", "--dtype", "f64");
        Assert.Contains("rank 0: syncs 5,", result.Stdout);
        Assert.Contains($"rank 1: shared memory {Shared(reduction)}", result.Stdout);
        AssertSameBits("accumulate.rank0", "accumulate.rank1");
        AssertClose(MpiJob.ReadWeights(Out("accumulate.rank0")), MpiJob.ReadWeights(Out("ref")), 1e-10);
    }

    [Theory]
    [InlineData("shm")]
    [InlineData("mpi")]
    public void ANaNPlantedOnRank1IsReportedAsRank1sWithEitherReduction(string reduction)
    {
        // Each rank measures its own gradients before they are added, as they enter the bucket or the shared segment.
        var result = Train(2, "nan", null, "--reduction", reduction, "--nan-rank", "1", "--nan-step", "2", "--bucket-bytes", "1");
        Assert.Contains("rank 0: first non-finite gradient at step 3 on rank 1 in 4.bias", result.Stdout);
        Assert.Contains("rank 1: first non-finite gradient at step 3 on rank 1 in 4.bias", result.Stdout);
        Assert.Contains($"rank 0: shared memory {Shared(reduction)}", result.Stdout);
    }

    [Theory]
    [InlineData("shm")]
    [InlineData("mpi")]
    public void AMismatchedModelIsAnErrorOnEveryRankBeforeAnyWindowOrAllreduce(string reduction)
    {
        var result = MpiJob.Run(2, "mismatch", "--reduction", reduction);
        Assert.NotEqual(0, result.ExitCode);
        const string what = "parameter '0.weight' is float32 [32, 16] on rank 0 but float32 [48, 16] on rank 1";
        Assert.Equal(2, result.Stderr.Split(what).Length - 1);
    }

    [Fact]
    public void ThreeRanksOnOneMachineAgreeBitwiseAndMatchOneProcessWithTheirGlobalBatch()
    {
        // Three shares of cache-line multiples: with a bucket per parameter the 4-element bias gives ranks 1 and 2 empty
        // shares. The sum is (g0 + g1) + g2 in rank order, then / 3: within rounding of one batch of 3B rows.
        var result = Train(3, "three", null, "--dtype", "f64", "--bucket-bytes", "1");
        Reference("ref", "--ranks", "3", "--halves", "1", "--dtype", "f64");
        Assert.Contains("rank 2: shared memory True", result.Stdout);
        AssertSameBits("three.rank0", "three.rank1");
        AssertSameBits("three.rank0", "three.rank2");
        AssertClose(MpiJob.ReadWeights(Out("three.rank0")), MpiJob.ReadWeights(Out("ref")), 1e-10);
    }

    [Fact]
    public void TwoMachinesOfTwoRanksReduceHierarchicallyAndAgreeBitwise()
    {
        // GRADFLOW_SHM_RANKS_PER_NODE=2 makes ranks {0, 1} and {2, 3} two "machines": each adds its pair's gradients in
        // its window, then each local rank allreduces its share with its counterpart on the other machine over MPI.
        var machines = new Dictionary<string, string?> { ["GRADFLOW_SHM_RANKS_PER_NODE"] = "2" };
        var result = Train(4, "nodes", machines, "--dtype", "f64");
        Train(4, "flat", null, "--dtype", "f64", "--reduction", "mpi");
        Reference("ref", "--ranks", "4", "--halves", "1", "--dtype", "f64");
        Assert.Contains("rank 3: shared memory True", result.Stdout);
        for (int r = 1; r < 4; r++) AssertSameBits("nodes.rank0", "nodes.rank" + r.ToString(CultureInfo.InvariantCulture));
        AssertClose(MpiJob.ReadWeights(Out("nodes.rank0")), MpiJob.ReadWeights(Out("ref")), 1e-10);
        AssertClose(MpiJob.ReadWeights(Out("nodes.rank0")), MpiJob.ReadWeights(Out("flat.rank0")), 1e-10);
    }

    [Fact]
    public void MachinesWithDifferentRankCountsFallBackToMpiOnEveryRankAlike()
    {
        // Three ranks as "machines" of two and one: the rails would not pair up, so every rank keeps MPI's allreduce.
        var machines = new Dictionary<string, string?> { ["GRADFLOW_SHM_RANKS_PER_NODE"] = "2" };
        var result = Train(3, "uneven", machines, "--dtype", "f64");
        Reference("ref", "--ranks", "3", "--halves", "1", "--dtype", "f64");
        for (int r = 0; r < 3; r++) Assert.Contains($"rank {r}: shared memory False", result.Stdout);
        AssertSameBits("uneven.rank0", "uneven.rank2");
        AssertClose(MpiJob.ReadWeights(Out("uneven.rank0")), MpiJob.ReadWeights(Out("ref")), 1e-10);
    }

    [Fact]
    public void TheSameSeedGivesTheSameRunThroughTheSharedWindow()
    {
        Train(2, "a", null, "--bucket-bytes", "1");
        Train(2, "b", null, "--bucket-bytes", "1");
        AssertSameBits("a.rank0", "b.rank0");
        AssertSameBits("a.rank1", "b.rank1");
    }

    [Theory]
    [InlineData(2, null, "sets 2 fused True")]  // each rank adds both segments into its own buffer
    [InlineData(2, "1", "sets 1 fused True")]   // one set: a barrier releases it after every reduction
    [InlineData(3, null, "sets 2 fused False")] // shares, each copied out of its owner's segment after a second barrier
    public void NoRankOverwritesASetBeforeEveryRankHasReadIt(int ranks, string? sets, string expected)
    {
        // The last local rank sleeps before reading every other reduction while the others write the next one's values:
        // had they written the set it still reads, it would find the next reduction's values and average them.
        var environment = new Dictionary<string, string?> { [SharedMemoryAllreduce.SetsVariable] = sets };
        var result = MpiJob.Run(ranks, environment, "window", "--steps", "12");
        Assert.True(result.ExitCode == 0, $"mpirun exited with {result.ExitCode}:\n{result.Output}");
        for (int r = 0; r < ranks; r++) Assert.Contains($"rank {r}: window {expected} reductions 12 wrong 0", result.Stdout);
    }

    [Fact]
    public void OneSetOfSegmentsGivesTheBitsOfTwo()
    {
        var oneSet = new Dictionary<string, string?> { [SharedMemoryAllreduce.SetsVariable] = "1" };
        var result = Train(2, "one", oneSet, "--bucket-bytes", "1");
        Train(2, "two", null, "--bucket-bytes", "1");
        Reference("ref", "--halves", "2");
        Assert.Contains("rank 1: shared memory True", result.Stdout);
        AssertSameBits("one.rank0", "one.rank1");
        AssertSameBits("one.rank0", "two.rank0");
        AssertSameBits("one.rank0", "ref");
    }

    [Theory]
    [InlineData("shm", "26214400")] // the header is the one bucket's meeting
    [InlineData("shm", "1")]        // ... and every one of six buckets' meetings
    [InlineData("mpi", "1")]        // the header's own allgather at the start of backward
    public void RanksThatDisagreeOnNoSyncScopesAreAnErrorOnEveryRankWithEitherReduction(string reduction, string bucketBytes)
    {
        var result = MpiJob.Run(2, "train", "--accumulate", "2", "--skip-nosync-rank", "1", "--reduction", reduction, "--bucket-bytes", bucketBytes);
        Assert.NotEqual(0, result.ExitCode);
        const string what = "rank 0 at synchronised backward 1 after 1 backward pass under NoSync, rank 1 at synchronised backward 1 after 0 backward passes under NoSync";
        for (int r = 0; r < 2; r++)
            Assert.Contains($"rank {r} of 2: DistributedDataParallel: the ranks are not at the same synchronised backward", result.Stderr);
        Assert.Equal(2, result.Stderr.Split(what).Length - 1);
    }

    [Theory]
    [InlineData("shm", null, 2)]
    [InlineData("shm", "1", 2)]
    [InlineData("shm", null, 3)] // shares: the header is the first of two meetings
    [InlineData("mpi", null, 2)]
    public void AStopRequestedOnTheLastRankStopsEveryRankAfterTheSameStepWithEitherReduction(string reduction, string? sets, int ranks)
    {
        // The last rank alone asks before its third step; its header carries the request to every rank at that step.
        var environment = new Dictionary<string, string?> { [SharedMemoryAllreduce.SetsVariable] = sets };
        string last = (ranks - 1).ToString(CultureInfo.InvariantCulture);
        var result = Train(ranks, "stop", environment, "--reduction", reduction, "--stop-rank", last, "--stop-step", "2", "--bucket-bytes", "1");
        for (int r = 0; r < ranks; r++)
        {
            Assert.Contains($"rank {r}: stopped after step 3", result.Stdout);
            Assert.Contains($"rank {r}: syncs 3,", result.Stdout);
            Assert.Contains($"rank {r}: shared memory {Shared(reduction)}", result.Stdout);
        }
    }

    private static void AssertClose(Dictionary<string, double[]> actual, Dictionary<string, double[]> expected, double relative)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, e) in expected)
        {
            var a = actual[name];
            double scale = e.Max(Math.Abs);
            double worst = e.Zip(a, (x, y) => Math.Abs(x - y)).Max();
            Assert.True(worst <= relative * scale, $"{name}: largest difference {worst:G3} exceeds {relative:G3} x {scale:G3}");
            Assert.NotEqual(0, scale);
        }
    }
}
