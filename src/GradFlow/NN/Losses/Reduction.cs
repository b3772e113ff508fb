namespace GradFlow.NN;

/// <summary>How a loss combines its per-element values.</summary>
public enum Reduction
{
    /// <summary>No reduction: one loss per element (or per sample).</summary>
    None,
    /// <summary>The (weighted) mean.</summary>
    Mean,
    /// <summary>The sum.</summary>
    Sum,
    /// <summary>The sum divided by the batch size; KL divergence only (its mathematically correct mean).</summary>
    BatchMean,
}
