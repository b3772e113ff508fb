namespace GradFlow.Diagnostics;

/// <summary>
/// Runs a <see cref="SharpnessProbe"/> at the end of the monitor's steps it is due at and writes the result into the
/// step's record. The probe runs with the monitor out of the engine: its extra forward and backward passes are not
/// the training step's, so they must not reach the loss, flow or activation figures.
/// </summary>
internal sealed class CurvatureCollector(MonitorContext context, SharpnessProbe probe, GradientMonitor monitor) : IMonitorCollector
{
    public MonitorEvents Events => MonitorEvents.None;

    public void Complete(StepRecordBuilder record)
    {
        long step = context.Step;
        if (probe.IsDue(step)) record.Curvature = monitor.Unobserved(() => probe.Run(step));
    }
}
