using System.Reflection;
using GradFlow.Diagnostics;

namespace GradFlow.Reporting;

/// <summary>
/// The run log: an append-only JSONL file with one line per monitored step, every line tagged with
/// <see cref="Schema"/>, the first line a header. The format is documented field by field in docs/RUNLOG.md.
/// </summary>
public static class RunLog
{
    /// <summary>
    /// The schema version every line carries in its "schema" field. Version 2 made the curvature's "sharpness"
    /// optional (an Adam or RMSprop probe measures the preconditioned sharpness only); a version 1 log is a valid
    /// version 2 log, so readers accept both.
    /// </summary>
    public const string Schema = SchemaFamily + "2";

    /// <summary>The default line limit of writers and readers: 64 MiB.</summary>
    public const int DefaultMaxLineBytes = 64 << 20;

    internal const string SchemaFamily = "gradflow.runlog/";

    /// <summary>This GradFlow's version, as written into headers.</summary>
    public static string GradFlowVersion { get; } =
        typeof(RunLog).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(RunLog).Assembly.GetName().Version?.ToString() ?? "unknown";

    /// <summary>
    /// Appends every step the monitor records to the log at <paramref name="path"/> (created with a header
    /// if new); dispose the result to detach and close the file.
    /// </summary>
    /// <example><code>using var log = RunLog.Attach(monitor, "runs/mlp.jsonl");</code></example>
    public static IDisposable Attach(GradientMonitor monitor, string path, RunLogWriterOptions? options = null)
    {
        Guard.NotNull(monitor, "RunLog.Attach", nameof(monitor));
        var writer = new RunLogWriter(path, options);
        monitor.StepRecorded += writer.Write;
        return new MonitorAttachment(() => monitor.StepRecorded -= writer.Write, writer);
    }

    /// <summary>Opens a run log for reading; see <see cref="RunLogReader"/>.</summary>
    public static RunLogReader Open(string path, RunLogReaderOptions? options = null) => RunLogReader.Open(path, options);

    /// <summary>
    /// Diagnoses the run in a log after the fact (<see cref="Doctor.Diagnose"/>): the findings the online doctor would
    /// have raised, minus its live-only probes. A half-written log is diagnosed up to its last whole step.
    /// </summary>
    public static IReadOnlyList<Finding> Diagnose(string path, DoctorOptions? options = null, RunLogReaderOptions? readerOptions = null)
    {
        using var reader = RunLogReader.Open(path, readerOptions);
        return Doctor.Diagnose(reader.ReadRecords(), options);
    }

    internal static void CheckMaxLineBytes(int maxLineBytes, string argument)
    {
        if (maxLineBytes < 1024 || maxLineBytes > Array.MaxLength - 1)
            throw new ArgumentOutOfRangeException(argument, maxLineBytes, $"{nameof(RunLog)}: MaxLineBytes must be between 1024 and {Array.MaxLength - 1}, got {maxLineBytes}.");
    }
}
