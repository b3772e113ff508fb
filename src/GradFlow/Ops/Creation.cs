namespace GradFlow;

public sealed partial class Tensor
{
    private static int[] CheckShape(ReadOnlySpan<int> shape, string op)
    {
        foreach (int s in shape)
            if (s < 0) Guard.ThrowArg(op, nameof(shape), $"sizes must be non-negative, got {Guard.Shape(shape)}.");
        return shape.ToArray();
    }

    // An empty shape is a 0-d tensor, as torch.tensor(5.0): it holds exactly one element. (A call with no shape at all
    // binds to the one-argument overloads, which give a 1-d tensor.)
    private static int[] ShapeFor(int length, ReadOnlySpan<int> shape, string op)
    {
        if (shape.IsEmpty && length != 1)
            Guard.ThrowArg(op, nameof(shape), $"an empty shape [] is a 0-d tensor, which holds one element; got {length}. Leave the shape out for a 1-d tensor.");
        var s = CheckShape(shape, op);
        if (Shapes.Count(s) != length)
            Guard.ThrowArg(op, nameof(shape), $"{length} elements do not fill shape {Guard.Shape(s)} ({Shapes.Count(s)} elements).");
        return s;
    }

    /// <summary>A 1-d float32 tensor holding a copy of <paramref name="data"/>.</summary>
    public static Tensor FromArray(float[] data) => FromArray(data, [data?.Length ?? 0]); // null is refused by the overload it calls

    /// <summary>A float32 tensor holding a copy of <paramref name="data"/> in <paramref name="shape"/>; an empty shape gives a 0-d tensor of one element.</summary>
    public static Tensor FromArray(float[] data, params ReadOnlySpan<int> shape)
    {
        Guard.NotNull(data, nameof(FromArray), nameof(data));
        return new Tensor(new Storage((float[])data.Clone(), DType.Float32), ShapeFor(data.Length, shape, nameof(FromArray)));
    }

    /// <summary>A 1-d float64 tensor holding a copy of <paramref name="data"/>.</summary>
    public static Tensor FromArray(double[] data) => FromArray(data, [data?.Length ?? 0]); // null is refused by the overload it calls

    /// <summary>A float64 tensor holding a copy of <paramref name="data"/> in <paramref name="shape"/>; an empty shape gives a 0-d tensor of one element.</summary>
    public static Tensor FromArray(double[] data, params ReadOnlySpan<int> shape)
    {
        Guard.NotNull(data, nameof(FromArray), nameof(data));
        return new Tensor(new Storage((double[])data.Clone(), DType.Float64), ShapeFor(data.Length, shape, nameof(FromArray)));
    }

    /// <summary>A 1-d int64 tensor holding a copy of <paramref name="data"/>.</summary>
    public static Tensor FromArray(long[] data) => FromArray(data, [data?.Length ?? 0]); // null is refused by the overload it calls

    /// <summary>An int64 tensor holding a copy of <paramref name="data"/> in <paramref name="shape"/>; an empty shape gives a 0-d tensor of one element.</summary>
    public static Tensor FromArray(long[] data, params ReadOnlySpan<int> shape)
    {
        Guard.NotNull(data, nameof(FromArray), nameof(data));
        return new Tensor(new Storage((long[])data.Clone(), DType.Int64), ShapeFor(data.Length, shape, nameof(FromArray)));
    }

    /// <summary>A 0-d tensor.</summary>
    public static Tensor Scalar(double value, DType dtype = DType.Float32) => Full([], value, dtype);

    /// <summary>A tensor of zeros.</summary>
    public static Tensor Zeros(params ReadOnlySpan<int> shape) => Zeros(shape, DType.Float32);

    /// <summary>A tensor of zeros of the given dtype.</summary>
    public static Tensor Zeros(ReadOnlySpan<int> shape, DType dtype, bool requiresGrad = false) =>
        EmptyZeroed(CheckShape(shape, nameof(Zeros)), dtype).RequireGradIf(requiresGrad);

    /// <summary>A tensor of ones.</summary>
    public static Tensor Ones(params ReadOnlySpan<int> shape) => Full(shape, 1.0);

    /// <summary>A tensor of ones of the given dtype.</summary>
    public static Tensor Ones(ReadOnlySpan<int> shape, DType dtype, bool requiresGrad = false) => Full(shape, 1.0, dtype, requiresGrad);

    /// <summary>A tensor filled with <paramref name="value"/>.</summary>
    public static Tensor Full(ReadOnlySpan<int> shape, double value, DType dtype = DType.Float32, bool requiresGrad = false)
    {
        var t = Empty(CheckShape(shape, nameof(Full)), dtype);
        t.FillRaw(value);
        return t.RequireGradIf(requiresGrad);
    }

    /// <summary>Zeros with the shape and dtype of <paramref name="like"/>.</summary>
    public static Tensor ZerosLike(Tensor like) => EmptyZeroed(like.ShapeArray.ToArray(), like.DType);

    /// <summary>Ones with the shape and dtype of <paramref name="like"/>.</summary>
    public static Tensor OnesLike(Tensor like) => Full(like.ShapeArray, 1.0, like.DType);

    /// <summary>A constant with the shape and dtype of <paramref name="like"/>.</summary>
    public static Tensor FullLike(Tensor like, double value) => Full(like.ShapeArray, value, like.DType);

