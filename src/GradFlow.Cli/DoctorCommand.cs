using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using GradFlow.Diagnostics;
using Spectre.Console;

namespace GradFlow.Cli;

/// <summary>
/// `gradflow doctor RUN`: the doctor's findings for a run log, as text or JSON; exit code 1 when a finding is an error,
/// so a CI job can be gated on it.
/// </summary>
internal static class DoctorCommand
{
    private static readonly Argument<string> s_run = new("run") { Description = "A run log (runlog.jsonl, or the directory holding it)" };
    private static readonly Option<bool> s_json = new("--json") { Description = "Print the findings as JSON" };
    private static readonly JsonSerializerOptions s_jsonOptions = new()
    {
        WriteIndented = true, Converters = { new JsonStringEnumConverter() }, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static Command Create(IAnsiConsole console)
    {
        var command = new Command("doctor", "Diagnose a run log: what is wrong with the training run, the evidence, and the fix. Exit code 1 when a finding is an error.") { s_run, s_json };
        command.SetAction(r =>
        {
            string path = ReportCommand.Resolve(r.GetValue(s_run)!);
            using var doctor = new Doctor();
            using (var reader = Reporting.RunLog.Open(path))
                foreach (var step in reader.ReadRecords()) doctor.Observe(step);
            var findings = doctor.Findings;
            if (r.GetValue(s_json)) console.Profile.Out.Writer.WriteLine(JsonSerializer.Serialize(findings, s_jsonOptions));
            else
            {
                console.WriteLine(findings.Count == 0 ? $"{path}: no finding; nothing in the gradients, activations or loss crossed a threshold."
                    : $"{path}: {findings.Count} finding{(findings.Count == 1 ? "" : "s")}");
                // A resumed run's log starts after step 1: its first record shows trained weights, not the initialisation.
                if (doctor is { StartsAtInitialisation: false, FirstStep: { } first })
                    console.WriteLine($"The log starts at step {first}, after training began (a resumed run): the initialisation was not judged.");
                foreach (var f in findings) console.WriteLine(f.ToString());
            }
            return findings.Any(f => f.Severity == Severity.Error) ? 1 : 0;
        });
        return command;
    }
}
