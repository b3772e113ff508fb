using GradFlow.Diagnostics;

namespace GradFlow.Reporting.Html;

/// <summary>One training run for the report: a name, its recorded steps in order, and optional metadata to show.</summary>
/// <param name="Name">The run's name in the report (the demo variant, the run-log file's name).</param>
/// <param name="Steps">The monitor's records, in step order.</param>
/// <param name="Metadata">Key/value pairs shown under the run's heading (hyper-parameters, model, seed).</param>
public sealed record ReportRun(string Name, IReadOnlyList<StepRecord> Steps, IReadOnlyDictionary<string, string>? Metadata = null)
{
    /// <summary>The doctor's findings for this run, shown with their evidence and fixes and linked to their charts; null: none given.</summary>
    public IReadOnlyList<Finding>? Findings { get; init; }

    /// <summary>The Hessian's spectral density (stochastic Lanczos quadrature, <see cref="Spectrum.Density"/>), charted when given.</summary>
    public SpectralDensity? Density { get; init; }

    /// <summary>Loss along directions through the weights (<see cref="LossLandscape.Slice"/>, by a name such as "random direction 1"), charted when given.</summary>
    public IReadOnlyDictionary<string, LossSlice>? Landscape { get; init; }

    /// <summary>The same run with the doctor's offline diagnosis of its steps attached.</summary>
    public ReportRun Diagnosed(DoctorOptions? options = null) => this with { Findings = Doctor.Diagnose(Steps, options) };

    /// <summary>
    /// Reads a run log (a torn last line is skipped, as the reader does); the run is named after the file, and the
    /// header's metadata is shown with the report. The doctor's offline findings come with it. Damaged logs throw <see cref="InvalidDataException"/> naming the file.
    /// </summary>
    public static ReportRun FromRunLog(string path, string? name = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var reader = RunLog.Open(path);
        var steps = reader.ReadRecords().ToList();
        var meta = new Dictionary<string, string>();
        foreach (var (key, value) in reader.Header.Metadata) meta[key] = value?.ToJsonString() ?? "null";
        meta["gradflow"] = reader.Header.GradFlowVersion;
        return new ReportRun(name ?? Path.GetFileNameWithoutExtension(path), steps, meta).Diagnosed();
    }
}