    /// <summary>Values from start (inclusive) to end (exclusive) in steps of step, as torch.arange.</summary>
    public static Tensor Arange(double start, double end, double step = 1, DType dtype = DType.Float32)
    {
        if (step == 0 || double.IsNaN(step) || !double.IsFinite(start) || !double.IsFinite(end))
            Guard.Throw(nameof(Arange), $"invalid range start={start}, end={end}, step={step}.");
        double count = Math.Ceiling((end - start) / step);
        if (count > int.MaxValue) Guard.Throw(nameof(Arange), $"range start={start}, end={end}, step={step} is too long.");
        int n = Math.Max(0, (int)count);
        var t = Empty([n], dtype);
        for (int i = 0; i < n; i++) t.SetRaw(i, start + i * step);
        return t;
    }

    /// <summary>0, 1, ..., end-1.</summary>
    public static Tensor Arange(int end, DType dtype = DType.Float32) => Arange(0, end, 1, dtype);

    /// <summary><paramref name="steps"/> evenly spaced values from start to end inclusive.</summary>
    public static Tensor Linspace(double start, double end, int steps, DType dtype = DType.Float32)
    {
        if (steps < 0) Guard.ThrowArg(nameof(Linspace), nameof(steps), $"steps must be non-negative, got {steps}.");
        var t = Empty([steps], dtype);
        double step = steps > 1 ? (end - start) / (steps - 1) : 0;
        // Fill from both ends, as PyTorch does, so the last value is exactly end.
        for (int i = 0; i < steps; i++) t.SetRaw(i, steps == 1 ? start : i < steps / 2 ? start + i * step : end - (steps - 1 - i) * step);
        return t;
    }

    /// <summary>An n x m identity matrix (m defaults to n).</summary>
    public static Tensor Eye(int n, int m = -1, DType dtype = DType.Float32)
    {
        if (m < 0) m = n;
        if (n < 0) Guard.ThrowArg(nameof(Eye), nameof(n), $"size must be non-negative, got {n}.");
        var t = EmptyZeroed([n, m], dtype);
        for (int i = 0; i < Math.Min(n, m); i++) t.SetRaw(i * m + i, 1);
        return t;
    }

    /// <summary>Uniform samples in [0, 1).</summary>
    public static Tensor Rand(ReadOnlySpan<int> shape, DType dtype = DType.Float32, Generator? generator = null, bool requiresGrad = false)
    {
        Guard.Floating(Zeros([], dtype), nameof(Rand), nameof(dtype));
        var g = generator ?? Generator.Default;
        var t = Empty(CheckShape(shape, nameof(Rand)), dtype);
        if (dtype == DType.Float32) { var s = t.Span<float>(); for (int i = 0; i < s.Length; i++) s[i] = g.NextFloat(); }
        else { var s = t.Span<double>(); for (int i = 0; i < s.Length; i++) s[i] = g.NextDouble(); }
        return t.RequireGradIf(requiresGrad);
    }

    /// <summary>Uniform samples in [0, 1) of float32.</summary>
    public static Tensor Rand(params ReadOnlySpan<int> shape) => Rand(shape, DType.Float32);

    /// <summary>Standard normal samples.</summary>
    public static Tensor Randn(ReadOnlySpan<int> shape, DType dtype = DType.Float32, Generator? generator = null, bool requiresGrad = false)
    {
        Guard.Floating(Zeros([], dtype), nameof(Randn), nameof(dtype));
        var g = generator ?? Generator.Default;
        var t = Empty(CheckShape(shape, nameof(Randn)), dtype);
        if (dtype == DType.Float32) { var s = t.Span<float>(); for (int i = 0; i < s.Length; i++) s[i] = (float)g.NextNormal(); }
        else { var s = t.Span<double>(); for (int i = 0; i < s.Length; i++) s[i] = g.NextNormal(); }
        return t.RequireGradIf(requiresGrad);
    }

    /// <summary>Standard normal samples of float32.</summary>
    public static Tensor Randn(params ReadOnlySpan<int> shape) => Randn(shape, DType.Float32);

    /// <summary>Uniform integers in [low, high), int64 by default.</summary>
    public static Tensor RandInt(long low, long high, ReadOnlySpan<int> shape, DType dtype = DType.Int64, Generator? generator = null)
    {
        if (high <= low) Guard.Throw(nameof(RandInt), $"empty range [{low}, {high}).");
        var g = generator ?? Generator.Default;
        var t = Empty(CheckShape(shape, nameof(RandInt)), dtype);
        for (int i = 0; i < t.NumEl; i++) t.SetRaw(i, low + g.NextInt64(high - low));
        return t;
    }

    private Tensor RequireGradIf(bool requiresGrad)
    {
        if (requiresGrad) RequiresGrad = true;
        return this;
    }

    /// <summary>Writes element i of a contiguous tensor (creation helper).</summary>
    private void SetRaw(int i, double value)
    {
        switch (DType)
        {
            case DType.Float32: Storage.As<float>()[Offset + i] = (float)value; break;
            case DType.Float64: Storage.As<double>()[Offset + i] = value; break;
            default: Storage.As<long>()[Offset + i] = (long)value; break;
        }
    }

    /// <summary>Fills every element (through strides) without touching autograd or the version.</summary>
    internal void FillRaw(double value)
    {
        if (IsContiguous)
        {
            switch (DType)
            {
                case DType.Float32: Span<float>().Fill((float)value); break;
                case DType.Float64: Span<double>().Fill(value); break;
                default: Span<long>().Fill((long)value); break;
            }
            return;
        }
        var src = Full([], value, DType);
        CopyRaw(src.Expand(ShapeArray), this);
    }
}
