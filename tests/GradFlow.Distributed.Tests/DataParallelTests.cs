using GradFlow.Reporting;

namespace GradFlow.Distributed.Tests;

/// <summary>Data-parallel training on two ranks of one machine, checked against one process and across ranks.</summary>
public sealed class DataParallelTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gradflow-mpi-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Out(string name) => Path.Combine(_dir, name);

    private MpiJob.Result Train(string name, params string[] args)
    {
        var result = MpiJob.Run(2, ["train", "--out", Out(name), .. args]);
        Assert.True(result.ExitCode == 0, $"mpirun exited with {result.ExitCode}:\n{result.Output}");
        return result;
    }

    private void Reference(string name, params string[] args)
    {
        var result = MpiJob.RunAlone(["reference", "--out", Out(name), .. args]);
        Assert.True(result.ExitCode == 0, $"the reference exited with {result.ExitCode}:\n{result.Output}");
    }

    private void AssertSameBits(string a, string b) => Assert.Equal(File.ReadAllText(Out(a)), File.ReadAllText(Out(b)));

    [Fact]
    public void TwoRanksWithBatchBEqualOneProcessSummingTheTwoHalvesBitwise()
    {
        // The allreduce adds rank 0's and rank 1's mean-over-B gradients and halves the sum; one process that adds the
        // two halves' gradients and halves them performs the same float operations in the same order.
        Train("ddp");
        Reference("ref", "--halves", "2");
        AssertSameBits("ddp.rank0", "ddp.rank1");
        AssertSameBits("ddp.rank0", "ref");
    }

    [Fact]
    public void TwoRanksWithBatchBMatchOneProcessWithBatch2BWithinRounding()
    {
        // One batch of 2B sums its 2B rows in another order than two batches of B, so the weights agree to rounding only.
        // In float64 that is about 1e-15 relative per step; 1e-10 leaves a wide margin, and a wrong average (a sum not
        // divided, a rank's rows dropped) moves the weights by lr * |g|, about 1e-2 here.
        Train("ddp", "--dtype", "f64");
        Reference("ref", "--halves", "1", "--dtype", "f64");
        AssertSameBits("ddp.rank0", "ddp.rank1");
        AssertClose(MpiJob.ReadWeights(Out("ddp.rank0")), MpiJob.ReadWeights(Out("ref")), 1e-10);
    }

    [Fact]
    public void BucketingOverlapRepeatsAndTheTrainingThreadDoNotChangeTheResult()
    {
        // The model's 6 parameters fit one 25 MB bucket; with a 1-byte cap each has its own, and the first 5 start while
        // backward still computes the earlier layers' gradients; without overlap none does.
        Assert.Contains("rank 0: 1 buckets, 0 started during backward", Train("default").Stdout);
        Train("again");
        Train("other-thread", "--thread", "1");
        Assert.Contains("rank 1: 6 buckets, 5 started during backward", Train("one-per-bucket", "--bucket-bytes", "1").Stdout);
        Assert.Contains("rank 0: 6 buckets, 0 started during backward", Train("blocking", "--overlap", "0", "--bucket-bytes", "1").Stdout);
        // Every gradient reduced where it lies (pinned) instead of copied into the bucket: in one bucket, and one per bucket.
        Train("in-place", "--in-place-bytes", "1");
        Train("in-place-split", "--in-place-bytes", "1", "--bucket-bytes", "1");
        AssertSameBits("default.rank0", "again.rank0");
        AssertSameBits("default.rank1", "other-thread.rank1");
        AssertSameBits("default.rank0", "one-per-bucket.rank0");
        AssertSameBits("default.rank0", "blocking.rank0");
        AssertSameBits("default.rank1", "blocking.rank1");
        AssertSameBits("default.rank0", "in-place.rank0");
        AssertSameBits("default.rank1", "in-place-split.rank1");
    }

    [Fact]
    public void NoSyncAccumulatesLocallyAndAveragesOncePerStep()
    {
        var result = Train("accumulate", "--accumulate", "2", "--dtype", "f64");
        Reference("ref", "--halves", "1", "--dtype", "f64");
        AssertSameBits("accumulate.rank0", "accumulate.rank1");
        Assert.Contains("rank 0: syncs 5,", result.Stdout); // 5 steps of 2 micro-batches: one allreduce per step
        AssertClose(MpiJob.ReadWeights(Out("accumulate.rank0")), MpiJob.ReadWeights(Out("ref")), 1e-10);
    }

    [Fact]
    public void ALayerTheForwardNeverCallsNeitherBlocksTheAllreduceNorMoves()
    {
        // Backward cannot reach it, so its gradients count as ready (zeros) from the start: every step still averages,
        // its weights stay rank 0's, and the rest trains exactly as without it.
        var result = Train("unused", "--unused", "1");
        Train("plain");
        Assert.Contains("rank 0: syncs 5,", result.Stdout);
        Assert.Contains("rank 1: unused layer unchanged True", result.Stdout);
        AssertSameBits("unused.rank0", "unused.rank1");
        var trained = MpiJob.ReadWeights(Out("unused.rank0"));
        foreach (var (name, values) in MpiJob.ReadWeights(Out("plain.rank0")))
            Assert.Equal(values, trained["0." + name]);
    }

    [Fact]
    public void AStopRequestedOnOneRankStopsEveryRankAfterTheSameStep()
    {
        // Rank 1 alone asks before its third step; the request travels with that step's header, so both ranks see it
        // after the third step's backward, stop there, and rank 0 writes the checkpoint every rank then reads.
        var result = Train("stop", "--stop-rank", "1", "--stop-step", "2");
        Assert.Contains("rank 0: stopped after step 3", result.Stdout);
        Assert.Contains("rank 1: stopped after step 3", result.Stdout);
        Assert.Contains("rank 0: syncs 3,", result.Stdout);
        Assert.Contains("rank 1: checkpoint matches", result.Stdout);
    }

    [Fact]
    public void SigUsr1SentToMpirunStopsEveryRankAfterTheSameStepAndSavesACheckpoint()
    {
        // Open MPI forwards SIGUSR1 to every rank, where it calls RequestStop. The worker trains until stopped, so when
        // the signal lands does not matter: only that every rank stops after the same step and the checkpoint is written.
        var result = MpiJob.RunAndSignal(2, "rank 0: training", "train", "--out", Out("signal"), "--signal", "1");
        Assert.True(result.ExitCode == 0, $"mpirun exited with {result.ExitCode}:\n{result.Output}");
        var stopped = System.Text.RegularExpressions.Regex.Matches(result.Stdout, @"rank (\d): stopped after step (\d+)");
        Assert.Equal(2, stopped.Count);
        Assert.Equal(stopped[0].Groups[2].Value, stopped[1].Groups[2].Value);
        Assert.True(File.Exists(Out("signal.checkpoint")));
        Assert.Contains("rank 1: checkpoint matches", result.Stdout);
        AssertSameBits("signal.rank0", "signal.rank1");
    }

    [Fact]
    public void ACheckpointWhoseStateDiffersOnOneRankIsRefusedByEveryRankNotAHang()
    {
        // Rank 1 moves one weight by one ulp before the collective checkpoint: the file holds rank 0's state, and every
        // rank, comparing the digests of all, throws the same error naming rank 1 and the tensor; the job ends by itself.
        var result = MpiJob.Run(2, "train", "--out", Out("parted"), "--part-rank", "1");
        Assert.Equal(1, result.ExitCode);
        const string what = "holds rank 0's state, which differs from rank 1's at 'model.4.bias' (CRC-32C";
        for (int r = 0; r < 2; r++)
            Assert.Contains($"rank {r} of 2: DistributedDataParallel.SaveCheckpoint: checkpoint '{Out("parted.checkpoint")}' {what}", result.Stderr);
        Assert.DoesNotContain("checkpoint matches", result.Stdout);
    }

    [Fact]
    public void ACheckpointRank0CannotWriteIsTheSameErrorOnEveryRank()
    {
        // A directory where the file should go: rank 0's write fails, and the other rank learns it at the same collective.
        Directory.CreateDirectory(Out("blocked.checkpoint"));
        var result = MpiJob.Run(2, "train", "--out", Out("blocked"));
        Assert.Equal(1, result.ExitCode);
        for (int r = 0; r < 2; r++)
            Assert.Contains($"rank {r} of 2: DistributedDataParallel.SaveCheckpoint: checkpoint '{Out("blocked.checkpoint")}' is not confirmed: rank 0 could not write it (", result.Stderr);
    }

    [Theory]
    [InlineData("broadcast")]
    [InlineData("average")]
    public void BatchNormRunningStatisticsAreTheSameBitsOnEveryRankAndMatchOneProcess(string buffers)
    {
        // Each rank's forward updates its running statistics from its own rows, so without a sync they part after one step.
        // Broadcast gives every rank rank 0's: what one process gets from the first half's rows alone. Average gives the
        // mean of the two halves' updates. The weights and buffers files hold every parameter's and buffer's bits.
        Train("ddp", "--batchnorm", "1", "--buffers", buffers);
        Reference("ref", "--batchnorm", "1", "--buffers", buffers);
        AssertSameBits("ddp.rank0", "ddp.rank1");
        AssertSameBits("ddp.rank0", "ref");
    }

    [Fact]
    public void WithoutBufferSyncEachRankKeepsRunningStatisticsOfItsOwnRows()
    {
        Train("ddp", "--batchnorm", "1", "--buffers", "none");
        Reference("ref", "--batchnorm", "1", "--buffers", "broadcast");
        var (rank0, rank1) = (MpiJob.ReadWeights(Out("ddp.rank0")), MpiJob.ReadWeights(Out("ddp.rank1")));
        Assert.NotEqual(rank0["1.running_mean"], rank1["1.running_mean"]);
        Assert.NotEqual(rank0["1.running_var"], rank1["1.running_var"]);
        Assert.Equal(rank0["0.weight"], rank1["0.weight"]); // the parameters are still averaged
        AssertSameBits("ddp.rank0", "ref"); // rank 0's statistics come from its own rows, as with broadcast
    }

    [Fact]
    public void RanksThatDisagreeOnNoSyncScopesAreAnErrorOnEveryRankNotAHang()
    {
        // Rank 1 synchronises every micro-batch while rank 0 accumulates two under NoSync: rank 1's first synchronised
        // backward meets rank 0's, which comes after one local pass. Both see both headers, so both name the same counters
        // and end; the job ends by itself with a non-zero code.
        var result = MpiJob.Run(2, "train", "--accumulate", "2", "--skip-nosync-rank", "1");
        Assert.NotEqual(0, result.ExitCode);
        const string what = "rank 0 at synchronised backward 1 after 1 backward pass under NoSync, rank 1 at synchronised backward 1 after 0 backward passes under NoSync";
        for (int r = 0; r < 2; r++)
            Assert.Contains($"rank {r} of 2: DistributedDataParallel: the ranks are not at the same synchronised backward", result.Stderr);
        Assert.Equal(2, result.Stderr.Split(what).Length - 1);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(0)]
    public void ANaNPlantedOnOneRankIsReportedAsThatRanks(int rank)
    {
        // The NaN enters rank `rank`'s input at its third step; after that step's allreduce every rank's weights are NaN,
        // so only the comparison of the ranks' gradients before the allreduce can name where it came from.
        var result = Train("nan", "--nan-rank", rank.ToString(System.Globalization.CultureInfo.InvariantCulture), "--nan-step", "2");
        Assert.Contains($"rank 0: first non-finite gradient at step 3 on rank {rank} in 4.bias", result.Stdout);
        Assert.Contains($"rank 1: first non-finite gradient at step 3 on rank {rank} in 4.bias", result.Stdout);

        using var log = RunLog.Open(Out("nan.runlog.jsonl"));
        var steps = log.ReadRecords().ToArray();
        Assert.Equal(5, steps.Length);
        Assert.All(steps.Take(2), s => Assert.Null(s.Distributed!.FirstNonFinite));
        var third = steps[2].Distributed!;
        Assert.Equal(2, third.WorldSize);
        var first = third.FirstNonFinite!;
        Assert.Equal((3L, rank, "4.bias"), (first.Step, first.Rank, first.Parameter));
        Assert.Equal([rank], first.Ranks);
        Assert.True(third.Ranks[rank].NonFinite > 0);
        Assert.Equal(0, third.Ranks[1 - rank].NonFinite);
        Assert.Equal((first.Step, first.Rank), (steps[4].Distributed!.FirstNonFinite!.Step, steps[4].Distributed!.FirstNonFinite!.Rank)); // the first stays the first
    }

    [Fact]
    public void EveryRanksGradientNormsAreLoggedBeforeTheAllreduceAndTheGlobalOneAfter()
    {
        Train("log");
        using var log = RunLog.Open(Out("log.runlog.jsonl"));
        foreach (var record in log.ReadRecords())
        {
            var d = record.Distributed!;
            Assert.Equal([0, 1], d.Ranks.Select(r => r.Rank));
            Assert.Equal(6, d.Parameters.Count);
            // The ranks saw different rows, so their gradients differ; the average's norm is at most the mean of theirs.
            Assert.NotEqual(d.Ranks[0].GradNorm, d.Ranks[1].GradNorm);
            Assert.True(d.GlobalGradNorm <= (d.Ranks[0].GradNorm + d.Ranks[1].GradNorm) / 2 * (1 + 1e-6));
            // The monitor measures the averaged gradient the optimiser applied: the same global norm.
            Assert.Equal(record.GlobalGradNorm, d.GlobalGradNorm, 1e-5 * d.GlobalGradNorm);
            Assert.Empty(d.DivergentRanks);
        }
    }

    [Theory]
    [InlineData(3, "2")]   // the median of three is a healthy rank's: only the stray one is named
    [InlineData(2, "0,1")] // two numbers cannot tell which one strayed: both are named
    public void ARankWhoseGradientsStrayFromTheOthersIsNamed(int ranks, string expected)
    {
        var result = MpiJob.Run(ranks, "train", "--steps", "2", "--scale-rank", (ranks - 1).ToString(System.Globalization.CultureInfo.InvariantCulture), "--scale", "100");
        Assert.True(result.ExitCode == 0, $"mpirun exited with {result.ExitCode}:\n{result.Output}");
        for (int r = 0; r < ranks; r++) Assert.Contains($"rank {r}: syncs 2, divergent [{expected}]", result.Stdout);
    }

    [Fact]
    public void ModelsThatDifferAcrossRanksAreAClearErrorOnEveryRankNotAHang()
    {
        var result = MpiJob.Run(2, "mismatch");
        Assert.NotEqual(0, result.ExitCode);
        const string what = "parameter '0.weight' is float32 [32, 16] on rank 0 but float32 [48, 16] on rank 1";
        Assert.Contains($"rank 0 of 2: DistributedDataParallel: the ranks hold different models", result.Stderr);
        Assert.Contains($"rank 1 of 2: DistributedDataParallel: the ranks hold different models", result.Stderr);
        Assert.Equal(2, result.Stderr.Split(what).Length - 1);
    }

    [Fact]
    public void ARankThatDiesEndsTheJobInsteadOfLeavingTheOthersWaiting()
    {
        // Rank 1 exits with code 3 at its third step while rank 0 waits in the allreduce: mpirun ends the job with that code.
        var result = MpiJob.Run(2, "die");
        Assert.Equal(3, result.ExitCode);
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
