namespace GradFlow.Optim;

/// <summary>
/// Sees every parameter update an optimiser applies, measured during the update pass itself: the
/// gradient-flow monitor reads update norms and update-to-weight ratios here with no extra pass over
/// the weights. Attach with <see cref="Optimizer.AddObserver"/>; the optimiser does not know who listens.
/// </summary>
public interface IOptimizerObserver
{
    /// <summary>One parameter was updated; <paramref name="update"/> is valid only during the call.</summary>
    void OnParameterUpdated(in ParameterUpdate update);

    /// <summary>A whole <see cref="Optimizer.Step"/> finished (after every parameter's update).</summary>
    void OnStepCompleted(Optimizer optimizer) { }
}

/// <summary>What one parameter's update did, as seen by an <see cref="IOptimizerObserver"/>.</summary>
public readonly struct ParameterUpdate
{
    /// <summary>The optimiser that applied the update.</summary>
    public required Optimizer Optimizer { get; init; }

    /// <summary>Index of the parameter's group in <see cref="Optimizer.ParamGroups"/>.</summary>
    public required int GroupIndex { get; init; }

    /// <summary>Index of the parameter across all groups (the key of the optimiser's state dict).</summary>
    public required int ParamIndex { get; init; }

    /// <summary>The parameter, already updated.</summary>
    public required Tensor Param { get; init; }

    /// <summary>The gradient the update used (before weight decay or sign flips).</summary>
    public required Tensor Grad { get; init; }

    /// <summary>The group's learning rate for this step.</summary>
    public required double Lr { get; init; }

    /// <summary>This parameter's step count, 1 on its first update.</summary>
    public required long Step { get; init; }

    /// <summary>Stats of the applied update.</summary>
    public required UpdateStats Stats { get; init; }
}

/// <summary>
/// Sums taken while the update ran: squares of the applied change (new − old, so weight decay and
/// rounding included) and of the parameter after it, and the gradient's statistics, so a monitor
/// needs no pass of its own over weights or gradients.
/// </summary>
public readonly record struct UpdateStats(double UpdateSumSq, double ParamSumSq)
{
    /// <summary>Sum of squares of the gradient's finite values, taken in the same pass.</summary>
    public double GradSumSq { get; init; }

    /// <summary>Sum of |g| over the gradient's finite values.</summary>
    public double GradSumAbs { get; init; }

    /// <summary>Largest finite |g|.</summary>
    public double GradMaxAbs { get; init; }

    /// <summary>Exact zeros in the gradient.</summary>
    public long GradZeros { get; init; }

    /// <summary>NaN values in the gradient.</summary>
    public long GradNaNs { get; init; }

    /// <summary>Infinite values in the gradient.</summary>
    public long GradInfs { get; init; }

    internal static UpdateStats From(in Kernels.Optim.UpdateSums s) => new(s.UpdateSumSq, s.ParamSumSq)
    {
        GradSumSq = s.GradSumSq, GradSumAbs = s.GradSumAbs, GradMaxAbs = s.GradMaxAbs,
        GradZeros = s.GradZeros, GradNaNs = s.GradNaNs, GradInfs = s.GradInfs,
    };

    /// <summary>‖Δp‖₂.</summary>
    public double UpdateNorm => Math.Sqrt(UpdateSumSq);

    /// <summary>‖p‖₂ after the update.</summary>
    public double ParamNorm => Math.Sqrt(ParamSumSq);

    /// <summary>‖Δp‖ / ‖p‖ (the update-to-weight ratio; about 1e-3 is the usual healthy range), infinite for a zero parameter with a non-zero update.</summary>
    public double UpdateToWeightRatio => ParamSumSq > 0 ? UpdateNorm / ParamNorm : UpdateSumSq > 0 ? double.PositiveInfinity : 0;
}
