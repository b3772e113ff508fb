using System.Text.Json.Nodes;
using GradFlow.Diagnostics;

namespace GradFlow.Reporting;

/// <summary>The first line of a run log: when and by what the run was recorded, and the user's own metadata.</summary>
/// <param name="StartTime">When the writer created the log (UTC).</param>
/// <param name="GradFlowVersion">The GradFlow assembly's informational version.</param>
/// <param name="Metadata">Free-form JSON the user attached (hyperparameters, model name, seed, ...); empty if none.</param>
public sealed record RunLogHeader(DateTimeOffset StartTime, string GradFlowVersion, JsonObject Metadata);

/// <summary>One step line of a run log: the monitor's record and when it was written.</summary>
/// <param name="Time">When the writer wrote the line (UTC).</param>
/// <param name="Record">The step as the monitor recorded it.</param>
public sealed record RunLogEntry(DateTimeOffset Time, StepRecord Record);

/// <summary>Something the reader skipped: the line and why.</summary>
/// <param name="Line">1-based line number.</param>
/// <param name="Message">What was wrong with it.</param>
public sealed record RunLogWarning(long Line, string Message)
{
    /// <inheritdoc/>
    public override string ToString() => $"line {Line}: {Message}";
}

/// <summary>How hard the writer pushes each line towards the disk.</summary>
public enum RunLogDurability
{
    /// <summary>Each line is handed to the operating system in one write: it survives the process crashing, not the machine losing power.</summary>
    Process,
    /// <summary>Each line is also flushed to the storage device (fsync): it survives power loss, at the cost of a disk round trip per step.</summary>
    FlushToDisk,
    /// <summary>The file is opened write-through (FileOptions.WriteThrough), so each write returns once the device has it.</summary>
    WriteThrough,
}

/// <summary>Options of <see cref="RunLogWriter"/>.</summary>
public sealed record RunLogWriterOptions
{
    /// <summary>How each line is made durable (default: <see cref="RunLogDurability.Process"/>).</summary>
    public RunLogDurability Durability { get; init; } = RunLogDurability.Process;

    /// <summary>Free-form metadata for the header line of a new log (ignored when appending to an existing log).</summary>
    public JsonObject? Metadata { get; init; }

    /// <summary>The longest line the writer will write (and any reader accepts by default): 64 MiB.</summary>
    public int MaxLineBytes { get; init; } = RunLog.DefaultMaxLineBytes;
}

/// <summary>Options of <see cref="RunLogReader"/>.</summary>
public sealed record RunLogReaderOptions
{
    /// <summary>Lines longer than this are rejected before they are buffered, so a hostile file cannot exhaust memory (default 64 MiB).</summary>
    public int MaxLineBytes { get; init; } = RunLog.DefaultMaxLineBytes;

    /// <summary>Called with each warning as it arises (they are also collected in <see cref="RunLogReader.Warnings"/>).</summary>
    public Action<RunLogWarning>? OnWarning { get; init; }
}
