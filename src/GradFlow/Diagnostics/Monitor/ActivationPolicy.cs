namespace GradFlow.Diagnostics;

/// <summary>How the monitor judges an activation op's outputs.</summary>
internal enum ActivationKind : byte
{
    /// <summary>Not watched.</summary>
    None,
    /// <summary>A unit can die: output exactly 0 (or below) for every sample, so no gradient flows through it.</summary>
    Rectifier,
    /// <summary>Saturates: the derivative nearly vanishes at the bounds.</summary>
    Saturating,
}

/// <summary>
/// The monitor's policy for activation health, in one place: which ops it watches and how, the saturation band, how an
/// output splits into units, and which forwards count. Armed into the kernels
/// (<see cref="Instrumentation.ArmActivations"/>) so that they measure what it asks as they write the output; the
/// <see cref="ActivationTracker"/>s ask it the same questions, so a kernel's figure is used only when it measured
/// exactly what the tracker would have.
/// </summary>
internal sealed class ActivationPolicy(double saturationEpsilon) : IActivationPolicy
{
    /// <summary>
    /// The engine's activation primitives are watched: ReLU can die; sigmoid and tanh saturate. Composite activations
    /// (LeakyReLU, GELU, SiLU, ...) have a non-zero gradient almost everywhere; SiLU's inner sigmoid is seen as one.
    /// </summary>
    public static ActivationKind KindOf(string op) => op switch
    {
        OpNames.Relu => ActivationKind.Rectifier,
        OpNames.Sigmoid or OpNames.Tanh => ActivationKind.Saturating,
        _ => ActivationKind.None,
    };

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

    /// <summary>The band [lo, hi] outside which a saturating op's output counts as saturated (sigmoid: (0, 1); tanh: (-1, 1)).</summary>
    public (float Lo, float Hi) SaturationBand(string op) =>
        op == OpNames.Sigmoid ? ((float)saturationEpsilon, (float)(1 - saturationEpsilon)) : ((float)(-1 + saturationEpsilon), (float)(1 - saturationEpsilon));

    /// <summary>What a kernel should measure of an output of <paramref name="op"/> shaped like <paramref name="t"/>.</summary>
    public ActivationRequest RequestFor(ActivationKind kind, string op, Tensor t)
    {
        if (kind == ActivationKind.Rectifier)
        {
            var (outer, units, inner) = UnitLayout(t);
            return ActivationRequest.UnitMaxima(outer, units, inner);
        }
        if (kind != ActivationKind.Saturating) return default;
        var (lo, hi) = SaturationBand(op);
        return ActivationRequest.Band(lo, hi);
    }

    // Only training forwards count: a NoGrad evaluation pass, or the ops of a backward, are not this step's model.
    ActivationRequest IActivationPolicy.Request(string op, Tensor input)
    {
        var kind = KindOf(op);
        if (kind == ActivationKind.None || !Autograd.IsGradEnabled || Autograd.IsInBackward) return default;
        return RequestFor(kind, op, input);
    }
}
