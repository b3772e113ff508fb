namespace GradFlow.Distributed;

/// <summary>An MPI call returned an error, or ranks disagree about what a collective needs (a model's shapes).</summary>
public sealed class MpiException : Exception
{
    /// <summary>Creates the exception with its message.</summary>
    public MpiException(string message) : base(message) { }

    /// <summary>Creates the exception; <paramref name="allRanks"/> when every rank throws this same error at the same point.</summary>
    public MpiException(string message, bool allRanks) : base(message) => AllRanks = allRanks;

    /// <summary>
    /// True when every rank throws this same error at the same point (a collective check found it, and every rank saw
    /// the same data): no rank is left waiting, so the job can end normally instead of through MPI_Abort.
    /// </summary>
    public bool AllRanks { get; }

    /// <summary>Creates the exception with its message and cause.</summary>
    public MpiException(string message, Exception inner) : base(message, inner) { }
}
