using GradFlow.NN;

namespace GradFlow.Onnx;

/// <summary>The built-in converters, one per module type, each writing the module's eval-mode forward as ONNX nodes.</summary>
internal static class OnnxConverters
{
    private delegate OnnxValue Converter<in T>(OnnxExportContext ctx, T module, OnnxValue x) where T : Module;

    public static Dictionary<Type, Func<OnnxExportContext, Module, OnnxValue, OnnxValue>> BuiltIn()
    {
        var map = new Dictionary<Type, Func<OnnxExportContext, Module, OnnxValue, OnnxValue>>();
        void Add<T>(Converter<T> c) where T : Module => map[typeof(T)] = (ctx, m, x) => c(ctx, (T)m, x);

        Add<Sequential>((ctx, m, x) => m.Aggregate(x, (v, child) => ctx.Emit(child, v)));
        Add<Residual>((ctx, m, x) => Binary(ctx, "Add", x, ctx.Emit(m.Inner, x)));
        Add<Identity>((_, _, x) => x);
        Add<Dropout>((_, _, x) => x);
        Add<Flatten>(Flatten);
        Add<Linear>(Linear);
        Add<Embedding>((ctx, m, x) => ctx.Node("Gather", [ctx.Parameter(m.Weight), x.Name], [.. x.Shape, m.EmbeddingDim], m.Weight.DType));

        Add<ReLU>((ctx, _, x) => ctx.Same("Relu", x));
        Add<Sigmoid>((ctx, _, x) => ctx.Same("Sigmoid", x));
        Add<Tanh>((ctx, _, x) => ctx.Same("Tanh", x));
        Add<LeakyReLU>((ctx, m, x) => ctx.Same("LeakyRelu", x, null, OnnxAttribute.Float("alpha", m.NegativeSlope)));
        Add<ELU>((ctx, m, x) => ctx.Same("Elu", x, null, OnnxAttribute.Float("alpha", m.Alpha)));
        Add<SELU>((ctx, _, x) => ctx.Same("Selu", x, null, OnnxAttribute.Float("alpha", 1.6732632423543772), OnnxAttribute.Float("gamma", 1.0507009873554805)));
        Add<SiLU>((ctx, _, x) => Binary(ctx, "Mul", x, ctx.Same("Sigmoid", x)));
        Add<GELU>((ctx, m, x) => Gelu(ctx, x, m.TanhApproximation));
        Add<Softplus>(Softplus);
        Add<Hardtanh>((ctx, m, x) => ctx.Same("Clip", x, [ctx.Scalar("min", m.MinVal, x.DType), ctx.Scalar("max", m.MaxVal, x.DType)]));
        Add<Softmax>((ctx, m, x) => ctx.Same("Softmax", x, null, OnnxAttribute.Int("axis", m.Dim)));
        Add<LogSoftmax>((ctx, m, x) => ctx.Same("LogSoftmax", x, null, OnnxAttribute.Int("axis", m.Dim)));
        Add<PReLU>((ctx, m, x) => ctx.Same("PRelu", x, [PerChannel(ctx, ctx.Parameter(m.Weight), m.Weight.NumEl, x.Rank, x.DType)]));

        Add<Conv2d>((ctx, m, x) => Conv(ctx, m, x, [m.KernelSize.H, m.KernelSize.W], [m.Stride.H, m.Stride.W], [m.Padding.H, m.Padding.W], [m.Dilation.H, m.Dilation.W]));
        Add<Conv1d>((ctx, m, x) => Conv(ctx, m, x, [m.KernelSize], [m.Stride], [m.Padding], [m.Dilation]));
        Add<ConvTranspose2d>(ConvTranspose);
        Add<MaxPool2d>((ctx, m, x) => Pool(ctx, "MaxPool", x, m.KernelSize, m.Stride, m.Padding, m.Dilation));
        Add<AvgPool2d>((ctx, m, x) => Pool(ctx, "AveragePool", x, m.KernelSize, m.Stride, m.Padding, null, OnnxAttribute.Int("count_include_pad", m.CountIncludePad ? 1 : 0)));
        Add<AdaptiveAvgPool2d>(AdaptiveAvgPool);

        Add<BatchNormBase>(BatchNorm);
        Add<LayerNorm>(LayerNorm);
        Add<GroupNorm>(GroupNorm);
        OnnxRecurrentConverters.AddTo(map);
        OnnxAttentionConverters.AddTo(map);
        return map;
    }

