using GradFlow.NN;

namespace GradFlow.Onnx;

/// <summary>
/// The ONNX operators GradFlow imports, each written with GradFlow's differentiable tensor ops so an imported
/// graph trains. Attribute defaults follow the ONNX operator docs for opsets 13-17.
/// </summary>
internal static class OnnxOps
{
    /// <summary>The operator types <see cref="Run"/> handles.</summary>
    public static readonly HashSet<string> Supported =
    [
        "Identity", "Dropout", "Constant", "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Erf", "Exp", "Log", "Neg", "Abs", "Reciprocal",
        "Relu", "Sigmoid", "Tanh", "LeakyRelu", "Elu", "Selu", "Softplus", "Softmax", "LogSoftmax", "Clip", "PRelu",
        "Gemm", "MatMul", "Flatten", "Reshape", "Transpose", "Unsqueeze", "Squeeze", "Concat", "Slice", "Shape", "ConstantOfShape", "Gather", "Cast", "Where",
        "Greater", "Less", "Equal", "Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "Pad",
        "BatchNormalization", "LayerNormalization", "InstanceNormalization", "ReduceMean", "LSTM", "GRU", "RNN",
    ];

    /// <summary>
    /// Runs <paramref name="node"/> on its inputs (null for an omitted optional input); returns its first output.
    /// The recurrent operators, which have several, run through <see cref="OnnxRecurrentOps.Run"/>.
    /// </summary>
    public static Tensor Run(OnnxNode node, Tensor?[] x)
    {
        var a = node.Attributes;
        Tensor In(int i) => i < x.Length && x[i] is { } t ? t : throw Unsupported(node, $"input {i} is missing");
        Tensor? Opt(int i) => i < x.Length ? x[i] : null;
        switch (node.OpType)
        {
            case "Identity" or "Dropout": return In(0);
            case "Add": return In(0) + In(1);
            case "Sub": return In(0) - In(1);
            case "Mul": return In(0) * In(1);
            case "Div": return In(0).DType == DType.Int64 && In(1).DType == DType.Int64 ? IntegerDivide(In(0), In(1), node) : In(0) / In(1);
            case "Pow": return In(1).Rank == 0 && In(1).NumEl == 1 ? In(0).Pow(In(1).Item()) : In(0).Pow(In(1));
            case "Sqrt": return In(0).Sqrt();
            case "Erf": return In(0).Erf();
            case "Exp": return In(0).Exp();
            case "Log": return In(0).Log();
            case "Neg": return In(0).Neg();
            case "Abs": return In(0).Abs();
            case "Reciprocal": return In(0).Reciprocal();
            case "Relu": return In(0).Relu();
            case "Sigmoid": return In(0).Sigmoid();
            case "Tanh": return In(0).Tanh();
            case "LeakyRelu": return Functional.LeakyRelu(In(0), Float(a, "alpha", 0.01f));
            case "Elu": return Functional.Elu(In(0), Float(a, "alpha", 1f));
            case "Selu": return Functional.Elu(In(0), Float(a, "alpha", 1.67326319217681884765625f)) * Float(a, "gamma", 1.05070102214813232421875f);
            case "Softplus": return In(0).Softplus();
            case "Softmax": return In(0).Softmax((int)Int(a, "axis", -1));
            case "LogSoftmax": return In(0).LogSoftmax((int)Int(a, "axis", -1));
            case "Clip": return In(0).Clamp(Opt(1)?.Item(), Opt(2)?.Item());
            // relu(x) - slope relu(-x): differentiable in the slope, which broadcasts as ONNX's PRelu says.
            case "PRelu": return In(0).Relu() - In(1) * In(0).Neg().Relu();
            case "Gemm": return Gemm(node, In(0), In(1), Opt(2));
            case "MatMul": return In(0).MatMul(In(1));
            case "Flatten":
                {
                    var t = In(0);
                    int axis = Axis((int)Int(a, "axis", 1), t.Rank + 1, node);
                    int outer = t.Shape.ToArray()[..axis].Aggregate(1, (p, d) => p * d);
                    return t.Reshape(outer, outer == 0 ? 0 : t.NumEl / outer);
                }
            case "Reshape": return Reshape(node, In(0), Longs(In(1)), Int(a, "allowzero", 0) != 0);
            case "Transpose":
                {
                    var t = In(0);
                    int[] perm = a.TryGetValue("perm", out var p) && p.Ints is { } ints ? [.. ints.Select(i => (int)i)] : [.. Enumerable.Range(0, t.Rank).Reverse()];
                    return t.Permute(perm);
                }
            case "Unsqueeze":
                {
                    var t = In(0);
                    var axes = Longs(In(1)).Select(v => Axis((int)v, t.Rank + (int)In(1).NumEl, node)).Order();
                    foreach (int ax in axes) t = t.Unsqueeze(ax);
                    return t;
                }
            case "Squeeze":
                {
                    var t = In(0);
                    if (Opt(1) is null) return t.Squeeze();
                    foreach (int ax in Longs(In(1)).Select(v => Axis((int)v, t.Rank, node)).OrderDescending()) t = t.Squeeze(ax);
                    return t;
                }
            case "Concat": return Tensor.Cat([.. x.Select((t, i) => t ?? In(i))], (int)Int(a, "axis", 0));
            case "Slice": return Slice(node, In(0), Longs(In(1)), Longs(In(2)), Opt(3) is { } sliceAxes ? Longs(sliceAxes) : null, Opt(4) is { } sliceSteps ? Longs(sliceSteps) : null);
            case "ConstantOfShape": return ConstantOfShape(node, Longs(In(0)));
            case "Shape": return Tensor.FromArray(In(0).Shape.ToArray().Select(d => (long)d).ToArray(), In(0).Rank);
            case "Gather": return Gather(node, In(0), In(1), (int)Int(a, "axis", 0));
            case "Cast": return In(0).To(ElementType(node, (int)Int(a, "to", 1)));
            case "Where": return Tensor.Where(In(0), In(1), In(2));
            case "Greater": return In(0).Gt(In(1));
            case "Less": return In(0).Lt(In(1));
            case "Equal": return In(0).Eq(In(1));
            case "Conv": return Conv(node, In(0), In(1), Opt(2));
            case "ConvTranspose": return ConvTranspose(node, In(0), In(1), Opt(2));
            case "MaxPool" or "AveragePool": return Pool(node, In(0));
            case "GlobalAveragePool": return In(0).Mean([.. Enumerable.Range(2, In(0).Rank - 2)], keepDim: true);
            case "ReduceMean":
                {
                    var t = In(0);
                    int[] axes = a.TryGetValue("axes", out var ax) && ax.Ints is { } ints ? [.. ints.Select(i => Axis((int)i, t.Rank, node))] : [.. Enumerable.Range(0, t.Rank)];
                    return t.Mean(axes, keepDim: Int(a, "keepdims", 1) != 0);
                }
            case "Pad": return Pad(node, In(0), Longs(In(1)), Opt(2)?.Item() ?? 0);
            case "BatchNormalization":
                if (Int(a, "training_mode", 0) != 0) throw Unsupported(node, "training_mode=1 is not imported (export the model in eval mode)");
                return Functional.BatchNorm(In(0), In(3), In(4), In(1), In(2), training: false, eps: Float(a, "epsilon", 1e-5f));
            case "LayerNormalization":
                {
                    var t = In(0);
                    int axis = Axis((int)Int(a, "axis", -1), t.Rank, node);
                    return Functional.LayerNorm(t, t.Shape.ToArray()[axis..], In(1), Opt(2), Float(a, "epsilon", 1e-5f));
                }
            case "InstanceNormalization": return Functional.GroupNorm(In(0), In(0).Size(1), In(1), In(2), Float(a, "epsilon", 1e-5f));
            default: throw Unsupported(node, "");
        }
    }

