using GradFlow.Diagnostics;

namespace GradFlow.DoctorBench;

/// <summary>Precision, recall and steps to detection over a set of outcomes, per kind and overall.</summary>
public sealed record Score(int TruePositives, int FalsePositives, int FalseNegatives, IReadOnlyList<long> StepsToDetection)
{
    public double Precision => TruePositives + FalsePositives == 0 ? 1 : (double)TruePositives / (TruePositives + FalsePositives);
    public double Recall => TruePositives + FalseNegatives == 0 ? 1 : (double)TruePositives / (TruePositives + FalseNegatives);
    public double MedianSteps => StepsToDetection.Count == 0 ? double.NaN : RunHistoryMedian(StepsToDetection);

    public static Score Of(IEnumerable<Outcome> outcomes, FindingKind? kind = null)
    {
        int tp = 0, fp = 0, fn = 0;
        var steps = new List<long>();
        foreach (var o in outcomes)
        {
            foreach (var k in o.TruePositives.Where(k => kind is null || k == kind))
            {
                tp++;
                steps.Add(Math.Max(0, o.Raised[k] - o.Scenario.Onset));
            }
            fn += o.Missed.Count(k => kind is null || k == kind);
            fp += o.FalseAlarms.Count(k => kind is null || k == kind);
        }
        return new Score(tp, fp, fn, steps);
    }

    private static double RunHistoryMedian(IReadOnlyList<long> values)
    {
        var v = values.Order().ToArray();
        return v.Length % 2 == 1 ? v[v.Length / 2] : 0.5 * (v[v.Length / 2 - 1] + v[v.Length / 2]);
    }
}
