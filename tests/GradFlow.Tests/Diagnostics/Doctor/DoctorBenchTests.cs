using GradFlow.Diagnostics;
using GradFlow.DoctorBench;

namespace GradFlow.Tests.Diagnostics;

/// <summary>
/// A bounded subset of the fault benchmark (bench/GradFlow.DoctorBench): the quick tuning runs, one per fault kind and
/// the quick healthy ones. The full benchmark, with its held-out set, is bench/doctor.sh.
/// </summary>
public class DoctorBenchTests
{
    private static readonly string[] s_subset =
    [
        "healthy-deep-bn", "healthy-mlp-adam", "healthy-tanh-xavier", "vanishing-sigmoid-10", "rnn-exploding", "nonfinite-log-zero",
        "dead-relu-bias", "saturated-sigmoid-bigw", "stuck-sigmoid", "lr-high-adam", "lr-low-sgd", "poor-init-tanh-small",
        "not-learning-shuffled", "accumulate-sgd", "weight-decay-huge", "inputs-255", "softmax-into-ce",
    ];

    [Fact]
    public void TheTuningSubsetMeetsTheTargets()
    {
        var outcomes = Scenarios.All.Where(s => s_subset.Contains(s.Name)).Select(Harness.Run).ToList();
        Assert.Equal(s_subset.Length, outcomes.Count);
        var score = Score.Of(outcomes);
        Assert.All(outcomes.Where(o => o.Scenario.Healthy), o => Assert.Empty(o.Raised));
        Assert.True(score.Precision >= 0.9, $"precision {score.Precision:0.00}: " + Describe(outcomes));
        Assert.True(score.Recall >= 0.9, $"recall {score.Recall:0.00}: " + Describe(outcomes));
        // Acute faults within 50 steps; "not learning" needs two windows of a flat loss by definition.
        foreach (var o in outcomes)
            foreach (var k in o.TruePositives)
                Assert.True(o.Raised[k] - o.Scenario.Onset <= (k == FindingKind.NotLearning ? 100 : 50), $"{o.Scenario.Name}: {k} at step {o.Raised[k]}");
    }

    private static string Describe(IEnumerable<Outcome> outcomes) => string.Join("; ", outcomes.Where(o => o.Missed.Any() || o.FalseAlarms.Any())
        .Select(o => $"{o.Scenario.Name} missed [{string.Join(",", o.Missed)}] false [{string.Join(",", o.FalseAlarms)}]"));
}
