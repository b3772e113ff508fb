namespace GradFlow;

/// <summary>
/// Sees every op as it runs and every gradient as backward produces it. The gradient-flow monitor
/// and the anomaly mode attach here; the engine itself knows nothing of them. Observers run on the
/// thread that runs the op, so they must be cheap when they have nothing to do.
/// </summary>
public interface IAutogradObserver
{
    /// <summary>
    /// An op produced <paramref name="output"/> from <paramref name="inputs"/>. <paramref name="node"/>
    /// is the recorded backward node, or null when no gradient is needed (no input requires grad, or NoGrad).
    /// </summary>
    void OnForward(string op, ReadOnlySpan<Tensor> inputs, Tensor output, Node? node);

    /// <summary>
    /// Backward ran <paramref name="node"/>: <paramref name="gradOutputs"/> are the gradients with respect to
    /// its outputs (null where none arrived), <paramref name="gradInputs"/> those it produced for its inputs.
    /// </summary>
    void OnBackward(Node node, ReadOnlySpan<Tensor?> gradOutputs, ReadOnlySpan<Tensor?> gradInputs);

    /// <summary>A backward pass starts from <paramref name="roots"/> (for a training step, the loss).</summary>
    void OnBackwardBegin(ReadOnlySpan<Tensor> roots) { }
}