    /// <summary>A broadcasting binary op; the output takes the larger shape (the inputs here broadcast one way).</summary>
    internal static OnnxValue Binary(OnnxExportContext ctx, string op, OnnxValue a, OnnxValue b) =>
        ctx.Node(op, [a.Name, b.Name], a.Rank >= b.Rank ? a.Shape : b.Shape, a.DType);

    private static OnnxValue BinaryConst(OnnxExportContext ctx, string op, OnnxValue a, string hint, double value) =>
        ctx.Same(op, a, [ctx.Scalar(hint, value, a.DType)]);

    private static OnnxValue Flatten(OnnxExportContext ctx, Flatten m, OnnxValue x)
    {
        int start = m.StartDim < 0 ? m.StartDim + x.Rank : m.StartDim, end = m.EndDim < 0 ? m.EndDim + x.Rank : m.EndDim;
        if (start < 0 || end >= x.Rank || start > end)
            Guard.Throw("OnnxExport", $"Flatten({m.StartDim}, {m.EndDim}) does not fit an input of rank {x.Rank}.");
        var merged = x.Shape[start..(end + 1)];
        int size = merged.Any(d => d < 0) ? -1 : merged.Aggregate(1, (a, d) => a * d);
        int[] shape = [.. x.Shape[..start], size, .. x.Shape[(end + 1)..]];
        // ONNX Flatten always gives rank 2; it is the common case (start 1, end last).
        if (start == 1 && end == x.Rank - 1) return ctx.Node("Flatten", [x.Name], shape, x.DType, OnnxAttribute.Int("axis", 1));
        return ctx.Reshape(x, shape);
    }

    private static OnnxValue Linear(OnnxExportContext ctx, Linear m, OnnxValue x)
    {
        int[] shape = [.. x.Shape[..^1], m.OutFeatures];
        string w = ctx.Parameter(m.Weight);
        if (x.Rank == 2)
        {
            string[] inputs = m.Bias is null ? [x.Name, w] : [x.Name, w, ctx.Parameter(m.Bias)];
            return ctx.Node("Gemm", inputs, shape, x.DType, OnnxAttribute.Int("transB", 1));
        }
        var wt = ctx.Node("Transpose", [w], [m.InFeatures, m.OutFeatures], x.DType, OnnxAttribute.Ints("perm", 1, 0));
        var y = ctx.Node("MatMul", [x.Name, wt.Name], shape, x.DType);
        return m.Bias is null ? y : ctx.Same("Add", y, [ctx.Parameter(m.Bias)]);
    }

    // GELU has no ONNX op before opset 20: composed as 0.5 x (1 + erf(x / sqrt 2)), or with the tanh approximation
    // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (Hendrycks and Gimpel 2016), as PyTorch exports it.
    internal static OnnxValue Gelu(OnnxExportContext ctx, OnnxValue x, bool tanhApproximation)
    {
        OnnxValue inner;
        if (tanhApproximation)
        {
            var cube = Binary(ctx, "Mul", Binary(ctx, "Mul", x, x), x);
            var sum = Binary(ctx, "Add", x, BinaryConst(ctx, "Mul", cube, "c", 0.044715));
            inner = ctx.Same("Tanh", BinaryConst(ctx, "Mul", sum, "k", Math.Sqrt(2 / Math.PI)));
        }
        else
        {
            inner = ctx.Same("Erf", BinaryConst(ctx, "Div", x, "sqrt2", Math.Sqrt(2)));
        }
        var half = BinaryConst(ctx, "Mul", BinaryConst(ctx, "Add", inner, "one", 1), "half", 0.5);
        return Binary(ctx, "Mul", x, half);
    }

    // PyTorch's softplus: log(1 + exp(beta x)) / beta, and x itself where beta x > threshold.
    private static OnnxValue Softplus(OnnxExportContext ctx, Softplus m, OnnxValue x)
    {
        var bx = m.Beta == 1 ? x : BinaryConst(ctx, "Mul", x, "beta", m.Beta);
        var sp = ctx.Same("Softplus", bx);
        if (m.Beta != 1) sp = BinaryConst(ctx, "Div", sp, "beta", m.Beta);
        var above = ctx.Node("Greater", [bx.Name, ctx.Scalar("threshold", m.Threshold, x.DType)], x.Shape, DType.Bool);
        return ctx.Node("Where", [above.Name, x.Name, sp.Name], x.Shape, x.DType);
    }

