using GradFlow.Kernels;

namespace GradFlow;

// + - * / with NumPy broadcasting. The gradient of a broadcast operand is the output gradient
// summed back to the operand's shape (SumTo).
public sealed partial class Tensor
{
    /// <summary>Elementwise sum with broadcasting.</summary>
    public static Tensor operator +(Tensor a, Tensor b) => a.Add(b);
    /// <summary>Elementwise difference with broadcasting.</summary>
    public static Tensor operator -(Tensor a, Tensor b) => a.Sub(b);
    /// <summary>Elementwise product with broadcasting.</summary>
    public static Tensor operator *(Tensor a, Tensor b) => a.Mul(b);
    /// <summary>Elementwise quotient with broadcasting.</summary>
    public static Tensor operator /(Tensor a, Tensor b) => a.Div(b);
    /// <summary>Negation.</summary>
    public static Tensor operator -(Tensor a) => a.Neg();
    /// <summary>Adds a scalar.</summary>
    public static Tensor operator +(Tensor a, double s) => a.Add(s);
    /// <summary>Adds a scalar.</summary>
    public static Tensor operator +(double s, Tensor a) => a.Add(s);
    /// <summary>Subtracts a scalar.</summary>
    public static Tensor operator -(Tensor a, double s) => a.Add(-s);
    /// <summary>A scalar minus a tensor (one kernel: it is on the hot path of Tanh's and Sigmoid's backward).</summary>
    public static Tensor operator -(double s, Tensor a)
    {
        var y = MapScalar<SubOp>(a, s, true, nameof(Sub));
        return Autograd.Record(OpNames.Sub, y, Autograd.NeedsGrad(a) ? new ScaleBackward(-1) : null, a);
    }
    /// <summary>Multiplies by a scalar.</summary>
    public static Tensor operator *(Tensor a, double s) => a.Mul(s);
    /// <summary>Multiplies by a scalar.</summary>
    public static Tensor operator *(double s, Tensor a) => a.Mul(s);
    /// <summary>Divides by a scalar.</summary>
    public static Tensor operator /(Tensor a, double s) => a.Mul(1.0 / s);
    /// <summary>A scalar divided by a tensor.</summary>
    public static Tensor operator /(double s, Tensor a) => a.Reciprocal().Mul(s);

    /// <summary>this + other, broadcasting.</summary>
    public Tensor Add(Tensor other)
    {
        var y = MapBinary<AddOp>(this, other, nameof(Add));
        return Autograd.Record(OpNames.Add, y, Autograd.NeedsGrad(this, other) ? new AddBackward(ShapeArray, other.ShapeArray, 1) : null, this, other);
    }

    /// <summary>this - other, broadcasting.</summary>
    public Tensor Sub(Tensor other)
    {
        var y = MapBinary<SubOp>(this, other, nameof(Sub));
        return Autograd.Record(OpNames.Sub, y, Autograd.NeedsGrad(this, other) ? new AddBackward(ShapeArray, other.ShapeArray, -1) : null, this, other);
    }

    /// <summary>this * other, broadcasting.</summary>
    public Tensor Mul(Tensor other)
    {
        var y = MapBinary<MulOp>(this, other, nameof(Mul));
        return Autograd.Record(OpNames.Mul, y, Autograd.NeedsGrad(this, other) ? new MulBackward(this, other) : null, this, other);
    }

    /// <summary>this / other, broadcasting.</summary>
    public Tensor Div(Tensor other)
    {
        Guard.Floating(this, nameof(Div)); // torch's true division of integers gives floats; GradFlow asks for a conversion
        var y = MapBinary<DivOp>(this, other, nameof(Div));
        return Autograd.Record(OpNames.Div, y, Autograd.NeedsGrad(this, other) ? new DivBackward(this, other) : null, this, other);
    }

    /// <summary>this + s.</summary>
    public Tensor Add(double s)
    {
        var y = MapScalar<AddOp>(this, s, false, nameof(Add));
        return Autograd.Record(OpNames.Add, y, Autograd.NeedsGrad(this) ? new ScaleBackward(1) : null, this);
    }

