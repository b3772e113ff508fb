namespace GradFlow;

/// <summary>
/// Measurements an observer asks the kernels to take inside their own pass over the data, where a separate pass
/// would read it from memory again. Per thread, like the observers: the training loop's thread arms them, and only
/// its ops measure.
/// <para>
/// The backward flow: an activation's fused backward (sigmoid, tanh, ReLU: nodes marked
/// <see cref="IMeasuresFlow"/>) sums the squares of the gradient it receives and of the one it produces while it
/// computes the latter, and leaves the two sums here, keyed by the tensors, for the observer to take in its
/// <see cref="IAutogradObserver.OnBackward"/> of that node. The tensors are the key: a figure is used only for the
/// very tensor it was measured on.
/// </para>
/// <para>
/// Activation health: sigmoid and tanh, while armed, sum their outputs and squares and count the saturated ones
/// block by block as they write them; ReLU sums them and takes each unit's maximum (a unit dead for the batch). The
/// observer takes the figures in its OnForward of that op (<see cref="TakeActivation"/>).
/// </para>
/// </summary>
internal static class FusedMeasures
{
    [ThreadStatic] private static int t_activationsArmed;
    [ThreadStatic] private static double t_saturationEpsilon;
    [ThreadStatic] private static ActivationMeasure t_activation; // Output is null when there is none

    /// <summary>True while some observer on this thread wants sigmoid, tanh and ReLU outputs measured as they are written.</summary>
    public static bool ActivationsArmed => t_activationsArmed > 0;

    /// <summary>
    /// An observer wants activations measured, counting as saturated the values within <paramref name="epsilon"/> of
    /// the bounds (balanced by <see cref="DisarmActivations"/>; the latest epsilon applies).
    /// </summary>
    public static void ArmActivations(double epsilon)
    {
        t_activationsArmed++;
        t_saturationEpsilon = epsilon;
    }

    /// <summary>Undoes one <see cref="ArmActivations"/>.</summary>
    public static void DisarmActivations()
    {
        if (t_activationsArmed > 0 && --t_activationsArmed == 0) t_activation = default;
    }

    [ThreadStatic] private static float[]? t_unitMax;

    /// <summary>A per-thread buffer of at least <paramref name="units"/> maxima, the first <paramref name="units"/> set to -Inf.</summary>
    public static float[] UnitMaxBuffer(int units)
    {
        var b = t_unitMax;
        if (b is null || b.Length < units) t_unitMax = b = new float[Math.Max(units, 64)];
        Array.Fill(b, float.NegativeInfinity, 0, units);
        return b;
    }

    /// <summary>
    /// How an activation's output splits into units (features or channels): dim 1 of a 2-d or 4-d output, the last dim
    /// of a 3-d (sequence) output; as (outer, units, inner) of its contiguous layout.
    /// </summary>
    public static (int Outer, int Units, int Inner) UnitLayout(Tensor t) => t.Rank switch
    {
        0 => (1, 1, 1),
        1 => (1, t.Shape[0], 1),
        3 => (t.Shape[0] * t.Shape[1], t.Shape[2], 1),
        _ => (t.Shape[0], t.Shape[1], t.NumEl / (t.Shape[0] * Math.Max(t.Shape[1], 1))),
    };

    /// <summary>The band [lo, hi] outside which a sigmoid's or a tanh's output counts as saturated.</summary>
    public static (float Lo, float Hi) SaturationBounds(bool sigmoid, double epsilon) =>
        sigmoid ? ((float)epsilon, (float)(1 - epsilon)) : ((float)(-1 + epsilon), (float)(1 - epsilon));

    /// <summary>The band for the armed epsilon.</summary>
    public static (float Lo, float Hi) ArmedSaturationBounds(bool sigmoid) => SaturationBounds(sigmoid, t_saturationEpsilon);

    /// <summary>An activation kernel measured its output as it wrote it.</summary>
    public static void RecordActivation(in ActivationMeasure measure) => t_activation = measure;

    /// <summary>The last activation measurement of this thread, removed.</summary>
    public static ActivationMeasure? TakeActivation()
    {
        var a = t_activation;
        if (a.Output is null) return null;
        t_activation = default;
        return a;
    }

    [ThreadStatic] private static int t_flowArmed;
    [ThreadStatic] private static FlowMeasure t_flow; // Received is null when there is none

    /// <summary>True while some observer on this thread wants the backward flow measured in the kernels.</summary>
    public static bool FlowArmed => t_flowArmed > 0;

    /// <summary>An observer wants the flow measured (balanced by <see cref="DisarmFlow"/>, on the same thread).</summary>
    public static void ArmFlow() => t_flowArmed++;

    /// <summary>Undoes one <see cref="ArmFlow"/>; the last one also drops a measurement nobody took.</summary>
    public static void DisarmFlow()
    {
        if (t_flowArmed > 0 && --t_flowArmed == 0) t_flow = default;
    }

    /// <summary>A kernel measured <paramref name="received"/> and <paramref name="produced"/> (squares summed).</summary>
    public static void RecordFlow(Tensor received, double receivedSquares, Tensor produced, double producedSquares) =>
        t_flow = new FlowMeasure(received, receivedSquares, produced, producedSquares);

    /// <summary>The last measurement of this thread, removed (so it cannot be matched to a later node's tensors).</summary>
    public static FlowMeasure? TakeFlow()
    {
        var f = t_flow;
        if (f.Received is null) return null;
        t_flow = default;
        return f;
    }
}

/// <summary>The squares of a node's incoming and outgoing gradient, summed by its kernel.</summary>
internal readonly record struct FlowMeasure(Tensor Received, double ReceivedSquares, Tensor Produced, double ProducedSquares);

/// <summary>
/// An activation's output measured by its kernel: sums, and for sigmoid and tanh the count outside [Lo, Hi], for ReLU
/// each unit's maximum (<see cref="UnitMax"/>: the first <see cref="Units"/> values of a per-thread buffer, valid until
/// the next ReLU on this thread).
/// </summary>
internal readonly record struct ActivationMeasure(Tensor Output, double Sum, double SumSquares, long Outside, float Lo, float Hi,
    float[]? UnitMax = null, int Units = 0);

/// <summary>
/// A node whose backward kernel measures its incoming and outgoing gradients when <see cref="FusedMeasures.FlowArmed"/>
/// (it may still fall back to unmeasured tensor ops, e.g. under createGraph; the observer then measures by itself).
/// </summary>
internal interface IMeasuresFlow;
