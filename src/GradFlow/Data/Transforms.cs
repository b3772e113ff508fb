namespace GradFlow.Data;

/// <summary>A function of one example's input, applied when it is read (torchvision.transforms style).</summary>
public interface ITransform
{
    /// <summary>The transformed input; the argument is not modified.</summary>
    Tensor Apply(Tensor input);
}

/// <summary>Applies transforms in order.</summary>
public sealed class Compose(params ITransform[] transforms) : ITransform
{
    private readonly ITransform[] _transforms = Guard.NotNull(transforms, "Compose", nameof(transforms));

    /// <inheritdoc />
    public Tensor Apply(Tensor input)
    {
        foreach (var t in _transforms) input = t.Apply(input);
        return input;
    }
}

/// <summary>
/// (x − mean[c]) / std[c] per channel, channels along dim 0 of a [C, ...] input (torchvision Normalize);
/// a single mean and std apply to every element.
/// </summary>
public sealed class Normalize : ITransform
{
    private readonly double[] _mean, _std;

    /// <summary>Per-channel mean and standard deviation (same length; std non-zero).</summary>
    public Normalize(double[] mean, double[] std)
    {
        Guard.NotNull(mean, "Normalize", nameof(mean));
        Guard.NotNull(std, "Normalize", nameof(std));
        if (mean.Length == 0 || mean.Length != std.Length)
            Guard.Throw(nameof(Normalize), $"mean ({mean.Length} values) and std ({std.Length} values) must be non-empty and of the same length.");
        if (std.Any(s => s == 0 || !double.IsFinite(s))) Guard.ThrowArg(nameof(Normalize), nameof(std), "std values must be finite and non-zero.");
        (_mean, _std) = ((double[])mean.Clone(), (double[])std.Clone());
    }

    /// <inheritdoc />
    public Tensor Apply(Tensor input)
    {
        Guard.NotNull(input, "Normalize.Apply", nameof(input));
        Guard.Floating(input, nameof(Normalize));
        if (_mean.Length == 1) return (input - _mean[0]) / _std[0];
        if (input.Rank == 0 || input.Size(0) != _mean.Length)
            Guard.ThrowArg(nameof(Normalize), nameof(input), $"expects {_mean.Length} channels along dim 0, got shape {Guard.Shape(input)}.");
        var shape = new int[input.Rank];
        Array.Fill(shape, 1);
        shape[0] = _mean.Length;
        var mean = Tensor.FromArray(_mean).To(input.DType).Reshape(shape);
        var std = Tensor.FromArray(_std).To(input.DType).Reshape(shape);
        return (input - mean) / std;
    }
}

/// <summary>
/// Pads an [H, W] or [C, H, W] image with <c>padding</c> zeros on every side, then cuts a random
/// size×size window (torchvision RandomCrop with padding; the standard CIFAR/Fashion-MNIST augmentation).
/// </summary>
public sealed class RandomCrop : ITransform
{
    private readonly int _size, _padding;
    private readonly Generator _generator;

    /// <summary>Crops <paramref name="size"/>×<paramref name="size"/> after padding, positions drawn from <paramref name="generator"/>.</summary>
    public RandomCrop(int size, int padding = 0, Generator? generator = null)
    {
        if (size <= 0) Guard.ThrowArg(nameof(RandomCrop), nameof(size), $"size must be positive, got {size}.");
        if (padding < 0) Guard.ThrowArg(nameof(RandomCrop), nameof(padding), $"padding must be non-negative, got {padding}.");
        (_size, _padding, _generator) = (size, padding, generator ?? Generator.Default);
    }

    /// <inheritdoc />
    public Tensor Apply(Tensor input)
    {
        Guard.NotNull(input, "RandomCrop.Apply", nameof(input));
        if (input.Rank is not (2 or 3))
            Guard.ThrowArg(nameof(RandomCrop), nameof(input), $"expects an [H, W] or [C, H, W] image, got shape {Guard.Shape(input)}.");
        int h = input.Size(-2), w = input.Size(-1), p = _padding;
        if (h + 2 * p < _size || w + 2 * p < _size)
            Guard.ThrowArg(nameof(RandomCrop), nameof(input), $"a {_size}x{_size} crop does not fit a {h}x{w} image padded by {p}.");
        int top = (int)_generator.NextInt64(h + 2 * p - _size + 1);
        int left = (int)_generator.NextInt64(w + 2 * p - _size + 1);
        var x = input.Rank == 2 ? input.Unsqueeze(0) : input;
        int c = x.Size(0);
        var output = Tensor.Zeros([c, _size, _size], x.DType);
        // Copy the part of the window that lies inside the image; the rest is the zero padding.
        int y0 = Math.Max(0, top - p), y1 = Math.Min(h, top - p + _size);
        int x0 = Math.Max(0, left - p), x1 = Math.Min(w, left - p + _size);
        if (y1 > y0 && x1 > x0)
        {
            var src = x.Slice(1, y0, y1).Slice(2, x0, x1);
            var dst = output.Slice(1, y0 - (top - p), y1 - (top - p)).Slice(2, x0 - (left - p), x1 - (left - p));
            using (Autograd.NoGrad()) dst.CopyFrom(src);
        }
        return input.Rank == 2 ? output.Squeeze(0) : output;
    }
}

/// <summary>Mirrors an image left-right (its last dimension) with probability p (torchvision RandomHorizontalFlip).</summary>
public sealed class RandomHorizontalFlip : ITransform
{
    private readonly double _p;
    private readonly Generator _generator;

    /// <summary>Flips with probability <paramref name="p"/>, drawn from <paramref name="generator"/>.</summary>
    public RandomHorizontalFlip(double p = 0.5, Generator? generator = null)
    {
        if (!(p >= 0 && p <= 1)) Guard.ThrowArg(nameof(RandomHorizontalFlip), nameof(p), $"p must be in [0, 1], got {p}.");
        (_p, _generator) = (p, generator ?? Generator.Default);
    }

    /// <inheritdoc />
    public Tensor Apply(Tensor input)
    {
        Guard.NotNull(input, "RandomHorizontalFlip.Apply", nameof(input));
        if (input.Rank < 1) Guard.ThrowArg(nameof(RandomHorizontalFlip), nameof(input), "expects an image with a width dimension.");
        if (_generator.NextDouble() >= _p) return input;
        int w = input.Size(-1);
        return input.IndexSelect(-1, Tensor.Arange(w - 1, -1, -1, DType.Int64));
    }
}
