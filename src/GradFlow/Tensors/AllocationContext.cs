namespace GradFlow;

/// <summary>
/// What this thread is doing, as far as allocation cares: recording a graph, or computing gradients in a
/// backward. Autograd writes it (grad mode, the engine's backward depth); <see cref="Storage"/> and
/// <see cref="TensorArena"/> read it, so the tensor layer never asks the autograd layer above it.
/// </summary>
internal static class AllocationContext
{
    /// <summary>Inside NoGrad: ops record no graph. Owned by <see cref="Autograd.IsGradEnabled"/>.</summary>
    [ThreadStatic] internal static bool t_gradDisabled;

    /// <summary>How many node backwards are running on this thread. Owned by the engine.</summary>
    [ThreadStatic] internal static int t_backwardDepth;

    /// <summary>Memory that belongs to a training step: a recorded forward's activations or a backward's gradients.</summary>
    internal static bool StepScoped => !t_gradDisabled || t_backwardDepth > 0;

    /// <summary>A gradient a node's backward allocates outside any recorded graph: no user code holds it yet.</summary>
    internal static bool FreshGradient => t_backwardDepth > 0 && t_gradDisabled;
}