    /// <summary>A per-channel vector (C) reshaped to (C, 1, ...) so it broadcasts over an (N, C, ...) input.</summary>
    internal static string PerChannel(OnnxExportContext ctx, string vector, int channels, int rank, DType dtype)
    {
        if (rank <= 2 || channels == 1) return vector;
        var shape = new int[rank - 1];
        Array.Fill(shape, 1);
        shape[0] = channels;
        return ctx.Node("Reshape", [vector, ctx.Int64s("shape", [.. shape.Select(d => (long)d)])], shape, dtype).Name;
    }

    private static void NeedBatch(OnnxValue x, int spatial, string op)
    {
        if (x.Rank != spatial + 2)
            throw new NotSupportedException($"OnnxExport: {op} exports batched inputs of rank {spatial + 2}, got shape {Show(x.Shape)}.");
    }

    internal static string Show(int[] shape) => "[" + string.Join(", ", shape.Select(d => d < 0 ? "batch" : d.ToString(System.Globalization.CultureInfo.InvariantCulture))) + "]";

    private static long[] Pads(int[] padding) => [.. padding.Select(p => (long)p), .. padding.Select(p => (long)p)];

    private static OnnxValue Conv(OnnxExportContext ctx, ConvBase m, OnnxValue x, int[] kernel, int[] stride, int[] padding, int[] dilation)
    {
        NeedBatch(x, kernel.Length, m.TypeName);
        var shape = new int[x.Rank];
        (shape[0], shape[1]) = (x.Shape[0], m.OutChannels);
        for (int i = 0; i < kernel.Length; i++)
            shape[i + 2] = (x.Shape[i + 2] + 2 * padding[i] - dilation[i] * (kernel[i] - 1) - 1) / stride[i] + 1;
        string[] inputs = m.Bias is null ? [x.Name, ctx.Parameter(m.Weight)] : [x.Name, ctx.Parameter(m.Weight), ctx.Parameter(m.Bias)];
        return ctx.Node("Conv", inputs, shape, x.DType,
            OnnxAttribute.Ints("kernel_shape", [.. kernel.Select(k => (long)k)]), OnnxAttribute.Ints("strides", [.. stride.Select(s => (long)s)]),
            OnnxAttribute.Ints("pads", Pads(padding)), OnnxAttribute.Ints("dilations", [.. dilation.Select(d => (long)d)]), OnnxAttribute.Int("group", m.Groups));
    }

