
namespace GradFlow.Reporting;

/// <summary>Unsubscribes a sink from a monitor's steps, then disposes the sink.</summary>
internal sealed class MonitorAttachment(Action detach, IDisposable sink) : IDisposable
{
    private int _disposed;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        detach();
        sink.Dispose();
    }
}