    /// <summary>The error for an operator or setting GradFlow does not import: names the op type and the node.</summary>
    public static NotSupportedException Unsupported(OnnxNode node, string detail) =>
        new($"ONNX: operator {node.OpType}{(node.Domain.Length > 0 ? $" (domain {node.Domain})" : "")} in node '{node.Name}' is not supported by GradFlow's importer" +
            (detail.Length > 0 ? $": {detail}." : "."));

    internal static float Float(Dictionary<string, OnnxAttributeValue> a, string name, float fallback) => a.TryGetValue(name, out var v) ? v.F : fallback;

    internal static long Int(Dictionary<string, OnnxAttributeValue> a, string name, long fallback) => a.TryGetValue(name, out var v) ? v.I : fallback;

    internal static long[]? Ints(Dictionary<string, OnnxAttributeValue> a, string name) => a.TryGetValue(name, out var v) ? v.Ints : null;

    internal static long[] Longs(Tensor t) => t.DType == DType.Int64 ? t.ToArray<long>() : [.. t.ToDoubleArray().Select(d => (long)d)];

    internal static int Axis(int axis, int rank, OnnxNode node)
    {
        int ax = axis < 0 ? axis + rank : axis;
        if (ax < 0 || ax >= Math.Max(rank, 1)) throw new InvalidDataException($"ONNX: node '{node.Name}' ({node.OpType}) has axis {axis} for rank {rank}.");
        return ax;
    }