    private static OnnxValue ConvTranspose(OnnxExportContext ctx, ConvTranspose2d m, OnnxValue x)
    {
        NeedBatch(x, 2, m.TypeName);
        int[] k = [m.KernelSize.H, m.KernelSize.W], s = [m.Stride.H, m.Stride.W], p = [m.Padding.H, m.Padding.W];
        int[] op = [m.OutputPadding.H, m.OutputPadding.W], d = [m.Dilation.H, m.Dilation.W];
        int[] shape = [x.Shape[0], m.OutChannels, 0, 0];
        for (int i = 0; i < 2; i++) shape[i + 2] = (x.Shape[i + 2] - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1;
        string[] inputs = m.Bias is null ? [x.Name, ctx.Parameter(m.Weight)] : [x.Name, ctx.Parameter(m.Weight), ctx.Parameter(m.Bias)];
        return ctx.Node("ConvTranspose", inputs, shape, x.DType,
            OnnxAttribute.Ints("kernel_shape", k[0], k[1]), OnnxAttribute.Ints("strides", s[0], s[1]), OnnxAttribute.Ints("pads", Pads(p)),
            OnnxAttribute.Ints("output_padding", op[0], op[1]), OnnxAttribute.Ints("dilations", d[0], d[1]), OnnxAttribute.Int("group", m.Groups));
    }

    private static OnnxValue Pool(OnnxExportContext ctx, string op, OnnxValue x, (int H, int W) kernel, (int H, int W) stride, (int H, int W) padding,
        (int H, int W)? dilation, params OnnxAttribute[] more)
    {
        NeedBatch(x, 2, op);
        var d = dilation ?? (1, 1);
        int[] shape = [x.Shape[0], x.Shape[1],
            (x.Shape[2] + 2 * padding.H - d.H * (kernel.H - 1) - 1) / stride.H + 1,
            (x.Shape[3] + 2 * padding.W - d.W * (kernel.W - 1) - 1) / stride.W + 1];
        OnnxAttribute[] attributes = [OnnxAttribute.Ints("kernel_shape", kernel.H, kernel.W), OnnxAttribute.Ints("strides", stride.H, stride.W),
            OnnxAttribute.Ints("pads", padding.H, padding.W, padding.H, padding.W), .. more];
        if (dilation is not null) attributes = [.. attributes, OnnxAttribute.Ints("dilations", d.H, d.W)];
        return ctx.Node(op, [x.Name], shape, x.DType, attributes);
    }

    // Adaptive pooling has no ONNX op: an output of 1x1 is GlobalAveragePool, and an input that the output
    // divides evenly is an AveragePool whose window is the quotient (the windows then do not overlap).
    private static OnnxValue AdaptiveAvgPool(OnnxExportContext ctx, AdaptiveAvgPool2d m, OnnxValue x)
    {
        NeedBatch(x, 2, m.TypeName);
        var (oh, ow) = m.OutputSize;
        if ((oh, ow) == (1, 1)) return ctx.Node("GlobalAveragePool", [x.Name], [x.Shape[0], x.Shape[1], 1, 1], x.DType);
        int h = x.Shape[2], w = x.Shape[3];
        if (h % oh != 0 || w % ow != 0)
            throw new NotSupportedException($"OnnxExport: AdaptiveAvgPool2d to ({oh}, {ow}) from {h}x{w} has uneven windows, which ONNX cannot express.");
        return Pool(ctx, "AveragePool", x, (h / oh, w / ow), (h / oh, w / ow), (0, 0), null);
    }

    private static OnnxValue BatchNorm(OnnxExportContext ctx, BatchNormBase m, OnnxValue x)
    {
        if (m.RunningMean is null || m.RunningVar is null)
            throw new NotSupportedException($"OnnxExport: {m.TypeName} at '{m.Path}' tracks no running statistics, so its eval forward uses batch statistics, which ONNX's BatchNormalization does not.");
        string scale = m.Weight is null ? ctx.Constant(Tensor.Ones([m.NumFeatures], x.DType), "scale") : ctx.Parameter(m.Weight);
        string bias = m.Bias is null ? ctx.Constant(Tensor.Zeros([m.NumFeatures], x.DType), "bias") : ctx.Parameter(m.Bias);
        return ctx.Same("BatchNormalization", x, [scale, bias, ctx.Parameter(m.RunningMean), ctx.Parameter(m.RunningVar)], OnnxAttribute.Float("epsilon", m.Eps));
    }

    private static OnnxValue LayerNorm(OnnxExportContext ctx, LayerNorm m, OnnxValue x)
    {
        int k = m.NormalizedShape.Length;
        string scale = m.Weight is null ? ctx.Constant(Tensor.Ones(m.NormalizedShape, x.DType), "scale") : ctx.Parameter(m.Weight);
        string[] more = m.Bias is null ? [scale] : [scale, ctx.Parameter(m.Bias)];
        return ctx.Same("LayerNormalization", x, more, OnnxAttribute.Int("axis", -k), OnnxAttribute.Float("epsilon", m.Eps));
    }

    // GroupNormalization is opset 18 (and was redefined in 21): as PyTorch does for opset 17, the input is viewed
    // as (N, G, rest), InstanceNormalization normalises each group, and the per-channel affine follows.
    private static OnnxValue GroupNorm(OnnxExportContext ctx, GroupNorm m, OnnxValue x)
    {
        if (x.Rank < 2 || x.Shape[1] != m.NumChannels || x.Shape.Skip(1).Any(d => d < 0))
            throw new NotSupportedException($"OnnxExport: GroupNorm exports (batch, {m.NumChannels}, ...) inputs with static sizes after the batch, got {Show(x.Shape)}.");
        int rest = x.Shape.Skip(1).Aggregate(1, (a, d) => a * d) / m.NumGroups;
        var grouped = ctx.Reshape(x, [x.Shape[0], m.NumGroups, rest]);
        var normed = ctx.Same("InstanceNormalization", grouped,
            [ctx.Constant(Tensor.Ones([m.NumGroups], x.DType), "scale"), ctx.Constant(Tensor.Zeros([m.NumGroups], x.DType), "bias")],
            OnnxAttribute.Float("epsilon", m.Eps));
        var y = ctx.Reshape(normed, x.Shape);
        if (m.Weight is not null) y = ctx.Same("Mul", y, [PerChannel(ctx, ctx.Parameter(m.Weight), m.NumChannels, x.Rank, x.DType)]);
        if (m.Bias is not null) y = ctx.Same("Add", y, [PerChannel(ctx, ctx.Parameter(m.Bias), m.NumChannels, x.Rank, x.DType)]);
        return y;
    }
}
