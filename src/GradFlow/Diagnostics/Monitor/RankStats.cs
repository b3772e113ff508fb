namespace GradFlow.Diagnostics;

/// <summary>One rank's gradients in a data-parallel step, as its backward produced them (before the allreduce averaged them).</summary>
/// <param name="Rank">The process's rank.</param>
/// <param name="GradNorm">L2 norm of all its gradients together (non-finite values left out of the sum, as in <see cref="TensorStats"/>).</param>
/// <param name="NonFinite">How many of its gradient values were NaN or Inf.</param>
/// <param name="ParameterNorms">Each parameter's gradient L2 norm, in the order of <see cref="DistributedGradientStats.Parameters"/>.</param>
/// <param name="ParameterNonFinite">Each parameter's count of NaN/Inf gradient values, in the same order.</param>
public sealed record RankGradientStats(int Rank, double GradNorm, long NonFinite, IReadOnlyList<double> ParameterNorms, IReadOnlyList<long> ParameterNonFinite);

/// <summary>Where non-finite gradients first appeared in a data-parallel run.</summary>
/// <param name="Step">The synchronised step (1 for the first) at which a rank first produced a NaN or Inf gradient.</param>
/// <param name="Rank">The lowest rank that produced one at that step (<see cref="Ranks"/> lists all).</param>
/// <param name="Parameter">The first parameter in backward order with a non-finite gradient on that rank.</param>
/// <param name="Ranks">Every rank with a non-finite gradient at that step.</param>
public sealed record NonFiniteOrigin(long Step, int Rank, string Parameter, IReadOnlyList<int> Ranks);

/// <summary>
/// Gradient flow across the ranks of one data-parallel step: each rank's gradients before the allreduce, the averaged
/// (global) gradient's norm after it, the ranks whose gradient norm strays from the others', and where non-finite
/// gradients first appeared in the run. Every rank computes the same record; rank 0's run log keeps it.
/// </summary>
/// <param name="WorldSize">How many ranks took part.</param>
/// <param name="GlobalGradNorm">L2 norm of the averaged gradient every rank applies.</param>
/// <param name="Parameters">The parameters' names, in the order of each rank's figures.</param>
/// <param name="Ranks">Each rank's figures, by rank.</param>
/// <param name="DivergentRanks">Ranks whose gradient norm is more than <paramref name="DivergenceFactor"/> times above or below the median of all ranks' (with two ranks, the other's; both are then named).</param>
/// <param name="DivergenceFactor">The factor <paramref name="DivergentRanks"/> were judged by.</param>
/// <param name="FirstNonFinite">The run's first non-finite gradient (this step's or an earlier one), or null while all were finite.</param>
public sealed record DistributedGradientStats(int WorldSize, double GlobalGradNorm, IReadOnlyList<string> Parameters, IReadOnlyList<RankGradientStats> Ranks,
    IReadOnlyList<int> DivergentRanks, double DivergenceFactor, NonFiniteOrigin? FirstNonFinite);
