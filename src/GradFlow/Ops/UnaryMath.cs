using GradFlow.Kernels;

namespace GradFlow;

// Pointwise functions of one tensor, each with its derivative beside it.
public sealed partial class Tensor
{
    /// <summary>e^x.</summary>
    public Tensor Exp()
    {
        var y = MapUnary<ExpOp>(this, OpNames.Exp);
        return Autograd.Record(OpNames.Exp, y, Autograd.NeedsGrad(this) ? new ExpBackward(y) : null, this);
    }

    /// <summary>Natural logarithm.</summary>
    public Tensor Log()
    {
        var y = MapUnary<LogOp>(this, OpNames.Log);
        return Autograd.Record(OpNames.Log, y, Autograd.NeedsGrad(this) ? new LogBackward(this) : null, this);
    }

    /// <summary>Square root.</summary>
    public Tensor Sqrt()
    {
        var y = MapUnary<SqrtOp>(this, OpNames.Sqrt);
        return Autograd.Record(OpNames.Sqrt, y, Autograd.NeedsGrad(this) ? new SqrtBackward(y) : null, this);
    }

    /// <summary>|x|.</summary>
    public Tensor Abs()
    {
        var y = MapUnary<AbsOp>(this, OpNames.Abs);
        return Autograd.Record(OpNames.Abs, y, Autograd.NeedsGrad(this) ? new AbsBackward(this) : null, this);
    }

    /// <summary>Sine.</summary>
    public Tensor Sin()
    {
        var y = MapUnary<SinOp>(this, OpNames.Sin);
        return Autograd.Record(OpNames.Sin, y, Autograd.NeedsGrad(this) ? new SinBackward(this) : null, this);
    }

    /// <summary>Cosine.</summary>
    public Tensor Cos()
    {
        var y = MapUnary<CosOp>(this, OpNames.Cos);
        return Autograd.Record(OpNames.Cos, y, Autograd.NeedsGrad(this) ? new CosBackward(this) : null, this);
    }

    /// <summary>Hyperbolic tangent.</summary>
    public Tensor Tanh()
    {
        var y = MapUnary<TanhOp>(this, OpNames.Tanh);
        return Autograd.Record(OpNames.Tanh, y, Autograd.NeedsGrad(this) ? new TanhBackward(y) : null, this);
    }

    /// <summary>The logistic function 1 / (1 + e^-x).</summary>
    public Tensor Sigmoid()
    {
        var y = MapUnary<SigmoidOp>(this, OpNames.Sigmoid);
        return Autograd.Record(OpNames.Sigmoid, y, Autograd.NeedsGrad(this) ? new SigmoidBackward(y) : null, this);
    }

    /// <summary>max(x, 0).</summary>
    public Tensor Relu()
    {
        var y = MapUnary<ReluOp>(this, OpNames.Relu);
        return Autograd.Record(OpNames.Relu, y, Autograd.NeedsGrad(this) ? new ReluBackward(y) : null, this);
    }

    /// <summary>
    /// ReLU's input gradient g [y &gt; 0], recorded when grad mode is on (a createGraph backward) as one op and one
    /// kernel pass, not measured for the monitor: a composed g * mask cost a mask tensor kept by the graph and two
    /// passes, and its double backward a multiply by that mask. Strided operands take the composed form.
    /// </summary>
    internal static Tensor ReluGrad(Tensor g, Tensor y)
    {
        if (!FusibleGrad(g, y)) return g * MapScalar<GtOp>(y, 0, false, OpNames.Relu); // the 0/1 mask made raw: a Bool comparison would cost two conversions
        var dx = RawGrad<ReluGradOp>(g, y);
        return Autograd.Record(OpNames.ThresholdBackward, dx, Autograd.NeedsGrad(g) ? new ThresholdBackwardBackward(y) : null, g);
    }

    /// <summary>The sign of x (-1, 0 or 1); its gradient is zero.</summary>
    public Tensor Sign()
    {
        Guard.Floating(this, nameof(Sign));
        var y = MapBinary<SubOp>(Gt(0.0).To(DType), Lt(0.0).To(DType), nameof(Sign));
        return Autograd.Record(OpNames.Sign, y, Autograd.NeedsGrad(this) ? new ZeroBackward() : null, this);
    }

    /// <summary>Clamps x to [min, max]; either bound may be null (no bound).</summary>
    public Tensor Clamp(double? min = null, double? max = null)
    {
        if (min is null && max is null) Guard.Throw(nameof(Clamp), "at least one of min and max must be given.");
        if (min > max) Guard.Throw(nameof(Clamp), $"min {min} is greater than max {max}.");
        var y = this;
        if (min is { } lo) y = MapScalar<MaxOp>(y, lo, false, nameof(Clamp));
        if (max is { } hi) y = MapScalar<MinOp>(y, hi, false, nameof(Clamp));
        return Autograd.Record(OpNames.Clamp, y, Autograd.NeedsGrad(this) ? new ClampBackward(this, min, max) : null, this);
    }
}

