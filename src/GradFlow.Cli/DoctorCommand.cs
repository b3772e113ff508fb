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
            var findings = Reporting.RunLog.Diagnose(path);
            if (r.GetValue(s_json)) console.Profile.Out.Writer.WriteLine(JsonSerializer.Serialize(findings, s_jsonOptions));
            else if (findings.Count == 0) console.WriteLine($"{path}: no finding; nothing in the gradients, activations or loss crossed a threshold.");
            else
            {
                console.WriteLine($"{path}: {findings.Count} finding{(findings.Count == 1 ? "" : "s")}");
                foreach (var f in findings) console.WriteLine(f.ToString());
            }
            return findings.Any(f => f.Severity == Severity.Error) ? 1 : 0;
        });
        return command;
    }
}
