namespace GradFlow.Optim;

/// <summary>
/// Sets each group's rate to its initial rate times a function of the epoch (torch.optim.lr_scheduler.LambdaLR).
/// The function is code, not state: a checkpoint restores the epoch and the same function is given again.
/// </summary>
public sealed class LambdaLR : LRScheduler
{
    private readonly Func<int, double>[] _lambdas;

    /// <summary>One factor function for every group.</summary>
    public LambdaLR(Optimizer optimizer, Func<int, double> lrLambda, int lastEpoch = -1)
        : this(optimizer, Enumerable.Repeat(Guard.NotNull(lrLambda, "LambdaLR", nameof(lrLambda)), optimizer?.ParamGroups.Count ?? 0), lastEpoch) { }

    /// <summary>A factor function per group.</summary>
    public LambdaLR(Optimizer optimizer, IEnumerable<Func<int, double>> lrLambdas, int lastEpoch = -1) : base(optimizer, lastEpoch)
    {
        Guard.NotNull(lrLambdas, "LambdaLR", nameof(lrLambdas));
        _lambdas = lrLambdas.ToArray();
        if (_lambdas.Length != optimizer.ParamGroups.Count)
            Guard.ThrowArg(nameof(LambdaLR), nameof(lrLambdas), $"expected {optimizer.ParamGroups.Count} functions (one per group), got {_lambdas.Length}.");
        InitialStep();
    }

    /// <inheritdoc />
    protected override double[] GetLr() => BaseLrs.Select((b, i) => b * _lambdas[i](LastEpoch)).ToArray();
}
