namespace GradFlow;

// The Bool dtype's ops: logical operators, MaskedFill, and the promotions that let a Bool mask meet numbers as in
// PyTorch (bool * float -> float). Bool tensors hold 0/1 in 64-bit words, so the integer kernels serve them.
public sealed partial class Tensor
{
    /// <summary>A 1-d Bool tensor from <paramref name="data"/>.</summary>
    public static Tensor FromArray(bool[] data) => FromArray(data, [data?.Length ?? 0]); // null is refused by the overload it calls

    /// <summary>A Bool tensor from <paramref name="data"/> in <paramref name="shape"/>; an empty shape gives a 0-d tensor of one element.</summary>
    public static Tensor FromArray(bool[] data, params ReadOnlySpan<int> shape)
    {
        Guard.NotNull(data, nameof(FromArray), nameof(data));
        var words = new long[data.Length];
        for (int i = 0; i < data.Length; i++) words[i] = data[i] ? 1 : 0;
        return new Tensor(new Storage(words, DType.Bool), ShapeFor(data.Length, shape, nameof(FromArray)));
    }

    /// <summary>True where both are non-zero (Bool result; broadcasting).</summary>
    public Tensor LogicalAnd(Tensor other) => Logical(other, nameof(LogicalAnd), static (a, b) => a & b);

    /// <summary>True where either is non-zero (Bool result; broadcasting).</summary>
    public Tensor LogicalOr(Tensor other) => Logical(other, nameof(LogicalOr), static (a, b) => a | b);

    /// <summary>True where exactly one is non-zero (Bool result; broadcasting).</summary>
    public Tensor LogicalXor(Tensor other) => Logical(other, nameof(LogicalXor), static (a, b) => a ^ b);

    /// <summary>True where this is zero (Bool result).</summary>
    public Tensor LogicalNot()
    {
        var src = ContiguousRaw().ToDoubleArray();
        var y = Empty(ShapeArray, DType.Bool);
        var d = y.Span<long>();
        for (int i = 0; i < d.Length; i++) d[i] = src[i] == 0 ? 1 : 0;
        return Autograd.Record(nameof(LogicalNot), y, null, this);
    }

    /// <summary>
    /// A copy with <paramref name="value"/> where <paramref name="mask"/> (Bool, broadcasting to this shape) is true
    /// (torch's masked_fill). Gradients flow to this tensor where the mask is false.
    /// </summary>
    public Tensor MaskedFill(Tensor mask, double value)
    {
        const string op = nameof(MaskedFill);
        Guard.NotNull(mask, op, nameof(mask));
        if (mask.DType != DType.Bool)
            Guard.ThrowArg(op, nameof(mask), $"the mask must be Bool (a comparison, or To(DType.Bool)), got {mask.DType.Name()} {Guard.Shape(mask)}; a float mask is not read as true/false.");
        var shape = Shapes.Broadcast(ShapeArray, mask.ShapeArray, op);
        if (!Shapes.Equal(shape, ShapeArray))
            Guard.ThrowArg(op, nameof(mask), $"a mask of shape {Guard.Shape(mask)} does not broadcast to the input's shape {Guard.Shape(this)}.");
        return Where(mask, Full([], value, DType), this);
    }

    private Tensor Logical(Tensor other, string op, Func<bool, bool, bool> f)
    {
        Guard.NotNull(other, op, nameof(other));
        var shape = Shapes.Broadcast(ShapeArray, other.ShapeArray, op);
        var a = ExpandRaw(shape).ContiguousRaw().ToDoubleArray();
        var b = other.ExpandRaw(shape).ContiguousRaw().ToDoubleArray();
        var y = Empty(shape, DType.Bool);
        var d = y.Span<long>();
        for (int i = 0; i < d.Length; i++) d[i] = f(a[i] != 0, b[i] != 0) ? 1 : 0;
        return Autograd.Record(op, y, null, this, other);
    }

    /// <summary>The operands of a binary op with a Bool one converted to the other's dtype; null when neither is Bool.</summary>
    private static (Tensor A, Tensor B, bool Both)? BoolOperands(Tensor a, Tensor b, [System.Runtime.CompilerServices.CallerMemberName] string op = "")
    {
        Guard.NotNull(b, op, "other");
        bool ab = a.DType == DType.Bool, bb = b.DType == DType.Bool;
        if (!ab && !bb) return null;
        if (ab && bb) return (a, b, true);
        return ab ? (a.To(b.DType), b, false) : (a, b.To(a.DType), false);
    }

    /// <summary>Both operands in one dtype when one of them is Bool (compared as numbers), else unchanged.</summary>
    private static (Tensor, Tensor) PromoteBool(Tensor a, Tensor b) => BoolOperands(a, b, "comparison") is { Both: false } p ? (p.A, p.B) : (a, b);

    /// <summary>A comparison's 0/1 result (in its inputs' dtype) as a Bool tensor, with no autograd.</summary>
    private static Tensor ToBoolRaw(Tensor zeroOne)
    {
        var y = Empty(zeroOne.ShapeArray, DType.Bool);
        ConvertRaw(zeroOne, y); // straight into the Bool words: a double[] copy here was a training step's only garbage
        return y;
    }
}
