namespace GradFlow.Diagnostics;

/// <summary>
/// One collector's arm on the kernels' measures (<see cref="Instrumentation"/>): armed while watching, on the thread
/// that armed it. A monitor disposed on another thread leaves the arm, and the kernels then measure for nobody.
/// </summary>
internal sealed class KernelArm(Action arm, Action disarm)
{
    private int _thread; // the managed thread on which it is armed; 0: not armed

    public void Sync(bool watching)
    {
        if (watching == (_thread != 0)) return;
        if (_thread == Environment.CurrentManagedThreadId) disarm();
        if (watching) arm();
        _thread = watching ? Environment.CurrentManagedThreadId : 0;
    }
}
