using System.Globalization;

namespace GradFlow.NN;

/// <summary>
/// Batch normalisation (Ioffe and Szegedy 2015) with PyTorch's parameters "weight" (ones) and "bias" (zeros)
/// and buffers "running_mean", "running_var", "num_batches_tracked". Training normalises with batch statistics
/// and updates the running ones; eval mode uses the running ones. A null momentum gives the cumulative average.
/// </summary>
public abstract class BatchNormBase : Module
{
    /// <summary>Creates the layer for <paramref name="numFeatures"/> channels.</summary>
    protected BatchNormBase(int numFeatures, double eps, double? momentum, bool affine, bool trackRunningStats, DType dtype)
    {
        if (numFeatures <= 0) Guard.ThrowArg(GetType().Name, nameof(numFeatures), $"must be positive, got {numFeatures}.");
        (NumFeatures, Eps, Momentum) = (numFeatures, eps, momentum);
        if (affine)
        {
            Weight = RegisterParameter("weight", Tensor.Ones([numFeatures], dtype));
            Bias = RegisterParameter("bias", Tensor.Zeros([numFeatures], dtype));
        }
        if (trackRunningStats)
        {
            RunningMean = RegisterBuffer("running_mean", Tensor.Zeros([numFeatures], dtype));
            RunningVar = RegisterBuffer("running_var", Tensor.Ones([numFeatures], dtype));
            NumBatchesTracked = RegisterBuffer("num_batches_tracked", Tensor.Zeros([], DType.Int64));
        }
    }

    /// <summary>The number of channels.</summary>
    public int NumFeatures { get; }

    /// <summary>Added to the variance for stability.</summary>
    public double Eps { get; }

    /// <summary>The weight of the new batch in the running statistics; null for a cumulative average.</summary>
    public double? Momentum { get; }

    /// <summary>The scale per channel, or null without affine.</summary>
    public Tensor? Weight { get; }

    /// <summary>The shift per channel, or null without affine.</summary>
    public Tensor? Bias { get; }

    /// <summary>The running mean, or null when not tracked.</summary>
    public Tensor? RunningMean { get; }

    /// <summary>The running (unbiased) variance, or null when not tracked.</summary>
    public Tensor? RunningVar { get; }

    /// <summary>The number of training batches seen (int64 scalar), or null when not tracked.</summary>
    public Tensor? NumBatchesTracked { get; }

    /// <summary>The accepted input ranks, for the shape message.</summary>
    protected abstract string ExpectedShape { get; }

    /// <summary>True when the rank is one this layer accepts.</summary>
    protected abstract bool RankOk(int rank);

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        CheckInput(input, ExpectedShape, RankOk(input.Rank) && input.Size(1) == NumFeatures);
        bool useBatchStats = Training || RunningMean is null;
        double momentum = Momentum ?? 0;
        if (Training && NumBatchesTracked is not null)
        {
            using (Autograd.NoGrad()) NumBatchesTracked.AddInPlace(1.0);
            if (Momentum is null) momentum = 1.0 / NumBatchesTracked.Item();
        }
        return Functional.BatchNorm(input, RunningMean, RunningVar, Weight, Bias,
            useBatchStats, momentum, Eps);
    }

    /// <inheritdoc />
    protected override string ExtraRepr() => string.Create(CultureInfo.InvariantCulture,
        $"{NumFeatures}, eps={Eps}, momentum={(Momentum is { } m ? m.ToString(CultureInfo.InvariantCulture) : "None")}, affine={Py(Weight is not null)}, track_running_stats={Py(RunningMean is not null)}");
}

/// <summary>Batch normalisation of (N, C) or (N, C, L) inputs (torch.nn.BatchNorm1d).</summary>
public sealed class BatchNorm1d(int numFeatures, double eps = 1e-5, double? momentum = 0.1, bool affine = true, bool trackRunningStats = true,
    DType dtype = DType.Float32) : BatchNormBase(numFeatures, eps, momentum, affine, trackRunningStats, dtype)
{
    /// <inheritdoc />
    protected override string ExpectedShape => $"[N, {NumFeatures}] or [N, {NumFeatures}, L]";

    /// <inheritdoc />
    protected override bool RankOk(int rank) => rank is 2 or 3;
}

/// <summary>Batch normalisation of (N, C, H, W) inputs (torch.nn.BatchNorm2d).</summary>
public sealed class BatchNorm2d(int numFeatures, double eps = 1e-5, double? momentum = 0.1, bool affine = true, bool trackRunningStats = true,
    DType dtype = DType.Float32) : BatchNormBase(numFeatures, eps, momentum, affine, trackRunningStats, dtype)
{
    /// <inheritdoc />
    protected override string ExpectedShape => $"[N, {NumFeatures}, H, W]";

    /// <inheritdoc />
    protected override bool RankOk(int rank) => rank == 4;
}
