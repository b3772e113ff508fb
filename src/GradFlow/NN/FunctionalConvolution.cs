namespace GradFlow.NN;

public static partial class Functional
{
    /// <summary>
    /// 2-d cross-correlation (torch.nn.functional.conv2d): input (N, C, H, W) or (C, H, W), weight
    /// (O, C/groups, kh, kw), optional bias (O). Stride, padding and dilation default to 1, 0, 1.
    /// </summary>
    public static Tensor Conv2d(Tensor input, Tensor weight, Tensor? bias = null, (int H, int W)? stride = null,
        (int H, int W)? padding = null, (int H, int W)? dilation = null, int groups = 1)
    {
        Guard.NotNull(input, nameof(Conv2d), nameof(input));
        Guard.NotNull(weight, nameof(Conv2d), nameof(weight));
        return Unbatched(input, 3, x => Tensor.Conv2d(x, weight, bias, stride ?? (1, 1), padding ?? (0, 0), dilation ?? (1, 1), groups));
    }

    /// <summary>1-d cross-correlation: input (N, C, L) or (C, L), weight (O, C/groups, k); computed as a 2-d one of height 1.</summary>
    public static Tensor Conv1d(Tensor input, Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0, int dilation = 1, int groups = 1)
    {
        Guard.NotNull(input, nameof(Conv1d), nameof(input));
        Guard.NotNull(weight, nameof(Conv1d), nameof(weight));
        if (weight.Rank != 3) Guard.ThrowArg(nameof(Conv1d), nameof(weight), $"weight must be (O, C/groups, k), got {Guard.Shape(weight)}.");
        var w2 = weight.Unsqueeze(2);
        return Unbatched(input, 2, x => Tensor.Conv2d(x.Unsqueeze(2), w2, bias, (1, stride), (0, padding), (1, dilation), groups).Squeeze(2));
    }

    /// <summary>
    /// Transposed 2-d convolution (torch.nn.functional.conv_transpose2d): input (N, Cin, H, W), weight
    /// (Cin, Cout/groups, kh, kw); the adjoint of Conv2d with the same stride, padding and dilation.
    /// </summary>
    public static Tensor ConvTranspose2d(Tensor input, Tensor weight, Tensor? bias = null, (int H, int W)? stride = null,
        (int H, int W)? padding = null, (int H, int W)? outputPadding = null, int groups = 1, (int H, int W)? dilation = null)
    {
        Guard.NotNull(input, nameof(ConvTranspose2d), nameof(input));
        Guard.NotNull(weight, nameof(ConvTranspose2d), nameof(weight));
        return Unbatched(input, 3, x => Tensor.ConvTranspose2d(x, weight, bias, stride ?? (1, 1), padding ?? (0, 0),
            outputPadding ?? (0, 0), groups, dilation ?? (1, 1)));
    }

    /// <summary>Max over kh x kw windows (torch.nn.functional.max_pool2d); the stride defaults to the kernel size.</summary>
    public static Tensor MaxPool2d(Tensor input, (int H, int W) kernelSize, (int H, int W)? stride = null, (int H, int W)? padding = null,
        (int H, int W)? dilation = null)
    {
        Guard.NotNull(input, nameof(MaxPool2d), nameof(input));
        return Unbatched(input, 3, x => Tensor.MaxPool2d(x, Window(x, kernelSize, stride ?? kernelSize, padding ?? (0, 0), dilation ?? (1, 1))));
    }

    /// <summary>Mean over kh x kw windows (torch.nn.functional.avg_pool2d); the stride defaults to the kernel size.</summary>
    public static Tensor AvgPool2d(Tensor input, (int H, int W) kernelSize, (int H, int W)? stride = null, (int H, int W)? padding = null,
        bool countIncludePad = true)
    {
        Guard.NotNull(input, nameof(AvgPool2d), nameof(input));
        return Unbatched(input, 3, x => Tensor.AvgPool2d(x, Window(x, kernelSize, stride ?? kernelSize, padding ?? (0, 0), (1, 1)), countIncludePad));
    }

    /// <summary>Average pooling to a fixed output size (torch.nn.functional.adaptive_avg_pool2d).</summary>
    public static Tensor AdaptiveAvgPool2d(Tensor input, (int H, int W) outputSize)
    {
        Guard.NotNull(input, nameof(AdaptiveAvgPool2d), nameof(input));
        return Unbatched(input, 3, x => Tensor.AdaptiveAvgPool2d(x, outputSize.H, outputSize.W));
    }

    /// <summary>
    /// Sliding windows to columns (torch.nn.functional.unfold): (N, C, H, W) to (N, C*kh*kw, L), zero padded.
    /// </summary>
    public static Tensor Unfold(Tensor input, (int H, int W) kernelSize, (int H, int W)? dilation = null, (int H, int W)? padding = null,
        (int H, int W)? stride = null)
    {
        Guard.NotNull(input, nameof(Unfold), nameof(input));
        Guard.Rank(input, 4, nameof(Unfold));
        return Tensor.Im2Col(input, Window(input, kernelSize, stride ?? (1, 1), padding ?? (0, 0), dilation ?? (1, 1)));
    }

    /// <summary>Columns back to an image of <paramref name="outputSize"/>, summing overlaps (torch.nn.functional.fold).</summary>
    public static Tensor Fold(Tensor input, (int H, int W) outputSize, (int H, int W) kernelSize, (int H, int W)? dilation = null,
        (int H, int W)? padding = null, (int H, int W)? stride = null)
    {
        Guard.NotNull(input, nameof(Fold), nameof(input));
        var (s, p, d) = (stride ?? (1, 1), padding ?? (0, 0), dilation ?? (1, 1));
        return Tensor.Col2Im(input, new Window2d(kernelSize.H, kernelSize.W, s.H, s.W, p.H, p.W, d.H, d.W, outputSize.H, outputSize.W));
    }

    private static Window2d Window(Tensor x, (int H, int W) k, (int H, int W) s, (int H, int W) p, (int H, int W) d) =>
        new(k.H, k.W, s.H, s.W, p.H, p.W, d.H, d.W, x.Size(-2), x.Size(-1));

    /// <summary>Runs <paramref name="f"/> on a batch: an input of rank <paramref name="unbatchedRank"/> gets a batch dim of 1 for the call.</summary>
    private static Tensor Unbatched(Tensor input, int unbatchedRank, Func<Tensor, Tensor> f) =>
        input.Rank == unbatchedRank ? f(input.Unsqueeze(0)).Squeeze(0) : f(input);
}
