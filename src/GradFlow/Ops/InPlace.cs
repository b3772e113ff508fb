using GradFlow.Kernels;

namespace GradFlow;

// In-place updates, for optimisers and data handling. They bump the storage version, so a tensor
// that autograd saved and that is then changed in place is caught at backward time. Writing in
// place into a tensor that requires grad while grad mode is on is refused (wrap it in NoGrad).
public sealed partial class Tensor
{
    private void CheckInPlace(string op)
    {
        if (Autograd.IsGradEnabled && RequiresGrad)
            Guard.ThrowInvalid(op, $"a tensor of shape {Guard.Shape(this)} that requires grad cannot be changed in place while grad mode is on; use Autograd.NoGrad() or the out-of-place op.");
        for (int d = 0; d < Rank; d++)
            if (StridesArray[d] == 0 && ShapeArray[d] > 1)
                Guard.ThrowInvalid(op, $"the tensor of shape {Guard.Shape(this)} with strides {Guard.Shape(StridesArray)} is an expanded view: several of its elements share one memory location. Clone() it first.");
        BumpVersion();
    }

    private void CheckInPlaceOperand(Tensor other, string op)
    {
        Guard.NotNull(other, op, nameof(other));
        Guard.SameDType(this, other, op);
        var shape = Shapes.Broadcast(ShapeArray, other.ShapeArray, op);
        if (!Shapes.Equal(shape, ShapeArray))
            Guard.Throw(op, $"in place, other of shape {Guard.Shape(other)} must broadcast to this tensor's shape {Guard.Shape(this)}.");
    }

    /// <summary>this += alpha * other (other broadcasts to this shape). Returns this.</summary>
    public Tensor AddInPlace(Tensor other, double alpha = 1)
    {
        CheckInPlaceOperand(other, nameof(AddInPlace));
        CheckInPlace(nameof(AddInPlace));
        var src = alpha == 1 ? other : MapScalar<MulOp>(other, alpha, false, nameof(AddInPlace));
        BinaryInto<AddOp>(this, this, src);
        return this;
    }

    /// <summary>dst += src for a contiguous dst, no checks and no autograd (the engine's gradient accumulation); bumps dst's version.</summary>
    internal static void AddIntoRaw(Tensor dst, Tensor src)
    {
        if (src.IsContiguous && dst.DType != DType.Int64)
        {
            if (dst.DType == DType.Float32)
                ElementwiseParallel.Binary<AddOp, float>(dst.Data<float>(), dst.Offset, src.Data<float>(), src.Offset, dst.Data<float>(), dst.Offset, dst.NumEl);
            else
                ElementwiseParallel.Binary<AddOp, double>(dst.Data<double>(), dst.Offset, src.Data<double>(), src.Offset, dst.Data<double>(), dst.Offset, dst.NumEl);
        }
        else BinaryInto<AddOp>(dst, dst, src);
        dst.BumpVersion();
    }

    /// <summary>this -= other. Returns this.</summary>
    public Tensor SubInPlace(Tensor other) => AddInPlace(other, -1);

    /// <summary>this *= other (other broadcasts to this shape). Returns this.</summary>
    public Tensor MulInPlace(Tensor other)
    {
        CheckInPlaceOperand(other, nameof(MulInPlace));
        CheckInPlace(nameof(MulInPlace));
        BinaryInto<MulOp>(this, this, other);
        return this;
    }

    /// <summary>this *= s. Returns this.</summary>
    public Tensor MulInPlace(double s)
    {
        CheckInPlace(nameof(MulInPlace));
        BinaryInto<MulOp>(this, this, Full([], s, DType));
        return this;
    }

    /// <summary>this += s. Returns this.</summary>
    public Tensor AddInPlace(double s)
    {
        CheckInPlace(nameof(AddInPlace));
        BinaryInto<AddOp>(this, this, Full([], s, DType));
        return this;
    }

    /// <summary>this -= s (torch's sub_); the same values as <c>this - s</c>, without a new tensor. Returns this.</summary>
    public Tensor SubInPlace(double s) => AddInPlace(-s);

    /// <summary>this /= other (other broadcasts to this shape; floating point only, as <see cref="Div(Tensor)"/>). Returns this.</summary>
    public Tensor DivInPlace(Tensor other)
    {
        Guard.Floating(this, nameof(DivInPlace));
        CheckInPlaceOperand(other, nameof(DivInPlace));
        CheckInPlace(nameof(DivInPlace));
        BinaryInto<DivOp>(this, this, other);
        return this;
    }

    /// <summary>
    /// this /= s (torch's div_; floating point only). Multiplies by 1/s as <c>this / s</c> does, so the two give the same
    /// bits: standardising a data set in place (<c>x.SubInPlace(mean).DivInPlace(std)</c>) costs no second copy of it.
    /// </summary>
    public Tensor DivInPlace(double s)
    {
        Guard.Floating(this, nameof(DivInPlace));
        return MulInPlace(1.0 / s);
    }

    /// <summary>Sets every element to <paramref name="value"/>. Returns this.</summary>
    public Tensor Fill(double value)
    {
        CheckInPlace(nameof(Fill));
        FillRaw(value);
        return this;
    }

    /// <summary>Sets every element to zero. Returns this.</summary>
    public Tensor Zero() => Fill(0);

    /// <summary>Copies <paramref name="source"/> (broadcast to this shape) into this tensor. Returns this.</summary>
    public Tensor CopyFrom(Tensor source)
    {
        CheckInPlaceOperand(source, nameof(CopyFrom));
        CheckInPlace(nameof(CopyFrom));
        CopyRaw(source, this);
        return this;
    }
}
