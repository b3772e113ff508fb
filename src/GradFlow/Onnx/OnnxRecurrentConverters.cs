using GradFlow.NN;

namespace GradFlow.Onnx;

/// <summary>
/// RNN, LSTM and GRU as ONNX's RNN, LSTM and GRU ops, one node per layer with both directions in it. ONNX orders
/// the gates differently (LSTM i, o, f, c against PyTorch's i, f, g, o; GRU z, r, h against r, z, n), so each
/// weight is re-assembled in the graph from its initializer by Slice and Concat: the initializers keep their
/// state-dict names and layout, and a runtime folds the re-assembly once at load.
/// </summary>
internal static class OnnxRecurrentConverters
{
    public static void AddTo(Dictionary<Type, Func<OnnxExportContext, Module, OnnxValue, OnnxValue>> map)
    {
        map[typeof(RNN)] = (ctx, m, x) => Export(ctx, (RNN)m, x, "RNN", [0], ((RNN)m).Relu ? "Relu" : "Tanh");
        map[typeof(LSTM)] = (ctx, m, x) => Export(ctx, (LSTM)m, x, "LSTM", [0, 3, 1, 2], null);
        map[typeof(GRU)] = (ctx, m, x) => Export(ctx, (GRU)m, x, "GRU", [1, 0, 2], null);
    }

    private static OnnxValue Export(OnnxExportContext ctx, RNNBase m, OnnxValue x, string op, int[] gateOrder, string? activation)
    {
        if (x.Rank != 3) throw new NotSupportedException($"OnnxExport: {m.TypeName} exports batched (rank-3) inputs, got {OnnxConverters.Show(x.Shape)}.");
        int h = m.HiddenSize, dirs = m.Directions;
        // ONNX recurrent ops take (seq, batch, features).
        var seq = m.BatchFirst ? ctx.Node("Transpose", [x.Name], [x.Shape[1], x.Shape[0], x.Shape[2]], x.DType, OnnxAttribute.Ints("perm", 1, 0, 2)) : x;
        var parameters = m.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        for (int layer = 0; layer < m.NumLayers; layer++)
        {
            var (ws, rs, bs) = (new List<string>(), new List<string>(), new List<string>());
            for (int dir = 0; dir < dirs; dir++)
            {
                string sfx = $"_l{layer}" + (dir == 1 ? "_reverse" : "");
                ws.Add(Gates(ctx, parameters["weight_ih" + sfx], gateOrder, h, x.DType));
                rs.Add(Gates(ctx, parameters["weight_hh" + sfx], gateOrder, h, x.DType));
                if (parameters.TryGetValue("bias_ih" + sfx, out var bih))
                {
                    var both = ctx.Node("Concat", [Gates(ctx, bih, gateOrder, h, x.DType, unsqueeze: false), Gates(ctx, parameters["bias_hh" + sfx], gateOrder, h, x.DType, unsqueeze: false)],
                        [2 * gateOrder.Length * h], x.DType, OnnxAttribute.Int("axis", 0));
                    bs.Add(ctx.Node("Unsqueeze", [both.Name, ctx.Int64s("axes", 0)], [1, 2 * gateOrder.Length * h], x.DType).Name);
                }
            }
            string w = Stack(ctx, ws, x.DType), r = Stack(ctx, rs, x.DType);
            string[] inputs = bs.Count > 0 ? [seq.Name, w, r, Stack(ctx, bs, x.DType)] : [seq.Name, w, r];
            var attributes = new List<OnnxAttribute> { OnnxAttribute.Int("hidden_size", h) };
            if (dirs == 2) attributes.Add(OnnxAttribute.String("direction", "bidirectional"));
            if (activation is not null) attributes.Add(OnnxAttribute.Strings("activations", [.. Enumerable.Repeat(activation, dirs)]));
            // PyTorch's GRU applies the reset gate after the hidden-state product.
            if (op == "GRU") attributes.Add(OnnxAttribute.Int("linear_before_reset", 1));
            var y = ctx.Node(op, inputs, [seq.Shape[0], dirs, seq.Shape[1], h], x.DType, [.. attributes]);
            // Y is (seq, directions, batch, hidden): the directions go next to the features, as PyTorch concatenates them.
            var t = ctx.Node("Transpose", [y.Name], [seq.Shape[0], seq.Shape[1], dirs, h], x.DType, OnnxAttribute.Ints("perm", 0, 2, 1, 3));
            seq = ctx.Node("Reshape", [t.Name, ctx.Int64s("shape", 0, 0, dirs * h)], [seq.Shape[0], seq.Shape[1], dirs * h], x.DType);
        }
        return m.BatchFirst ? ctx.Node("Transpose", [seq.Name], [seq.Shape[1], seq.Shape[0], seq.Shape[2]], x.DType, OnnxAttribute.Ints("perm", 1, 0, 2)) : seq;
    }

    // The gate blocks of a (gates*H, ...) weight or (gates*H) bias in ONNX's order, with a leading direction axis.
    private static string Gates(OnnxExportContext ctx, Tensor weight, int[] order, int h, DType dtype, bool unsqueeze = true)
    {
        string name = ctx.Parameter(weight);
        int[] rest = [.. weight.Shape.ToArray()[1..]];
        string joined = name;
        if (order.Length > 1)
        {
            var blocks = order.Select(g => ctx.Node("Slice", [name, ctx.Int64s("starts", g * h), ctx.Int64s("ends", (g + 1) * h), ctx.Int64s("axes", 0)],
                [h, .. rest], dtype).Name).ToArray();
            joined = ctx.Node("Concat", blocks, [order.Length * h, .. rest], dtype, OnnxAttribute.Int("axis", 0)).Name;
        }
        return unsqueeze ? ctx.Node("Unsqueeze", [joined, ctx.Int64s("axes", 0)], [1, order.Length * h, .. rest], dtype).Name : joined;
    }

    private static string Stack(OnnxExportContext ctx, List<string> perDirection, DType dtype) =>
        perDirection.Count == 1 ? perDirection[0] : ctx.Node("Concat", [.. perDirection], [], dtype, OnnxAttribute.Int("axis", 0)).Name;
}
