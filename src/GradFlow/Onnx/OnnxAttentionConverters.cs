using GradFlow.NN;

namespace GradFlow.Onnx;

/// <summary>
/// MultiheadAttention (self-attention, as its Forward computes it) and the transformer encoder, composed from MatMul,
/// Reshape, Transpose and Softmax: opset 17 has no attention op. The packed in_proj_weight and in_proj_bias stay one
/// initializer each under their state-dict names; the split into query, key and value happens in the graph.
/// </summary>
internal static class OnnxAttentionConverters
{
    public static void AddTo(Dictionary<Type, Func<OnnxExportContext, Module, OnnxValue, OnnxValue>> map)
    {
        map[typeof(MultiheadAttention)] = (ctx, m, x) => SelfAttention(ctx, (MultiheadAttention)m, x);
        map[typeof(TransformerEncoderLayer)] = (ctx, m, x) => EncoderLayer(ctx, (TransformerEncoderLayer)m, x);
        map[typeof(TransformerEncoder)] = (ctx, m, x) =>
        {
            var e = (TransformerEncoder)m;
            var y = e.Layers.Aggregate(x, (v, layer) => ctx.Emit(layer, v));
            return e.Norm is null ? y : ctx.Emit(e.Norm, y);
        };
    }

    // The reshapes use 0 ("copy this input dimension") for the batch and sequence axes, so either may be the dynamic one.
    private static OnnxValue SelfAttention(OnnxExportContext ctx, MultiheadAttention m, OnnxValue x)
    {
        if (x.Rank != 3 || x.Shape[2] != m.EmbedDim)
            throw new NotSupportedException($"OnnxExport: MultiheadAttention at '{m.Path}' exports batched inputs [{(m.BatchFirst ? "N, L" : "L, N")}, {m.EmbedDim}], got {OnnxConverters.Show(x.Shape)}.");
        int e = m.EmbedDim, heads = m.NumHeads, hd = e / heads;
        var (n, l) = m.BatchFirst ? (x.Shape[0], x.Shape[1]) : (x.Shape[1], x.Shape[0]);
        var wt = ctx.Node("Transpose", [ctx.Parameter(m.InProjWeight)], [e, 3 * e], x.DType, OnnxAttribute.Ints("perm", 1, 0));
        var packed = ctx.Node("MatMul", [x.Name, wt.Name], [x.Shape[0], x.Shape[1], 3 * e], x.DType);
        if (m.InProjBias is not null) packed = ctx.Same("Add", packed, [ctx.Parameter(m.InProjBias)]);
        // (.., .., 3E) viewed as (.., .., 3, heads, hd) and brought to (3, N, heads, L, hd) in one Transpose.
        var split = ctx.Node("Reshape", [packed.Name, ctx.Int64s("shape", 0, 0, 3, heads, hd)], [x.Shape[0], x.Shape[1], 3, heads, hd], x.DType);
        long[] perm = m.BatchFirst ? [2, 0, 3, 1, 4] : [2, 1, 3, 0, 4];
        var qkv = ctx.Node("Transpose", [split.Name], [3, n, heads, l, hd], x.DType, OnnxAttribute.Ints("perm", perm));
        OnnxValue Pick(int i, string hint) =>
            ctx.Node("Gather", [qkv.Name, ctx.Constant(Tensor.Scalar(i, DType.Int64), hint)], [n, heads, l, hd], x.DType, OnnxAttribute.Int("axis", 0));
        var (q, k, v) = (Pick(0, "q"), Pick(1, "k"), Pick(2, "v"));
        var kt = ctx.Node("Transpose", [k.Name], [n, heads, hd, l], x.DType, OnnxAttribute.Ints("perm", 0, 1, 3, 2));
        var scores = ctx.Node("MatMul", [q.Name, kt.Name], [n, heads, l, l], x.DType);
        scores = ctx.Same("Mul", scores, [ctx.Scalar("scale", 1 / Math.Sqrt(hd), x.DType)]);
        if (ctx.KeyPaddingMask is { } mask)
        {
            // (N, S) to (N, 1, 1, S), -inf where a key is padding (Functional.Additive's form), added to every head's scores.
            var wide = ctx.Node("Unsqueeze", [mask.Name, ctx.Int64s("axes", 1, 2)], [n, 1, 1, l], DType.Bool);
            var additive = ctx.Node("Where", [wide.Name, ctx.Scalar("masked", double.NegativeInfinity, x.DType), ctx.Scalar("kept", 0, x.DType)], [n, 1, 1, l], x.DType);
            scores = ctx.Same("Add", scores, [additive.Name]);
        }
        var weights = ctx.Same("Softmax", scores, null, OnnxAttribute.Int("axis", -1));
        var o = ctx.Node("MatMul", [weights.Name, v.Name], [n, heads, l, hd], x.DType);
        // Heads merged back next to each other on the feature axis, in the input's layout.
        var merged = m.BatchFirst
            ? ctx.Node("Transpose", [o.Name], [n, l, heads, hd], x.DType, OnnxAttribute.Ints("perm", 0, 2, 1, 3))
            : ctx.Node("Transpose", [o.Name], [l, n, heads, hd], x.DType, OnnxAttribute.Ints("perm", 2, 0, 1, 3));
        var flat = ctx.Node("Reshape", [merged.Name, ctx.Int64s("shape", 0, 0, e)], x.Shape, x.DType);
        return ctx.Emit(m.OutProj, flat);
    }

    private static OnnxValue EncoderLayer(OnnxExportContext ctx, TransformerEncoderLayer m, OnnxValue x)
    {
        OnnxValue Attend(OnnxValue h) => ctx.Emit(m.Dropout1, ctx.Emit(m.SelfAttn, h));
        OnnxValue FeedForward(OnnxValue h)
        {
            var a = ctx.Emit(m.Linear1, h);
            a = m.Activation == TransformerActivation.Gelu ? OnnxConverters.Gelu(ctx, a, tanhApproximation: false) : ctx.Same("Relu", a);
            return ctx.Emit(m.Dropout2, ctx.Emit(m.Linear2, ctx.Emit(m.Dropout, a)));
        }
        if (m.NormFirst)
        {
            x = OnnxConverters.Binary(ctx, "Add", x, Attend(ctx.Emit(m.Norm1, x)));
            return OnnxConverters.Binary(ctx, "Add", x, FeedForward(ctx.Emit(m.Norm2, x)));
        }
        x = ctx.Emit(m.Norm1, OnnxConverters.Binary(ctx, "Add", x, Attend(x)));
        return ctx.Emit(m.Norm2, OnnxConverters.Binary(ctx, "Add", x, FeedForward(x)));
    }
}
