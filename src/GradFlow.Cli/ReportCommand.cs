using System.CommandLine;
using GradFlow.Reporting.Html;
using Spectre.Console;

namespace GradFlow.Cli;

/// <summary>`gradflow report RUN... -o report.html`: one self-contained HTML page from run logs, several runs side by side.</summary>
internal static class ReportCommand
{
    private static readonly Argument<string[]> s_runs = new("runs")
    {
        Description = "Run logs (runlog.jsonl files, or directories holding one) to report, side by side when several",
        Arity = ArgumentArity.OneOrMore,
    };
    private static readonly Option<string> s_output = new("--output", "-o") { Description = "The HTML file to write (default report.html)", DefaultValueFactory = _ => "report.html" };
    private static readonly Option<string?> s_title = new("--title") { Description = "The page's title" };

    public static Command Create(IAnsiConsole console)
    {
        var command = new Command("report", "Write a self-contained HTML report of one or more run logs.") { s_runs, s_output, s_title };
        command.SetAction(r =>
        {
            var runs = r.GetValue(s_runs)!.Select(Resolve).Select(path => ReportRun.FromRunLog(path, RunName(path))).ToList();
            foreach (var run in runs.Where(run => run.Steps.Count == 0))
                throw new CliException($"run log of '{run.Name}' has no recorded steps yet; train at least one step before reporting.");
            string output = r.GetValue(s_output)!;
            string? dir = Path.GetDirectoryName(Path.GetFullPath(output));
            if (dir is not null) CliApp.EnsureWritableDirectory(dir, "--output");
            HtmlReport.Write(output, runs, new HtmlReportOptions { Title = r.GetValue(s_title) ?? "GradFlow report" });
            console.WriteLine($"report: {output} ({new FileInfo(output).Length / 1024.0:0} KiB, {runs.Count} run{(runs.Count == 1 ? "" : "s")}, {runs.Sum(x => x.Steps.Count):N0} steps)");
            return 0;
        });
        return command;
    }

    /// <summary>A run log given as a file or as the directory holding runlog.jsonl.</summary>
    public static string Resolve(string path)
    {
        if (Directory.Exists(path))
        {
            var inside = Path.Combine(path, "runlog.jsonl");
            if (File.Exists(inside)) return inside;
            throw new CliException($"'{path}' is a directory without a runlog.jsonl; give the run log file itself, or train with --log-dir '{path}'.");
        }
        if (!File.Exists(path)) throw new CliException($"run log '{path}' does not exist.");
        return path;
    }

    // A run in a directory of its own is named after the directory (runs/sigmoid/runlog.jsonl -> sigmoid).
    private static string RunName(string path)
    {
        string file = Path.GetFileNameWithoutExtension(path);
        string? dir = Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(path)));
        return file == "runlog" && !string.IsNullOrEmpty(dir) ? dir : file;
    }
}
