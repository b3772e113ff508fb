namespace GradFlow;

/// <summary>
/// The one surface between the autograd engine (with the op kernels under it) and whoever watches it: the gradient
/// monitor, anomaly mode, later the doctor's probes. The engine and the ops report here and answer questions here;
/// they never name a listener, and they hold none of a listener's policy.
/// <list type="bullet">
/// <item><b>Events.</b> Observers (<see cref="IAutogradObserver"/>) registered with <see cref="AddObserver"/> (the
/// public front door is <see cref="Autograd.AddObserver"/>) are told of every op as it is recorded
/// (<see cref="Forward"/>), of every backward as it starts (<see cref="BackwardBegin"/>) and of every node's
/// gradients (<see cref="Backward"/>).</item>
/// <item><b>Questions about the running backward.</b> <see cref="BackwardRunning"/>, <see cref="ReachesUnchanged"/>
/// and <see cref="WillMeasureFlow"/>, for an observer deciding in OnBackward whether to measure a gradient now or
/// wait for a kernel that will read it anyway.</item>
/// <item><b>Measurements in the kernels' own passes</b> (Instrumentation.Measures.cs). A listener arms them and says
/// what it wants: <see cref="ArmActivations"/> takes its <see cref="IActivationPolicy"/>, which names the ops to
/// measure, the saturation band and the unit layout; <see cref="ArmFlow"/> asks activation backwards
/// (<see cref="IMeasuresFlow"/> nodes) for the squared norms of the gradients they read and write. The kernels
/// measure exactly what they are asked, leave the figures keyed by the tensor they were taken on, and the listener
/// takes them (<see cref="TakeActivation"/>, <see cref="TakeFlow"/>) in its OnForward / OnBackward of that op.</item>
/// </list>
/// Everything here is per thread (except observers added for all threads): a training loop arms and observes its
/// own thread, so another thread's autograd work neither pays for nor leaks into its figures.
/// </summary>
internal static partial class Instrumentation
{
    private static readonly Lock s_lock = new();
    private static IAutogradObserver[] s_global = [];
    [ThreadStatic] private static IAutogradObserver[]? t_local;
    [ThreadStatic] private static IAutogradObserver[]? t_all;
    [ThreadStatic] private static IAutogradObserver[]? t_seenGlobal;

    /// <summary>
    /// Adds an observer of every op and gradient on the calling thread, or on every thread with
    /// <paramref name="allThreads"/>; dispose the result to remove it (a thread-local one on the same thread).
    /// </summary>
    public static IDisposable AddObserver(IAutogradObserver observer, bool allThreads)
    {
        if (allThreads)
        {
            lock (s_lock) s_global = [.. s_global, observer];
            return Autograd.Handle(() => { lock (s_lock) s_global = Array.FindAll(s_global, o => !ReferenceEquals(o, observer)); });
        }
        var thread = Environment.CurrentManagedThreadId;
        t_local = [.. t_local ?? [], observer];
        Refresh();
        return Autograd.Handle(() =>
        {
            if (Environment.CurrentManagedThreadId != thread)
                throw new InvalidOperationException($"{nameof(Autograd.AddObserver)}: a thread-local observer must be removed on the thread that added it.");
            t_local = Array.FindAll(t_local!, o => !ReferenceEquals(o, observer));
            Refresh();
        });
    }

    private static void Refresh()
    {
        var global = s_global;
        t_seenGlobal = global;
        var local = t_local ?? [];
        t_all = local.Length == 0 ? global : global.Length == 0 ? local : [.. global, .. local];
    }

    // The observers that see this thread's ops: the global ones and this thread's own.
    private static IAutogradObserver[] Observers
    {
        get
        {
            if (!ReferenceEquals(t_seenGlobal, s_global) || t_all is null) Refresh();
            return t_all!;
        }
    }

    /// <summary>True when some observer sees this thread's ops (an op tells them only then, so an unwatched op pays one check).</summary>
    public static bool Listening => t_quiet == 0 && Observers.Length != 0;

    [ThreadStatic] private static int t_quiet;

    /// <summary>
    /// Until disposed, ops on this thread tell no observer: an op's own arithmetic on tensors it made itself (cross
    /// entropy's log-probabilities) is not an op of the model, and its raw intermediates would look like fresh inputs.
    /// </summary>
    public static QuietScope Quiet()
    {
        t_quiet++;
        return default;
    }

    /// <summary>Ends a <see cref="Quiet"/>.</summary>
    public readonly struct QuietScope : IDisposable
    {
        /// <summary>Observers hear ops again (once every Quiet is disposed).</summary>
        public void Dispose() => t_quiet--;
    }

    /// <summary>
    /// An op produced <paramref name="output"/> (its <paramref name="node"/> null when nothing was recorded). A fused op
    /// also reports the inner ops it computed (an LSTM's gate activations, with no node), so what observers watch by
    /// op name (<see cref="OpNames"/>) does not depend on fusion.
    /// </summary>
    public static void Forward(string op, ReadOnlySpan<Tensor> inputs, Tensor output, Node? node)
    {
        foreach (var o in Observers) o.OnForward(op, inputs, output, node);
    }

    /// <summary>A backward starts from <paramref name="roots"/>.</summary>
    public static void BackwardBegin(ReadOnlySpan<Tensor> roots)
    {
        foreach (var o in Observers) o.OnBackwardBegin(roots);
    }

    /// <summary>The engine ran <paramref name="node"/>'s backward.</summary>
    public static void Backward(Node node, ReadOnlySpan<Tensor?> gradOutputs, ReadOnlySpan<Tensor?> gradInputs)
    {
        foreach (var o in Observers) o.OnBackward(node, gradOutputs, gradInputs);
    }

    /// <summary>True while a backward runs on this thread (in OnBackwardBegin: the starting backward is nested in it, a hook's).</summary>
    public static bool BackwardRunning => Engine.IsRunning;

    /// <summary>
    /// True when, in the backward running on this thread, a gradient about to be handed to input
    /// <paramref name="inputNr"/> of <paramref name="target"/> will reach that node's backward as it is (no other
    /// gradient is summed into it, no hook replaces it). Asked in OnBackward, before the engine passes it on.
    /// </summary>
    public static bool ReachesUnchanged(Node target, int inputNr) => Engine.ReachesUnchanged(target, inputNr);

    /// <summary>
    /// True when <paramref name="gradient"/>, about to be handed to input <paramref name="inputNr"/> of
    /// <paramref name="target"/>, will be measured by that node's backward kernel as it reads it (flow armed, a node
    /// that measures, a layout its kernel takes, and the gradient reaching it unchanged). The kernel may still fall
    /// back to unmeasured ops (createGraph); a listener that waits for the figure must check that it came
    /// (<see cref="TakeFlow"/>, matched by tensor) and measure by itself otherwise.
    /// </summary>
    public static bool WillMeasureFlow(Node target, int inputNr, Tensor gradient) =>
        FlowArmed && target is IMeasuresFlow && gradient.DType == DType.Float32 && gradient.IsContiguous
        && Engine.ReachesUnchanged(target, inputNr);
}