    /// <summary>this * s.</summary>
    public Tensor Mul(double s)
    {
        var y = MapScalar<MulOp>(this, s, false, nameof(Mul));
        return Autograd.Record(OpNames.Mul, y, Autograd.NeedsGrad(this) ? new ScaleBackward(s) : null, this);
    }

    /// <summary>-this.</summary>
    public Tensor Neg()
    {
        if (DType == DType.Int64) return MapScalar<MulOp>(this, -1, false, nameof(Neg));
        var y = MapUnary<NegOp>(this, OpNames.Neg);
        return Autograd.Record(OpNames.Neg, y, Autograd.NeedsGrad(this) ? new ScaleBackward(-1) : null, this);
    }

    /// <summary>1 / this.</summary>
    public Tensor Reciprocal()
    {
        Guard.Floating(this, nameof(Reciprocal));
        var y = MapScalar<DivOp>(this, 1, true, nameof(Reciprocal));
        return Autograd.Record(OpNames.Reciprocal, y, Autograd.NeedsGrad(this) ? new ReciprocalBackward(y) : null, this);
    }

    /// <summary>this raised to a scalar power.</summary>
    public Tensor Pow(double exponent)
    {
        Guard.Floating(this, nameof(Pow));
        if (exponent == 2) return Autograd.Record(OpNames.Pow, MapBinary<MulOp>(this, this, nameof(Pow)), Autograd.NeedsGrad(this) ? new PowScalarBackward(this, 2) : null, this);
        var y = PowRaw(this, exponent);
        return Autograd.Record(OpNames.Pow, y, Autograd.NeedsGrad(this) ? new PowScalarBackward(this, exponent) : null, this);
    }

    /// <summary>this raised to a tensor power, broadcasting.</summary>
    public Tensor Pow(Tensor exponent)
    {
        Guard.Floating(this, nameof(Pow));
        var y = PowElementwise(this, exponent);
        return Autograd.Record(OpNames.Pow, y, Autograd.NeedsGrad(this, exponent) ? new PowBackward(this, exponent, y) : null, this, exponent);
    }

    private static Tensor PowRaw(Tensor x, double e)
    {
        var c = x.ContiguousRaw();
        var y = Empty(x.ShapeArray, x.DType);
        if (x.DType == DType.Float32)
        {
            var s = c.Span<float>(); var d = y.Span<float>(); float fe = (float)e;
            for (int i = 0; i < s.Length; i++) d[i] = MathF.Pow(s[i], fe);
        }
        else
        {
            var s = c.Span<double>(); var d = y.Span<double>();
            for (int i = 0; i < s.Length; i++) d[i] = Math.Pow(s[i], e);
        }
        return y;
    }

    private static Tensor PowElementwise(Tensor x, Tensor e)
    {
        Guard.SameDType(x, e, nameof(Pow));
        var shape = Shapes.Broadcast(x.ShapeArray, e.ShapeArray, nameof(Pow));
        var xb = x.ExpandRaw(shape).ContiguousRaw();
        var eb = e.ExpandRaw(shape).ContiguousRaw();
        var y = Empty(shape, x.DType);
        if (x.DType == DType.Float32)
        {
            var s = xb.Span<float>(); var p = eb.Span<float>(); var d = y.Span<float>();
            for (int i = 0; i < d.Length; i++) d[i] = MathF.Pow(s[i], p[i]);
        }
        else
        {
            var s = xb.Span<double>(); var p = eb.Span<double>(); var d = y.Span<double>();
            for (int i = 0; i < d.Length; i++) d[i] = Math.Pow(s[i], p[i]);
        }
        return y;
    }

