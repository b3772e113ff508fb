using System.Diagnostics;
using GradFlow.Diagnostics;
using GradFlow.DoctorBench;

// The doctor's fault benchmark: every scenario trains a small seeded run with the doctor attached; the table says what
// each raised, then precision, recall and median steps to detection per kind, for the tuning and held-out sets and overall.
string? set = null, only = null;
bool verbose = false, rehearse = false;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--set" when i + 1 < args.Length: set = args[++i]; break;
        case "--only" when i + 1 < args.Length: only = args[++i]; break;
        case "--verbose": verbose = true; break;
        case "--trace": Harness.Trace = verbose = true; break;
        case "--rehearse": rehearse = true; break;
        default:
            Console.Error.WriteLine($"doctor bench: unknown argument '{args[i]}'; use --set tuning|held-out|final|unseen|fresh|blind|blind2|blind3|dropout, --only NAME, --verbose, --rehearse");
            return 2;
    }
}
ScenarioSet? wanted = set switch
{
    null => null,
    "tuning" => ScenarioSet.Tuning,
    "held-out" => ScenarioSet.HeldOut,
    "final" => ScenarioSet.Final,
    "unseen" => ScenarioSet.Unseen,
    "fresh" => ScenarioSet.Fresh,
    "blind" => ScenarioSet.Blind,
    "blind2" => ScenarioSet.Blind2,
    "blind3" => ScenarioSet.Blind3,
    "dropout" => ScenarioSet.Dropout,
    _ => (ScenarioSet)(-1),
};
if (wanted is (ScenarioSet)(-1))
{
    Console.Error.WriteLine($"doctor bench: --set must be tuning, held-out, final, unseen, fresh, blind, blind2, blind3 or dropout, got '{set}'");
    return 2;
}

var chosen = Scenarios.All.Where(s => (wanted is null || s.Set == wanted) && (only is null || s.Name.Contains(only, StringComparison.Ordinal))).ToList();
if (rehearse)
{
    // The runs without the doctor: loss and accuracy only (see Harness.Rehearse).
    foreach (var scenario in chosen)
    {
        Console.WriteLine(scenario.Name);
        Harness.Rehearse(scenario);
    }
    return 0;
}
var clock = Stopwatch.StartNew();
var outcomes = new List<Outcome>();
Console.WriteLine($"{"scenario",-30} {"set",-8} {"steps",5} {"time",6}  result");
foreach (var scenario in chosen)
{
    var o = Harness.Run(scenario);
    outcomes.Add(o);
    string raised = string.Join(", ", o.Raised.OrderBy(r => r.Value).Select(r => $"{r.Key}@{r.Value}"));
    string verdict = o.Missed.Any() || o.FalseAlarms.Any()
        ? $"MISSED [{string.Join(", ", o.Missed)}] FALSE [{string.Join(", ", o.FalseAlarms)}]" : "ok";
    Console.WriteLine($"{scenario.Name,-30} {SetName(scenario.Set),-8} {scenario.Steps,5} {o.Seconds,5:0.0}s  {verdict}; raised: {(raised.Length == 0 ? "nothing" : raised)}");
    if (verbose) foreach (var f in o.Findings) Console.WriteLine("    " + f.ToString().Replace("\n", "\n    "));
}

Console.WriteLine();
Console.WriteLine($"{"kind",-28} {"tuning P/R",12} {"held-out P/R",14} {"final P/R",12} {"unseen P/R",12} {"fresh P/R",12} {"blind P/R",12} {"blind2 P/R",12} {"blind3 P/R",12} {"dropout P/R",12} {"all P/R",12} {"median steps",13}");
foreach (var kind in Enum.GetValues<FindingKind>().Where(k => k != FindingKind.AutoFixApplied))
{
    var all = Score.Of(outcomes, kind);
    if (all.TruePositives + all.FalsePositives + all.FalseNegatives == 0) continue;
    Console.WriteLine($"{kind,-28} {PR(Of(ScenarioSet.Tuning, kind)),12} {PR(Of(ScenarioSet.HeldOut, kind)),14} {PR(Of(ScenarioSet.Final, kind)),12} {PR(Of(ScenarioSet.Unseen, kind)),12} {PR(Of(ScenarioSet.Fresh, kind)),12} {PR(Of(ScenarioSet.Blind, kind)),12} {PR(Of(ScenarioSet.Blind2, kind)),12} {PR(Of(ScenarioSet.Blind3, kind)),12} {PR(Of(ScenarioSet.Dropout, kind)),12} {PR(all),12} {all.MedianSteps,13:0}");
}
var tuning = Of(ScenarioSet.Tuning, null);
var heldOut = Of(ScenarioSet.HeldOut, null);
var final = Of(ScenarioSet.Final, null);
var unseen = Of(ScenarioSet.Unseen, null);
var fresh = Of(ScenarioSet.Fresh, null);
var blind = Of(ScenarioSet.Blind, null);
var blind2 = Of(ScenarioSet.Blind2, null);
var blind3 = Of(ScenarioSet.Blind3, null);
var dropout = Of(ScenarioSet.Dropout, null);
var overall = Score.Of(outcomes);
int healthy = outcomes.Count(o => o.Scenario.Healthy), quiet = outcomes.Count(o => o.Scenario.Healthy && o.Raised.Count == 0);
Console.WriteLine($"{"overall",-28} {PR(tuning),12} {PR(heldOut),14} {PR(final),12} {PR(unseen),12} {PR(fresh),12} {PR(blind),12} {PR(blind2),12} {PR(blind3),12} {PR(dropout),12} {PR(overall),12} {overall.MedianSteps,13:0}");
Console.WriteLine($"{outcomes.Count} runs ({outcomes.Count - healthy} faulty, {healthy} healthy: {quiet} raised no warning) in {clock.Elapsed.TotalSeconds:0} s; " +
                  $"final set P/R {PR(final)}; unseen set P/R {PR(unseen)}; fresh set P/R {PR(fresh)}; blind set P/R {PR(blind)}; blind2 set P/R {PR(blind2)}; blind3 set P/R {PR(blind3)}; dropout set P/R {PR(dropout)}; max steps to detection {(overall.StepsToDetection.Count > 0 ? overall.StepsToDetection.Max() : 0)}");
Console.WriteLine($"precision {overall.Precision:0.00} recall {overall.Recall:0.00}");
// The issue's targets, for CI: precision and recall of at least 0.9 over the runs chosen, and no warning on a healthy run.
bool met = overall.Precision >= 0.9 && overall.Recall >= 0.9 && quiet == healthy;
if (!met) Console.Error.WriteLine("doctor benchmark: below its targets (precision and recall >= 0.9, healthy runs quiet)");
return met ? 0 : 1;

Score Of(ScenarioSet which, FindingKind? kind) => Score.Of(outcomes.Where(o => o.Scenario.Set == which), kind);

static string SetName(ScenarioSet s) => s switch { ScenarioSet.Tuning => "tuning", ScenarioSet.HeldOut => "held-out", ScenarioSet.Final => "final", ScenarioSet.Unseen => "unseen", ScenarioSet.Fresh => "fresh", ScenarioSet.Blind => "blind", ScenarioSet.Blind2 => "blind2", ScenarioSet.Blind3 => "blind3", _ => "dropout" };

static string PR(Score s) => s.TruePositives + s.FalsePositives + s.FalseNegatives == 0 ? "-" : $"{s.Precision:0.00}/{s.Recall:0.00}";
