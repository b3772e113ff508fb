namespace GradFlow.Optim;

/// <summary>Multiplies each group's rate by <c>gamma</c> every <c>stepSize</c> epochs (torch.optim.lr_scheduler.StepLR).</summary>
public sealed class StepLR : LRScheduler
{
    private readonly int _stepSize;
    private readonly double _gamma;

    /// <summary>Decays by <paramref name="gamma"/> every <paramref name="stepSize"/> epochs.</summary>
    public StepLR(Optimizer optimizer, int stepSize, double gamma = 0.1, int lastEpoch = -1) : base(optimizer, lastEpoch)
    {
        if (stepSize <= 0) Guard.ThrowArg(nameof(StepLR), nameof(stepSize), $"step size must be positive, got {stepSize}.");
        _stepSize = stepSize;
        _gamma = gamma;
        InitialStep();
    }

    /// <inheritdoc />
    protected override double[] GetLr()
    {
        var lrs = GroupLrs();
        if (LastEpoch == 0 || LastEpoch % _stepSize != 0) return lrs;
        for (int i = 0; i < lrs.Length; i++) lrs[i] *= _gamma;
        return lrs;
    }

    /// <inheritdoc />
    protected override double[]? ClosedFormLr() =>
        BaseLrs.Select(b => b * Math.Pow(_gamma, Math.Floor((double)LastEpoch / _stepSize))).ToArray();
}

/// <summary>Multiplies each group's rate by <c>gamma</c> at each milestone epoch (torch.optim.lr_scheduler.MultiStepLR).</summary>
public sealed class MultiStepLR : LRScheduler
{
    private readonly int[] _milestones;
    private readonly double _gamma;

    /// <summary>Decays by <paramref name="gamma"/> at each of <paramref name="milestones"/> (a repeated milestone decays once per repetition).</summary>
    public MultiStepLR(Optimizer optimizer, IEnumerable<int> milestones, double gamma = 0.1, int lastEpoch = -1) : base(optimizer, lastEpoch)
    {
        Guard.NotNull(milestones, "MultiStepLR", nameof(milestones));
        _milestones = milestones.Order().ToArray();
        _gamma = gamma;
        InitialStep();
    }

    /// <inheritdoc />
    protected override double[] GetLr()
    {
        var lrs = GroupLrs();
        int count = _milestones.Count(m => m == LastEpoch);
        if (count == 0) return lrs;
        for (int i = 0; i < lrs.Length; i++) lrs[i] *= Math.Pow(_gamma, count);
        return lrs;
    }

    /// <inheritdoc />
    protected override double[]? ClosedFormLr()
    {
        int passed = _milestones.Count(m => m <= LastEpoch); // bisect_right
        return BaseLrs.Select(b => b * Math.Pow(_gamma, passed)).ToArray();
    }
}

/// <summary>Multiplies each group's rate by <c>gamma</c> every epoch (torch.optim.lr_scheduler.ExponentialLR).</summary>
public sealed class ExponentialLR : LRScheduler
{
    private readonly double _gamma;

    /// <summary>Decays by <paramref name="gamma"/> per epoch.</summary>
    public ExponentialLR(Optimizer optimizer, double gamma, int lastEpoch = -1) : base(optimizer, lastEpoch)
    {
        _gamma = gamma;
        InitialStep();
    }

    /// <inheritdoc />
    protected override double[] GetLr()
    {
        var lrs = GroupLrs();
        if (LastEpoch == 0) return lrs;
        for (int i = 0; i < lrs.Length; i++) lrs[i] *= _gamma;
        return lrs;
    }

    /// <inheritdoc />
    protected override double[]? ClosedFormLr() => BaseLrs.Select(b => b * Math.Pow(_gamma, LastEpoch)).ToArray();
}

/// <summary>
/// Scales each group's rate by a factor going linearly from <c>startFactor</c> to <c>endFactor</c> over
/// <c>totalIters</c> epochs, then holds it (torch.optim.lr_scheduler.LinearLR; a common warm-up).
/// </summary>
public sealed class LinearLR : LRScheduler
{
    private readonly double _start, _end;
    private readonly int _total;

    /// <summary>A linear ramp of the multiplicative factor.</summary>
    public LinearLR(Optimizer optimizer, double startFactor = 1.0 / 3, double endFactor = 1.0, int totalIters = 5, int lastEpoch = -1)
        : base(optimizer, lastEpoch)
    {
        if (!(startFactor > 0 && startFactor <= 1)) Guard.ThrowArg(nameof(LinearLR), nameof(startFactor), $"start factor must be in (0, 1], got {startFactor}.");
        if (!(endFactor >= 0 && endFactor <= 1)) Guard.ThrowArg(nameof(LinearLR), nameof(endFactor), $"end factor must be in [0, 1], got {endFactor}.");
        if (totalIters <= 0) Guard.ThrowArg(nameof(LinearLR), nameof(totalIters), $"total iterations must be positive, got {totalIters}.");
        (_start, _end, _total) = (startFactor, endFactor, totalIters);
        InitialStep();
    }

    /// <inheritdoc />
    protected override double[] GetLr()
    {
        var lrs = GroupLrs();
        if (LastEpoch == 0) return lrs.Select(lr => lr * _start).ToArray();
        if (LastEpoch > _total) return lrs;
        // Ratio of consecutive factors: (s + (e−s)·t/T) / (s + (e−s)·(t−1)/T).
        double ratio = 1.0 + (_end - _start) / (_total * _start + (LastEpoch - 1) * (_end - _start));
        return lrs.Select(lr => lr * ratio).ToArray();
    }

    /// <inheritdoc />
    protected override double[]? ClosedFormLr() =>
        BaseLrs.Select(b => b * (_start + (_end - _start) * Math.Min(_total, LastEpoch) / _total)).ToArray();
}
