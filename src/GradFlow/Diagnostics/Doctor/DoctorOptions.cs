namespace GradFlow.Diagnostics;

/// <summary>How the <see cref="Doctor"/> judges a run. The defaults are documented, with their sources, in docs/DOCTOR.md.</summary>
public sealed record DoctorOptions
{
    /// <summary>
    /// Recorded steps in a window: the gradient rules wait this long before judging (AUTOTRAINER waits for 30% of
    /// training; online the length is unknown, so a window), and a condition must hold over most of one.
    /// </summary>
    public int Window { get; init; } = 20;

    /// <summary>Share of the window's steps on which a persistent condition must hold.</summary>
    public double Persistence { get; init; } = 0.8;

    /// <summary>The number of classes, when the loss is a classification loss: the chance level is then ln(classes).</summary>
    public int? Classes { get; init; }

    /// <summary>Online: a finding that keeps holding for this many windows after it was raised is raised again one severity up.</summary>
    public int EscalateAfterWindows { get; init; } = 3;

    internal void Validate()
    {
        if (Window < 4) throw new ArgumentException($"{nameof(DoctorOptions)}: Window must be at least 4, got {Window}.", nameof(Window));
        if (!(Persistence > 0 && Persistence <= 1))
            throw new ArgumentException($"{nameof(DoctorOptions)}: Persistence must be in (0, 1], got {Persistence}.", nameof(Persistence));
        if (Classes is < 2) throw new ArgumentException($"{nameof(DoctorOptions)}: Classes must be at least 2, got {Classes}.", nameof(Classes));
        if (EscalateAfterWindows < 1)
            throw new ArgumentException($"{nameof(DoctorOptions)}: EscalateAfterWindows must be at least 1, got {EscalateAfterWindows}.", nameof(EscalateAfterWindows));
    }
}

/// <summary>Curvature measured by a probe (the curvature instruments), optional input to the doctor.</summary>
/// <param name="Step">The step it was measured at.</param>
/// <param name="LambdaMax">The largest Hessian eigenvalue (sharpness).</param>
/// <param name="LambdaMin">The smallest, when measured (negative at a saddle).</param>
public sealed record CurvatureSample(long Step, double LambdaMax, double? LambdaMin);
