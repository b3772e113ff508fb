namespace GradFlow;

/// <summary>Restores the previous grad mode when disposed (see <see cref="Autograd.NoGrad"/>).</summary>
public readonly struct GradModeScope : IDisposable
{
    private readonly bool _previous;

    internal GradModeScope(bool enabled)
    {
        _previous = Autograd.IsGradEnabled;
        Autograd.IsGradEnabled = enabled;
    }

    /// <summary>Restores the mode that was in force before this scope.</summary>
    public void Dispose() => Autograd.IsGradEnabled = _previous;
}

/// <summary>Restores the previous named scope when disposed (see <see cref="Autograd.Scope"/>).</summary>
public readonly struct NamedScope : IDisposable
{
    private readonly string? _previous;

    internal NamedScope(string? name)
    {
        _previous = Autograd.t_scope;
        Autograd.t_scope = name;
    }

    /// <summary>Restores the outer scope.</summary>
    public void Dispose() => Autograd.t_scope = _previous;
}