    /// <summary>
    /// The gradient <paramref name="g"/> of a broadcast result, summed back to <paramref name="shape"/>:
    /// over the leading dims broadcasting added, and over the dims where the operand had size 1.
    /// </summary>
    internal static Tensor SumTo(Tensor g, int[] shape)
    {
        if (Shapes.Equal(g.ShapeArray, shape)) return g;
        int lead = g.Rank - shape.Length;
        var dims = new List<int>();
        for (int d = 0; d < g.Rank; d++)
            if (d < lead || (shape[d - lead] == 1 && g.ShapeArray[d] != 1)) dims.Add(d);
        var s = dims.Count == 0 ? g : g.Sum(dims.ToArray(), keepDim: true);
        return Shapes.Equal(s.ShapeArray, shape) ? s : s.Reshape(shape);
    }
}

internal sealed class AddBackward(int[] aShape, int[] bShape, double bSign) : Node
{
    public override string Name => bSign > 0 ? "AddBackward" : "SubBackward";

    protected internal override Tensor?[] Backward(Tensor?[] g) =>
        [Tensor.SumTo(g[0]!, aShape), Tensor.SumTo(bSign > 0 ? g[0]! : -g[0]!, bShape)];
}

internal sealed class MulBackward : Node
{
    private readonly bool _needA, _needB;

    public MulBackward(Tensor a, Tensor b)
    {
        _needA = a.RequiresGrad;
        _needB = b.RequiresGrad;
        Save(a, b);
    }

    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        Tensor a = Saved(0), b = Saved(1);
        return [_needA ? Tensor.SumTo(g[0]! * b, a.ShapeArray) : null, _needB ? Tensor.SumTo(g[0]! * a, b.ShapeArray) : null];
    }
}

internal sealed class DivBackward : Node
{
    private readonly bool _needA, _needB;

    public DivBackward(Tensor a, Tensor b)
    {
        _needA = a.RequiresGrad;
        _needB = b.RequiresGrad;
        Save(a, b);
    }

    // d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        Tensor a = Saved(0), b = Saved(1);
        var ga = g[0]! / b;
        return [_needA ? Tensor.SumTo(ga, a.ShapeArray) : null, _needB ? Tensor.SumTo(-ga * a / b, b.ShapeArray) : null];
    }
}

internal sealed class ScaleBackward(double scale) : Node
{
    protected internal override Tensor?[] Backward(Tensor?[] g) => [scale == 1 ? g[0] : g[0]! * scale];
}

internal sealed class ReciprocalBackward : Node
{
    public ReciprocalBackward(Tensor y) => Save(y);

    // d(1/x)/dx = -1/x^2 = -y^2
    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        var y = Saved(0);
        return [-g[0]! * y * y];
    }
}

internal sealed class PowScalarBackward : Node
{
    private readonly double _e;

    public PowScalarBackward(Tensor x, double e)
    {
        _e = e;
        Save(x);
    }

    // d(x^e)/dx = e x^(e-1); exponent 0 has a zero gradient everywhere (PyTorch's convention).
    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        var x = Saved(0);
        if (_e == 0) return [Tensor.ZerosLike(g[0]!)];
        if (_e == 1) return [g[0]];
        if (_e == 2) return [g[0]! * x * 2.0];
        return [g[0]! * x.Pow(_e - 1) * _e];
    }
}

internal sealed class PowBackward : Node
{
    private readonly bool _needX, _needE;

    public PowBackward(Tensor x, Tensor e, Tensor y)
    {
        _needX = x.RequiresGrad;
        _needE = e.RequiresGrad;
        Save(x, e, y);
    }

    // d(x^e)/dx = e x^(e-1); d(x^e)/de = x^e log x, taken as 0 where x = 0 and e >= 0 (PyTorch's mask).
    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        Tensor x = Saved(0), e = Saved(1), y = Saved(2);
        Tensor? gx = _needX ? Tensor.SumTo(g[0]! * e * x.Pow(e - 1.0), x.ShapeArray) : null;
        Tensor? ge = null;
        if (_needE)
        {
            var safeLog = Tensor.Where(x.Eq(0.0).Mul(e.Ge(0.0)), Tensor.OnesLike(x), x).Log();
            ge = Tensor.SumTo(g[0]! * y * safeLog, e.ShapeArray);
        }
        return [gx, ge];
    }
}