internal sealed class ExpBackward : Node
{
    public ExpBackward(Tensor y) => Save(y);
    protected internal override Tensor?[] Backward(Tensor?[] g) => [g[0]! * Saved(0)];
}

internal sealed class LogBackward : Node
{
    public LogBackward(Tensor x) => Save(x);
    protected internal override Tensor?[] Backward(Tensor?[] g) => [g[0]! / Saved(0)];
}

internal sealed class SqrtBackward : Node
{
    public SqrtBackward(Tensor y) => Save(y);
    // d sqrt(x)/dx = 1 / (2 sqrt(x))
    protected internal override Tensor?[] Backward(Tensor?[] g) => [g[0]! / (Saved(0) * 2.0)];
}

internal sealed class AbsBackward : Node
{
    public AbsBackward(Tensor x) => Save(x);
    // d|x|/dx = sign(x), 0 at 0 (PyTorch's subgradient)
    protected internal override Tensor?[] Backward(Tensor?[] g) => [g[0]! * Saved(0).Sign()];
}

internal sealed class SinBackward : Node
{
    public SinBackward(Tensor x) => Save(x);
    protected internal override Tensor?[] Backward(Tensor?[] g) => [g[0]! * Saved(0).Cos()];
}

internal sealed class CosBackward : Node
{
    public CosBackward(Tensor x) => Save(x);
    protected internal override Tensor?[] Backward(Tensor?[] g) => [-g[0]! * Saved(0).Sin()];
}

// Tanh, Sigmoid and Relu differentiate from their saved output. Without createGraph the formula runs as one
// fused kernel pass (Kernels/ActivationGradOps.cs); with it, as the tensor ops below, so it can be differentiated again.
internal sealed class TanhBackward : Node, IMeasuresFlow
{
    public TanhBackward(Tensor y) => Save(y);
    // d tanh(x)/dx = 1 - tanh(x)^2
    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        var y = Saved(0);
        return [Tensor.FusedGrad<TanhGradOp>(g[0]!, y) ?? g[0]! * (1.0 - y * y)];
    }
}

internal sealed class SigmoidBackward : Node, IMeasuresFlow
{
    public SigmoidBackward(Tensor y) => Save(y);
    // d sigmoid(x)/dx = s (1 - s), at most 1/4
    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        var y = Saved(0);
        return [Tensor.FusedGrad<SigmoidGradOp>(g[0]!, y) ?? g[0]! * y * (1.0 - y)];
    }
}

internal sealed class ReluBackward : Node, IMeasuresFlow
{
    public ReluBackward(Tensor y) => Save(y);
    // The gradient passes where the output is positive; 0 at 0, as in PyTorch.
    protected internal override Tensor?[] Backward(Tensor?[] g) => [Tensor.FusedGrad<ReluGradOp>(g[0]!, Saved(0)) ?? Tensor.ReluGrad(g[0]!, Saved(0))];
}

// The node of ReluGrad, recorded under createGraph: g [y > 0] is linear in g with a constant mask (y gets no gradient:
// the step's derivative is zero almost everywhere), so its backward is ReluGrad again (PyTorch's threshold_backward).
internal sealed class ThresholdBackwardBackward : Node
{
    public ThresholdBackwardBackward(Tensor y) => Save(y);

    protected internal override Tensor?[] Backward(Tensor?[] g) => [Tensor.ReluGrad(g[0]!, Saved(0))];
}

internal sealed class ClampBackward : Node
{
    private readonly double? _min, _max;

    public ClampBackward(Tensor x, double? min, double? max)
    {
        (_min, _max) = (min, max);
        Save(x);
    }

    // The gradient passes where min <= x <= max (bounds included, as in PyTorch).
    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        var x = Saved(0);
        // 0/1 masks in x's dtype, made raw: the mask is a constant of the (possibly recorded) backward.
        Tensor? mask = _min is { } lo ? Tensor.MapScalar<GeOp>(x, lo, false, OpNames.Clamp) : null;
        if (_max is { } hi)
        {
            var below = Tensor.MapScalar<LeOp>(x, hi, false, OpNames.Clamp);
            mask = mask is null ? below : Tensor.MapBinary<MulOp>(mask, below, OpNames.Clamp);
        }
        return [mask is null ? g[0]! : g[0]! * mask];
    }
}

/// <summary>The backward of piecewise-constant ops: no gradient flows.</summary>
internal sealed class ZeroBackward : Node
{
    protected internal override Tensor?[] Backward(Tensor?[] g) => [Tensor.ZerosLike(g[0]!)];
}
