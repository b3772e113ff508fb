namespace GradFlow;

// Measurements a listener asks the kernels to take inside their own pass over the data, where a separate pass would
// read it from memory again. The listener owns the policy (which ops, which band, which units); the kernels measure
// what the armed policy asks and leave the figures here, keyed by the tensors, for the listener to take.
internal static partial class Instrumentation
{
    [ThreadStatic] private static List<IActivationPolicy>? t_activationPolicies; // armed, oldest first
    [ThreadStatic] private static IActivationPolicy? t_activationPolicy; // the newest armed one: the one the kernels ask
    [ThreadStatic] private static ActivationMeasure t_activation; // Output is null when there is none

    /// <summary>True while some listener on this thread wants activation outputs measured as they are written.</summary>
    public static bool ActivationsArmed => t_activationPolicy is not null;

    /// <summary>
    /// A listener wants activation outputs measured as its <paramref name="policy"/> asks (balanced by
    /// <see cref="DisarmActivations"/> on the same thread). With several armed, the newest policy is asked; another
    /// listener sees its request differ from the measure's and measures by itself.
    /// </summary>
    public static void ArmActivations(IActivationPolicy policy)
    {
        (t_activationPolicies ??= []).Add(policy);
        t_activationPolicy = policy;
    }

    /// <summary>Undoes one <see cref="ArmActivations"/> of <paramref name="policy"/>; the last one also drops a measure nobody took.</summary>
    public static void DisarmActivations(IActivationPolicy policy)
    {
        var armed = t_activationPolicies;
        if (armed is null) return;
        int i = armed.LastIndexOf(policy);
        if (i < 0) return;
        armed.RemoveAt(i);
        t_activationPolicy = armed.Count > 0 ? armed[^1] : null;
        if (armed.Count == 0) t_activation = default;
    }

    /// <summary>
    /// What the armed listener wants measured of the output of <paramref name="op"/> applied elementwise to
    /// <paramref name="input"/> (a non-empty contiguous float tensor: the kernels measure no other); Kind None when
    /// nothing (or nobody is armed).
    /// </summary>
    public static ActivationRequest RequestActivation(string op, Tensor input) =>
        t_activationPolicy is { } policy ? policy.Request(op, input) : default;

    [ThreadStatic] private static float[]? t_unitMax;

    /// <summary>A per-thread buffer of at least <paramref name="units"/> maxima, the first <paramref name="units"/> set to -Inf.</summary>
    public static float[] UnitMaxBuffer(int units)
    {
        var b = t_unitMax;
        if (b is null || b.Length < units) t_unitMax = b = new float[Math.Max(units, 64)];
        Array.Fill(b, float.NegativeInfinity, 0, units);
        return b;
    }

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

    /// <summary>True while some listener on this thread wants the backward flow measured in the kernels.</summary>
    public static bool FlowArmed => t_flowArmed > 0;

    /// <summary>A listener wants the flow measured (balanced by <see cref="DisarmFlow"/>, on the same thread).</summary>
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

    [ThreadStatic] private static int t_stepsArmed;
    [ThreadStatic] private static double[]? t_stepSquares;
    [ThreadStatic] private static RecurrentStepMeasure t_steps; // Node is null when there is none

    /// <summary>True while some listener on this thread wants a recurrent backward to measure dL/dh_t at every time step.</summary>
    public static bool RecurrentStepsArmed => t_stepsArmed > 0;

    /// <summary>A listener wants dL/dh_t measured per time step (balanced by <see cref="DisarmRecurrentSteps"/>, on the same thread).</summary>
    public static void ArmRecurrentSteps() => t_stepsArmed++;

    /// <summary>Undoes one <see cref="ArmRecurrentSteps"/>; the last one also drops a measurement nobody took, and the marks.</summary>
    public static void DisarmRecurrentSteps()
    {
        if (t_stepsArmed > 0 && --t_stepsArmed == 0)
        {
            t_steps = default;
            ClearRecurrentStepMarks();
        }
    }

    // The nodes that made a step-by-step recurrent layer's hidden states, while armed: node -> (its output h_t, the
    // sequence, t). Entries leave as backward measures them; a forward whose graph is dropped unused leaves them until
    // the listener clears them (at the end of its step) or disarms.
    [ThreadStatic] private static Dictionary<Node, (int OutputNr, RecurrentStepSquares Sequence, int T)>? t_stepMarks;

    /// <summary>Marked nodes not yet measured on this thread.</summary>
    public static int RecurrentStepMarks => t_stepMarks?.Count ?? 0;

    /// <summary>Marks <paramref name="node"/>: its output <paramref name="outputNr"/> is step <paramref name="t"/>'s hidden state of <paramref name="sequence"/>.</summary>
    public static void MarkRecurrentStep(Node node, int outputNr, RecurrentStepSquares sequence, int t) =>
        (t_stepMarks ??= new(ReferenceEqualityComparer.Instance))[node] = (outputNr, sequence, t);

    /// <summary>Forgets the marks of graphs that never ran backward (a listener's step ended).</summary>
    public static void ClearRecurrentStepMarks() => t_stepMarks?.Clear();

