using GradFlow.Diagnostics;
using GradFlow.NN;
using GradFlow.Reporting;

namespace GradFlow.Distributed.Tests;

public sealed class RunLogTests
{
    [Fact]
    public void TheRanksComparisonGoesThroughTheMonitorIntoTheRunLogAndBack()
    {
        var path = Path.Combine(Path.GetTempPath(), $"gradflow-ranks-{Guid.NewGuid():N}.jsonl");
        try
        {
            var model = new Linear(2, 1);
            var stats = new DistributedGradientStats(2, 1.5, ["weight", "bias"],
                [new RankGradientStats(0, 1, 0, [0.6, 0.8], [0, 0]), new RankGradientStats(1, 30, 3, [double.NaN, 30], [2, 1])],
                [0, 1], 10, new NonFiniteOrigin(4, 1, "bias", [1]));
            using (var monitor = GradientMonitor.Attach(model))
            using (RunLog.Attach(monitor, path))
            {
                monitor.ObserveRanks(stats);
                Assert.Same(stats, monitor.EndStep()!.Distributed);
                Assert.Null(monitor.EndStep()!.Distributed); // one step's figures only
            }
            using var log = RunLog.Open(path);
            var records = log.ReadRecords().ToArray();
            var read = records[0].Distributed!;
            Assert.Null(records[1].Distributed);
            Assert.Equal((2, 1.5, 10.0), (read.WorldSize, read.GlobalGradNorm, read.DivergenceFactor));
            Assert.Equal(["weight", "bias"], read.Parameters);
            Assert.Equal([0, 1], read.DivergentRanks);
            Assert.Equal([double.NaN, 30], read.Ranks[1].ParameterNorms);
            Assert.Equal([2L, 1L], read.Ranks[1].ParameterNonFinite);
            Assert.Equal((30.0, 3L), (read.Ranks[1].GradNorm, read.Ranks[1].NonFinite));
            Assert.Equal((4L, 1, "bias"), (read.FirstNonFinite!.Step, read.FirstNonFinite.Rank, read.FirstNonFinite.Parameter));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
