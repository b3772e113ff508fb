namespace GradFlow;

// Joining and splitting along a dim. Split and Chunk are views; Cat and Stack copy.
public sealed partial class Tensor
{
    /// <summary>Concatenates tensors along an existing dim.</summary>
    public static Tensor Cat(IReadOnlyList<Tensor> tensors, int dim = 0)
    {
        Guard.NotNull(tensors, nameof(Cat), nameof(tensors));
        if (tensors.Count == 0) Guard.ThrowArg(nameof(Cat), nameof(tensors), "expects at least one tensor.");
        var first = tensors[0];
        Guard.NotNull(first, nameof(Cat), nameof(tensors));
        int d = Guard.Dim(dim, first.Rank, nameof(Cat));
        if (first.Rank == 0) Guard.ThrowArg(nameof(Cat), nameof(tensors), "zero-dimensional tensors cannot be concatenated; use Stack.");
        var shape = (int[])first.ShapeArray.Clone();
        shape[d] = 0;
        var sizes = new int[tensors.Count];
        for (int i = 0; i < tensors.Count; i++)
        {
            var t = tensors[i];
            Guard.NotNull(t, nameof(Cat), nameof(tensors));
            Guard.SameDType(first, t, nameof(Cat));
            bool ok = t.Rank == first.Rank;
            for (int k = 0; ok && k < t.Rank; k++) ok = k == d || t.ShapeArray[k] == first.ShapeArray[k];
            if (!ok) Guard.ThrowArg(nameof(Cat), nameof(tensors), $"tensor {i} has shape {Guard.Shape(t)}, which does not match {Guard.Shape(first)} outside dim {d}.");
            sizes[i] = t.ShapeArray[d];
            shape[d] += sizes[i];
        }
        var y = Empty(shape, first.DType);
        int at = 0;
        foreach (var t in tensors)
        {
            var view = y.AsStridedView(t.ShapeArray, y.StridesArray, at * y.StridesArray[d]);
            CopyRaw(t, view);
            at += t.ShapeArray[d];
        }
        var inputs = tensors as Tensor[] ?? [.. tensors];
        return Autograd.Record(OpNames.Cat, y, Autograd.NeedsGrad(inputs) ? new CatBackward(d, sizes) : null, inputs);
    }

    /// <summary>Stacks same-shaped tensors along a new dim.</summary>
    public static Tensor Stack(IReadOnlyList<Tensor> tensors, int dim = 0)
    {
        Guard.NotNull(tensors, nameof(Stack), nameof(tensors));
        if (tensors.Count == 0) Guard.ThrowArg(nameof(Stack), nameof(tensors), "expects at least one tensor.");
        foreach (var t in tensors) Guard.NotNull(t, nameof(Stack), nameof(tensors));
        int d = Guard.Dim(dim, tensors[0].Rank + 1, nameof(Stack));
        for (int i = 1; i < tensors.Count; i++)
            if (!Shapes.Equal(tensors[i].ShapeArray, tensors[0].ShapeArray))
                Guard.ThrowArg(nameof(Stack), nameof(tensors), $"tensor {i} has shape {Guard.Shape(tensors[i])}, expected {Guard.Shape(tensors[0])} like tensor 0.");
        var expanded = new Tensor[tensors.Count];
        for (int i = 0; i < expanded.Length; i++) expanded[i] = tensors[i].Unsqueeze(d);
        return Cat(expanded, d);
    }

    /// <summary>Splits into pieces of <paramref name="splitSize"/> along a dim (the last may be smaller); views.</summary>
    public Tensor[] Split(int splitSize, int dim = 0)
    {
        int d = Guard.IndexedDim(dim, this, nameof(Split));
        if (splitSize <= 0) Guard.ThrowArg(nameof(Split), nameof(splitSize), $"split size must be positive, got {splitSize}.");
        int size = ShapeArray[d];
        var sizes = new int[Math.Max(1, (size + splitSize - 1) / splitSize)];
        for (int i = 0; i < sizes.Length; i++) sizes[i] = Math.Min(splitSize, size - i * splitSize);
        return Split(sizes, d);
    }

    /// <summary>Splits into pieces of the given sizes along a dim; views.</summary>
    public Tensor[] Split(int[] sizes, int dim = 0)
    {
        Guard.NotNull(sizes, nameof(Split), nameof(sizes));
        int d = Guard.IndexedDim(dim, this, nameof(Split));
        if (sizes.Sum() != ShapeArray[d] || sizes.Any(s => s < 0))
            Guard.ThrowArg(nameof(Split), nameof(sizes), $"sizes {Guard.Shape(sizes)} do not add up to dim {d} of shape {Guard.Shape(this)}.");
        // One op with a view per piece (PyTorch's split_with_sizes): its backward is one Cat of the pieces'
        // gradients, where separate Narrows would each embed their piece in a full-size zero tensor to be summed.
        var parts = new Tensor[sizes.Length];
        for (int i = 0, at = 0; i < sizes.Length; at += sizes[i], i++)
        {
            var shape = (int[])ShapeArray.Clone();
            shape[d] = sizes[i];
            parts[i] = AsStridedView(shape, (int[])StridesArray.Clone(), Offset + (at * StridesArray[d]));
        }
        return Autograd.Record(OpNames.Split, parts, Autograd.NeedsGrad(this) ? new SplitBackward(d, sizes, ShapeArray) : null, [this]);
    }

    /// <summary>Splits into <paramref name="chunks"/> nearly equal pieces along a dim.</summary>
    public Tensor[] Chunk(int chunks, int dim = 0)
    {
        if (chunks <= 0) Guard.ThrowArg(nameof(Chunk), nameof(chunks), $"chunks must be positive, got {chunks}.");
        int d = Guard.IndexedDim(dim, this, nameof(Chunk));
        return Split(Math.Max(1, (ShapeArray[d] + chunks - 1) / chunks), d);
    }
}

internal sealed class CatBackward(int dim, int[] sizes) : Node
{
    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        var parts = g[0]!.Split(sizes, dim);
        return parts;
    }
}

internal sealed class SplitBackward(int dim, int[] sizes, int[] inputShape) : Node(sizes.Length)
{
    // The pieces' gradients side by side, zeros for pieces that received none: a Cat, itself differentiable.
    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        var dtype = Array.Find(g, t => t is not null)!.DType;
        var parts = new Tensor[sizes.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (g[i] is { } gi) { parts[i] = gi; continue; }
            var shape = (int[])inputShape.Clone();
            shape[dim] = sizes[i];
            parts[i] = Tensor.Zeros(shape, dtype);
        }
        return [parts.Length == 1 ? parts[0] : Tensor.Cat(parts, dim)];
    }
}
