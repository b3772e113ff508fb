namespace GradFlow.Data;

/// <summary>
/// Examples as rows of two tensors: input i is <c>Inputs[i]</c>, target i is <c>Targets[i]</c>
/// (torch.utils.data.TensorDataset with two tensors). Batches are gathered with one IndexSelect each.
/// </summary>
public sealed class TensorDataset : Dataset
{
    /// <summary>Pairs the rows of <paramref name="inputs"/> with those of <paramref name="targets"/>.</summary>
    public TensorDataset(Tensor inputs, Tensor targets)
    {
        Guard.NotNull(inputs, "TensorDataset", nameof(inputs));
        Guard.NotNull(targets, "TensorDataset", nameof(targets));
        if (inputs.Rank == 0 || targets.Rank == 0 || inputs.Size(0) != targets.Size(0))
            Guard.Throw(nameof(TensorDataset), $"inputs {Guard.Shape(inputs)} and targets {Guard.Shape(targets)} must have the same first dimension.");
        Inputs = inputs;
        Targets = targets;
    }

    /// <summary>All inputs, examples along dim 0.</summary>
    public Tensor Inputs { get; }

    /// <summary>All targets, examples along dim 0.</summary>
    public Tensor Targets { get; }

    /// <inheritdoc />
    public override int Count => Inputs.Size(0);

    /// <inheritdoc />
    public override (Tensor Input, Tensor Target) Get(int index)
    {
        CheckIndex(index);
        return (Inputs.Select(0, index), Targets.Select(0, index));
    }

    /// <inheritdoc />
    public override (Tensor Input, Tensor Target) GetBatch(ReadOnlySpan<int> indices)
    {
        var idx = new long[indices.Length];
        for (int i = 0; i < indices.Length; i++)
        {
            CheckIndex(indices[i]);
            idx[i] = indices[i];
        }
        var t = Tensor.FromArray(idx);
        return (Inputs.IndexSelect(0, t), Targets.IndexSelect(0, t));
    }
}
