namespace GradFlow.Reporting;

/// <summary>
/// The one failure a logging sink reports. A run log or event file that cannot be written (disk full, file
/// removed, permissions changed) must not end the training it observes: the first IO error is reported once,
/// as one line on stderr and through the sink's Failed event, and the sink writes nothing more.
/// </summary>
internal sealed class SinkFailure(string sink, string file)
{
    private int _reported;

    /// <summary>The error that stopped the sink, or null while it works.</summary>
    public Exception? Error { get; private set; }

    /// <summary>True for the errors a sink absorbs: the file system refused a write.</summary>
    public static bool IsWriteFailure(Exception e) => e is IOException or UnauthorizedAccessException;

    /// <summary>Records the first failure and tells stderr and <paramref name="failed"/>; later ones are ignored.</summary>
    public void Report(Exception error, Action<Exception>? failed)
    {
        if (Interlocked.Exchange(ref _reported, 1) != 0) return;
        Error = error;
        Console.Error.WriteLine($"GradFlow: the {sink} '{file}' stopped after a failed write ({error.Message}); training goes on without it.");
        failed?.Invoke(error);
    }
}
