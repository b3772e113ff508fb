namespace GradFlow.Diagnostics;

/// <summary>
/// Whether a vanishing gradient (across depth or through time) was made by training's own steps: the gradient passed at
/// the first measured step and the condition began (its first step after a whole window without it, so an early transient
/// does not fix the verdict for the run) when the weights had moved by more than 1e-2 of their size
/// (<see cref="LearningRateTooHigh.RatioThreshold"/>) on most steps so far. Vanishing is a property of the architecture and
/// its initialisation (Glorot &amp; Bengio 2010); a blow-up that inflates LayerNorm's input scale, saturates attention or
/// kills ReLUs on the way is the rate's finding. After a resume the first measured step is the first recorded one: the
/// verdict is then about the steps since, which is all it needs (a gradient that passed then and was lost after large
/// steps was lost to them, whatever came before).
/// </summary>
internal sealed class StepCaused
{
    private bool _started, _healthyAtStart;
    private double _onsetShare = double.NaN; // RunHistory.LargeUpdateShare when the condition began

    /// <summary>The first call sets whether the gradient passed at the first measured step; later calls are ignored.</summary>
    public void Start(bool healthy)
    {
        if (!_started) (_started, _healthyAtStart) = (true, healthy);
    }

    /// <summary>Follows the condition: <paramref name="now"/> on this step, <paramref name="windowShare"/> its share of the window.</summary>
    public void Track(bool now, double windowShare, RunHistory run)
    {
        if (windowShare == 0) _onsetShare = double.NaN; // absent for a whole window: a later condition has its own onset
        else if (now && double.IsNaN(_onsetShare)) _onsetShare = run.LargeUpdateShare;
    }

    /// <summary>True when the steps made the condition, so the detector stands aside.</summary>
    public bool ByTheSteps => _healthyAtStart && _onsetShare > 0.5;
}
