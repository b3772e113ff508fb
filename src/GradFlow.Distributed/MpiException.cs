namespace GradFlow.Distributed;

/// <summary>An MPI call returned an error, or ranks disagree about what a collective needs (a model's shapes).</summary>
public sealed class MpiException : Exception
{
    /// <summary>Creates the exception with its message.</summary>
    public MpiException(string message) : base(message) { }

    /// <summary>Creates the exception with its message and cause.</summary>
    public MpiException(string message, Exception inner) : base(message, inner) { }
}