    private static DType ElementType(OnnxNode node, int type) => type switch
    {
        OnnxProto.Float => DType.Float32,
        OnnxProto.Double => DType.Float64,
        OnnxProto.Int64 or OnnxProto.Int32 => DType.Int64,
        OnnxProto.Bool => DType.Bool,
        _ => throw Unsupported(node, $"cast to element type {type}"),
    };

    private static Tensor Gemm(OnnxNode node, Tensor a, Tensor b, Tensor? c)
    {
        var at = node.Attributes;
        bool transA = Int(at, "transA", 0) != 0, transB = Int(at, "transB", 0) != 0;
        float alpha = Float(at, "alpha", 1), beta = Float(at, "beta", 1);
        // torch.nn.Linear's form: one fused node, x W^T + b.
        if (!transA && transB && alpha == 1 && beta == 1 && (c is null || c.Rank == 1)) return Functional.Linear(a, b, c);
        var y = (transA ? a.Transpose(0, 1) : a).MatMul(transB ? b.Transpose(0, 1) : b);
        if (alpha != 1) y *= alpha;
        return c is null ? y : beta == 1 ? y + c : y + c * beta;
    }

    private static Tensor Reshape(OnnxNode node, Tensor t, long[] target, bool allowZero)
    {
        var shape = new int[target.Length];
        int infer = -1;
        long known = 1;
        for (int i = 0; i < target.Length; i++)
        {
            long d = target[i];
            if (d == 0 && !allowZero)
            {
                if (i >= t.Rank) throw new InvalidDataException($"ONNX: node '{node.Name}' (Reshape) copies dimension {i} of a rank-{t.Rank} input.");
                d = t.Size(i);
            }
            if (d == -1)
            {
                if (infer >= 0) throw new InvalidDataException($"ONNX: node '{node.Name}' (Reshape) has two -1 dimensions.");
                infer = i;
                continue;
            }
            if (d < 0 || d > int.MaxValue) throw new InvalidDataException($"ONNX: node '{node.Name}' (Reshape) has dimension {d}.");
            shape[i] = (int)d;
            known *= d;
        }
        if (infer >= 0) shape[infer] = known == 0 ? 0 : (int)(t.NumEl / known);
        return t.Reshape(shape);
    }

    // ONNX's integer Div truncates (PyTorch's exporter computes head_dim = embed_dim / num_heads on shapes). Through
    // doubles, exact for the shape arithmetic it serves (|values| below 2^53).
    private static Tensor IntegerDivide(Tensor a, Tensor b, OnnxNode node)
    {
        var quotient = a.To(DType.Float64) / b.To(DType.Float64);
        var q = quotient.ToDoubleArray();
        if (q.Any(v => !double.IsFinite(v))) throw new InvalidDataException($"ONNX: node '{node.Name}' (Div) divides an integer by zero.");
        return Tensor.FromArray([.. q.Select(v => (long)Math.Truncate(v))], quotient.Shape);
    }

