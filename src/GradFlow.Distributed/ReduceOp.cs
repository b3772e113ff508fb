namespace GradFlow.Distributed;

/// <summary>How an allreduce combines the ranks' values, element by element.</summary>
public enum ReduceOp
{
    /// <summary>MPI_SUM.</summary>
    Sum,
    /// <summary>MPI_MAX.</summary>
    Max,
    /// <summary>MPI_MIN.</summary>
    Min,
}