    /// <summary>
    /// The engine is about to run <paramref name="node"/> with <paramref name="gradOutputs"/> complete: a marked node's
    /// incoming gradient is dL/dh_t, measured now (the node's backward may reuse that buffer).
    /// </summary>
    public static void BeforeBackward(Node node, Tensor?[] gradOutputs)
    {
        var marks = t_stepMarks;
        if (marks is null || marks.Count == 0 || !marks.Remove(node, out var mark)) return;
        mark.Sequence.Add(node, mark.T, mark.OutputNr < gradOutputs.Length ? gradOutputs[mark.OutputNr] : null);
    }

    /// <summary>A per-thread buffer of at least <paramref name="steps"/> values, the first <paramref name="steps"/> zeroed (reused: no allocation per sequence).</summary>
    public static double[] RecurrentStepBuffer(int steps)
    {
        var b = t_stepSquares;
        if (b is null || b.Length < steps) t_stepSquares = b = new double[Math.Max(steps, 64)];
        Array.Clear(b, 0, steps);
        return b;
    }

    /// <summary>
    /// A recurrent backward (<paramref name="node"/>, layer <paramref name="layer"/>, direction <paramref name="reverse"/>)
    /// measured sum over batch and features of (dL/dh_t)^2 for each of <paramref name="steps"/> time steps, indexed by t.
    /// </summary>
    public static void RecordRecurrentSteps(Node node, int layer, bool reverse, double[] squares, int steps) =>
        t_steps = new RecurrentStepMeasure(node, layer, reverse, squares, steps);

    /// <summary>The last per-step measurement of this thread, removed.</summary>
    public static RecurrentStepMeasure? TakeRecurrentSteps()
    {
        var m = t_steps;
        if (m.Node is null) return null;
        t_steps = default;
        return m;
    }

    /// <summary>The last per-step measurement of this thread if <paramref name="node"/> recorded it, removed; else null (and it stays).</summary>
    public static RecurrentStepMeasure? TakeRecurrentSteps(Node node) => ReferenceEquals(t_steps.Node, node) ? TakeRecurrentSteps() : null;
}

/// <summary>
/// dL/dh_t measured by a recurrent backward: <see cref="Squares"/>[t] is the squared L2 norm over batch and features of
/// the total gradient reaching the hidden state of time step t (from the output at t and from step t+1), for the first
/// <see cref="Steps"/> entries. The array may be a per-thread buffer: valid until the next measure on this thread.
/// </summary>
internal readonly record struct RecurrentStepMeasure(Node Node, int Layer, bool Reverse, double[] Squares, int Steps);


/// <summary>
/// A listener's answer to "what should this activation kernel measure?" (<see cref="Instrumentation.ArmActivations"/>).
/// Asked once per elementwise op while armed, so it must be cheap; it runs on the op's thread.
/// </summary>
internal interface IActivationPolicy
{
    /// <summary>
    /// What to measure of the output of <paramref name="op"/> (an <see cref="OpNames"/> constant) applied elementwise to
    /// <paramref name="input"/> (the output has its shape); default (Kind None) for nothing.
    /// </summary>
    ActivationRequest Request(string op, Tensor input);
}

/// <summary>Which measurement an activation kernel takes of its output.</summary>
internal enum ActivationMeasureKind : byte
{
    /// <summary>None.</summary>
    None,
    /// <summary>Sum, sum of squares, and how many values fall outside [Lo, Hi] (saturation).</summary>
    Band,
    /// <summary>Sum, sum of squares, and each unit's maximum over the batch (a unit dead for the batch has max &lt;= 0).</summary>
    UnitMaxima,
}

/// <summary>
/// What a listener asks an activation kernel to measure: for <see cref="ActivationMeasureKind.Band"/> the band
/// [Lo, Hi]; for <see cref="ActivationMeasureKind.UnitMaxima"/> how the contiguous output splits into units, as
/// (Outer, Units, Inner) with Outer * Units * Inner elements.
/// </summary>
internal readonly record struct ActivationRequest(ActivationMeasureKind Kind, float Lo = 0, float Hi = 0, int Outer = 0, int Units = 0, int Inner = 0)
{
    /// <summary>Sums and the count outside [lo, hi].</summary>
    public static ActivationRequest Band(float lo, float hi) => new(ActivationMeasureKind.Band, lo, hi);

    /// <summary>Sums and each unit's maximum, the output read as (outer, units, inner).</summary>
    public static ActivationRequest UnitMaxima(int outer, int units, int inner) => new(ActivationMeasureKind.UnitMaxima, Outer: outer, Units: units, Inner: inner);
}

/// <summary>
/// An activation's output measured by its kernel as <see cref="Request"/> asked: sums, the count outside the band
/// (Band), or each unit's maximum (UnitMaxima: <see cref="UnitMax"/>, the first Request.Units values of a per-thread
/// buffer, valid until the next such measure on this thread).
/// </summary>
internal readonly record struct ActivationMeasure(Tensor Output, ActivationRequest Request, double Sum, double SumSquares, long Outside = 0,
    float[]? UnitMax = null);

/// <summary>The squares of a node's incoming and outgoing gradient, summed by its kernel.</summary>
internal readonly record struct FlowMeasure(Tensor Received, double ReceivedSquares, Tensor Produced, double ProducedSquares);

/// <summary>
/// A node whose backward kernel measures its incoming and outgoing gradients when <see cref="Instrumentation.FlowArmed"/>
/// (it may still fall back to unmeasured tensor ops, e.g. under createGraph; the listener then measures by itself).
/// </summary>
internal interface IMeasuresFlow;