    // ONNX's Slice: negative starts and ends count from the end, both are clamped to the axis, and a negative step
    // walks backwards (an index list, as a strided view cannot).
    private static Tensor Slice(OnnxNode node, Tensor t, long[] starts, long[] ends, long[]? axes, long[]? steps)
    {
        if (ends.Length != starts.Length || (axes is not null && axes.Length != starts.Length) || (steps is not null && steps.Length != starts.Length))
            throw new InvalidDataException($"ONNX: node '{node.Name}' (Slice) has {starts.Length} starts, {ends.Length} ends, {axes?.Length ?? starts.Length} axes and {steps?.Length ?? starts.Length} steps.");
        for (int i = 0; i < starts.Length; i++)
        {
            int d = Axis((int)Math.Clamp(axes?[i] ?? i, -MaxAxis, MaxAxis), t.Rank, node);
            long step = steps?[i] ?? 1, size = t.Size(d);
            if (step == 0) throw new InvalidDataException($"ONNX: node '{node.Name}' (Slice) has step 0.");
            long start = starts[i] < 0 ? starts[i] + size : starts[i], end = ends[i] < 0 ? ends[i] + size : ends[i];
            if (step > 0)
            {
                start = Math.Clamp(start, 0, size);
                end = Math.Clamp(end, start, size);
                t = t.Slice(d, (int)start, (int)end, (int)Math.Min(step, int.MaxValue));
                continue;
            }
            start = Math.Clamp(start, -1, size - 1);
            end = Math.Clamp(end, -1, size - 1);
            var index = new List<long>();
            for (long k = start; k > end; k += step) index.Add(k);
            t = t.IndexSelect(d, Tensor.FromArray(index.ToArray(), index.Count));
        }
        return t;
    }

    private const int MaxAxis = 64;

    private static Tensor ConstantOfShape(OnnxNode node, long[] dims)
    {
        var fill = node.Attributes.TryGetValue("value", out var v) && v.T is { } t ? t : null;
        if (fill is not null && fill.NumEl != 1) throw new InvalidDataException($"ONNX: node '{node.Name}' (ConstantOfShape) has a value of {fill.NumEl} elements, not one.");
        if (dims.Any(d => d < 0 || d > int.MaxValue)) throw new InvalidDataException($"ONNX: node '{node.Name}' (ConstantOfShape) has shape [{string.Join(", ", dims)}].");
        int[] shape = [.. dims.Select(d => (int)d)];
        return fill is null ? Tensor.Zeros(shape, DType.Float32) : Tensor.Full(shape, fill.ToDoubleArray()[0], fill.DType);
    }

    private static Tensor Gather(OnnxNode node, Tensor data, Tensor indices, int axis)
    {
        axis = Axis(axis, data.Rank, node);
        if (axis == 0 && data.Rank == 2 && data.DType != DType.Int64 && indices.DType == DType.Int64 && indices.Rank > 0)
            return Functional.Embedding(indices, data);
        // The general form (shape arithmetic): negative indices count from the end.
        long[] idx = [.. Longs(indices).Select(i => i < 0 ? i + data.Size(axis) : i)];
        var picked = data.IndexSelect(axis, Tensor.FromArray(idx, idx.Length));
        int[] shape = [.. data.Shape.ToArray()[..axis], .. indices.Shape.ToArray(), .. data.Shape.ToArray()[(axis + 1)..]];
        return picked.Reshape(shape);
    }

    private static (int, int) Symmetric(OnnxNode node, long[]? pads, int spatial, int index)
    {
        if (pads is null) return (0, 0);
        if (pads.Length != 2 * spatial) throw new InvalidDataException($"ONNX: node '{node.Name}' ({node.OpType}) has {pads.Length} pads for {spatial} spatial axes.");
        if (pads[index] != pads[index + spatial]) throw Unsupported(node, $"asymmetric pads [{string.Join(", ", pads)}]");
        return ((int)pads[index], 0);
    }

    private static void CheckAutoPad(OnnxNode node)
    {
        if (node.Attributes.TryGetValue("auto_pad", out var ap) && ap.S is { } s && s != "NOTSET") throw Unsupported(node, $"auto_pad={s}");
    }

    private static (int H, int W) Pair(long[]? values, (int H, int W) fallback, int spatial) =>
        values is null ? fallback : spatial == 1 ? ((int)values[0], 1) : ((int)values[0], (int)values[1]);

    private static Tensor Conv(OnnxNode node, Tensor x, Tensor w, Tensor? b)
    {
        CheckAutoPad(node);
        var a = node.Attributes;
        int spatial = w.Rank - 2, groups = (int)Int(a, "group", 1);
        if (spatial is not (1 or 2)) throw Unsupported(node, $"{spatial}-d convolution");
        var pads = Ints(a, "pads");
        var padding = spatial == 1 ? (Symmetric(node, pads, 1, 0).Item1, 0) : (Symmetric(node, pads, 2, 0).Item1, Symmetric(node, pads, 2, 1).Item1);
        var stride = Pair(Ints(a, "strides"), (1, 1), spatial);
        var dilation = Pair(Ints(a, "dilations"), (1, 1), spatial);
        return spatial == 1
            ? Functional.Conv1d(x, w, b, stride.H, padding.Item1, dilation.H, groups)
            : Functional.Conv2d(x, w, b, stride, padding, dilation, groups);
    }

    private static Tensor ConvTranspose(OnnxNode node, Tensor x, Tensor w, Tensor? b)
    {
        CheckAutoPad(node);
        var a = node.Attributes;
        if (w.Rank != 4) throw Unsupported(node, $"{w.Rank - 2}-d transposed convolution");
        if (a.ContainsKey("output_shape")) throw Unsupported(node, "output_shape");
        var pads = Ints(a, "pads");
        var padding = (Symmetric(node, pads, 2, 0).Item1, Symmetric(node, pads, 2, 1).Item1);
        return Functional.ConvTranspose2d(x, w, b, Pair(Ints(a, "strides"), (1, 1), 2), padding, Pair(Ints(a, "output_padding"), (0, 0), 2),
            (int)Int(a, "group", 1), Pair(Ints(a, "dilations"), (1, 1), 2));
    }

    private static Tensor Pool(OnnxNode node, Tensor x)
    {
        CheckAutoPad(node);
        var a = node.Attributes;
        if (x.Rank != 4) throw Unsupported(node, $"pooling over rank-{x.Rank} input");
        if (Int(a, "ceil_mode", 0) != 0) throw Unsupported(node, "ceil_mode=1");
        var kernel = Pair(Ints(a, "kernel_shape") ?? throw new InvalidDataException($"ONNX: node '{node.Name}' ({node.OpType}) has no kernel_shape."), (1, 1), 2);
        var pads = Ints(a, "pads");
        var padding = (Symmetric(node, pads, 2, 0).Item1, Symmetric(node, pads, 2, 1).Item1);
        var stride = Pair(Ints(a, "strides"), (1, 1), 2);
        if (node.OpType == "MaxPool") return Functional.MaxPool2d(x, kernel, stride, padding, Pair(Ints(a, "dilations"), (1, 1), 2));
        return Functional.AvgPool2d(x, kernel, stride, padding, Int(a, "count_include_pad", 0) != 0);
    }

    // Constant padding as concatenation with filled blocks, so the gradient flows back through Cat.
    private static Tensor Pad(OnnxNode node, Tensor x, long[] pads, double value)
    {
        if (node.Attributes.TryGetValue("mode", out var mode) && mode.S is { } m && m != "constant") throw Unsupported(node, $"mode={m}");
        if (pads.Length != 2 * x.Rank) throw new InvalidDataException($"ONNX: node '{node.Name}' (Pad) has {pads.Length} pads for rank {x.Rank}.");
        if (pads.Any(p => p < 0)) throw Unsupported(node, "negative pads");
        for (int d = 0; d < x.Rank; d++)
        {
            long before = pads[d], after = pads[d + x.Rank];
            if (before == 0 && after == 0) continue;
            var parts = new List<Tensor>();
            var shape = x.Shape.ToArray();
            if (before > 0) { shape[d] = (int)before; parts.Add(Tensor.Full(shape, value, x.DType)); }
            parts.Add(x);
            if (after > 0) { shape[d] = (int)after; parts.Add(Tensor.Full(shape, value, x.DType)); }
            x = Tensor.Cat(parts, d);
        }
        return x;
    }
}
