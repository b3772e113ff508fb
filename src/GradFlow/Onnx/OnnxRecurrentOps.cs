using GradFlow.NN;

namespace GradFlow.Onnx;

/// <summary>
/// ONNX's LSTM, GRU and RNN operators, imported so that they train: the LSTM runs GradFlow's fused sequence op
/// (Ops/Lstm.cs, the op nn.LSTM uses) after its gate blocks are put in PyTorch's order; GRU and RNN are unrolled
/// cells of differentiable ops. Gradients reach W, R and B, and through them the initializers the graph slices
/// them from. Settings PyTorch's exporter never writes (peepholes, clip, other activations, input_forget) are
/// refused when the file is loaded.
/// </summary>
internal static class OnnxRecurrentOps
{
    /// <summary>True for the operators <see cref="Run"/> handles.</summary>
    public static bool Handles(string opType) => opType is "LSTM" or "GRU" or "RNN";

    private static int Gates(string opType) => opType switch { "LSTM" => 4, "GRU" => 3, _ => 1 };

    /// <summary>Checks the node's attributes and inputs once, at load.</summary>
    public static void Validate(OnnxNode node)
    {
        var a = node.Attributes;
        if (OnnxOps.Int(a, "hidden_size", 0) <= 0) throw new InvalidDataException($"ONNX: node '{node.Name}' ({node.OpType}) has no positive hidden_size.");
        string direction = Direction(node);
        if (direction is not ("forward" or "reverse" or "bidirectional")) throw OnnxOps.Unsupported(node, $"direction={direction}");
        if (OnnxOps.Int(a, "layout", 0) is not (0 or 1)) throw OnnxOps.Unsupported(node, $"layout={OnnxOps.Int(a, "layout", 0)}");
        if (a.ContainsKey("clip")) throw OnnxOps.Unsupported(node, "clip");
        if (a.ContainsKey("activation_alpha") || a.ContainsKey("activation_beta")) throw OnnxOps.Unsupported(node, "activation_alpha/activation_beta");
        if (OnnxOps.Int(a, "input_forget", 0) != 0) throw OnnxOps.Unsupported(node, "input_forget=1");
        if (node.OpType == "LSTM" && node.Inputs.Length > 7 && node.Inputs[7].Length > 0) throw OnnxOps.Unsupported(node, "peephole weights (input P)");
        int dirs = direction == "bidirectional" ? 2 : 1;
        string[] expected = node.OpType switch { "LSTM" => ["sigmoid", "tanh", "tanh"], "GRU" => ["sigmoid", "tanh"], _ => ["tanh"] };
        if (a.TryGetValue("activations", out var act))
        {
            var given = act.Strings ?? [];
            if (given.Length != expected.Length * dirs) throw new InvalidDataException($"ONNX: node '{node.Name}' ({node.OpType}) has {given.Length} activations for {dirs} direction(s).");
            for (int i = 0; i < given.Length; i++)
            {
                string s = given[i].ToLowerInvariant();
                // RNN's activation may be Relu (nn.RNN(nonlinearity='relu')); every other slot keeps ONNX's default.
                if (s != expected[i % expected.Length] && !(node.OpType == "RNN" && s == "relu"))
                    throw OnnxOps.Unsupported(node, $"activation {given[i]} (GradFlow imports {string.Join(", ", expected)}{(node.OpType == "RNN" ? " or Relu" : "")})");
            }
        }
    }

    private static string Direction(OnnxNode node) => node.Attributes.TryGetValue("direction", out var d) && d.S is { } s ? s : "forward";

    /// <summary>Runs the node: Y, Y_h and, for LSTM, Y_c, in ONNX's shapes for its layout.</summary>
    public static Tensor[] Run(OnnxNode node, Tensor?[] x)
    {
        var a = node.Attributes;
        string op = node.OpType, what = $"{op} node '{node.Name}'";
        int h = (int)OnnxOps.Int(a, "hidden_size", 0), g = Gates(op), dirs = Direction(node) == "bidirectional" ? 2 : 1;
        bool batchMajor = OnnxOps.Int(a, "layout", 0) == 1;
        Tensor? Opt(int i) => i < x.Length ? x[i] : null;
        var input = Opt(0) ?? throw OnnxOps.Unsupported(node, "input X is missing");
        if (input.Rank != 3 || input.Size(0) == 0 || input.Size(1) == 0) Guard.ThrowArg(what, "X", $"expected a non-empty rank-3 sequence, got {Guard.Shape(input)}.");
        var seq = batchMajor ? input.Transpose(0, 1) : input; // (steps, batch, features)
        int steps = seq.Size(0), batch = seq.Size(1), features = seq.Size(2);
        var w = Checked(Opt(1), what, "W", [dirs, g * h, features]);
        var r = Checked(Opt(2), what, "R", [dirs, g * h, h]);
        var b = Opt(3) is { } bias ? Checked(bias, what, "B", [dirs, 2 * g * h]) : null;
        if (Opt(4) is { } lengths && OnnxOps.Longs(lengths).Any(l => l != steps))
            Guard.ThrowArg(what, "sequence_lens", $"sequences of different lengths are not imported; every length must be {steps}, got [{string.Join(", ", OnnxOps.Longs(lengths))}].");
        var h0 = State(Opt(5), batchMajor, what, "initial_h", dirs, batch, h, seq.DType);
        var c0 = op == "LSTM" ? State(Opt(6), batchMajor, what, "initial_c", dirs, batch, h, seq.DType) : null;
        var ys = new Tensor[dirs];
        var hs = new Tensor[dirs];
        var cs = new Tensor[dirs];
        for (int d = 0; d < dirs; d++)
        {
            bool reverse = d == 1 || Direction(node) == "reverse";
            Tensor wd = w.Select(0, d), rd = r.Select(0, d);
            Tensor? wb = b?.Select(0, d).Slice(0, 0, g * h), rb = b?.Select(0, d).Slice(0, g * h, 2 * g * h);
            switch (op)
            {
                case "LSTM":
                    {
                        // ONNX's blocks are i, o, f, c; the fused op (as nn.LSTM) takes i, f, g, o.
                        int[] order = [0, 2, 3, 1];
                        var proj = Functional.Linear(seq, Reorder(wd, order, h), wb is null ? null : Reorder(wb, order, h));
                        var whh = Reorder(rd, order, h);
                        var bhh = rb is null ? null : Reorder(rb, order, h);
                        var c = c0!.Select(0, d);
                        var res = Tensor.LstmSequence(proj, h0.Select(0, d), c, whh, bhh, reverse) ?? Tensor.LstmSequenceComposed(proj, h0.Select(0, d), c, whh, bhh, reverse);
                        (ys[d], hs[d], cs[d]) = (res[0], res[1], res[2]);
                        break;
                    }
                case "GRU":
                    (ys[d], hs[d]) = Unroll(Functional.Linear(seq, wd, wb), h0.Select(0, d), reverse,
                        GruCell(rd, rb, h, OnnxOps.Int(a, "linear_before_reset", 0) != 0));
                    break;
                default:
                    bool relu = a.TryGetValue("activations", out var act) && act.Strings![d].Equals("relu", StringComparison.OrdinalIgnoreCase);
                    (ys[d], hs[d]) = Unroll(Functional.Linear(seq, wd, wb), h0.Select(0, d), reverse, (xp, hp) =>
                    {
                        var pre = xp + Functional.Linear(hp, rd, rb);
                        return relu ? pre.Relu() : pre.Tanh();
                    });
                    break;
            }
        }
        // Y is (steps, directions, batch, hidden), or (batch, steps, directions, hidden) in layout 1; Y_h and Y_c
        // (directions, batch, hidden), or (batch, directions, hidden).
        var y = Tensor.Stack(ys, 1);
        var yh = Tensor.Stack(hs, 0);
        Tensor[] outputs = batchMajor ? [y.Permute(2, 0, 1, 3), yh.Transpose(0, 1)] : [y, yh];
        if (op != "LSTM") return outputs;
        var yc = Tensor.Stack(cs, 0);
        return [.. outputs, batchMajor ? yc.Transpose(0, 1) : yc];
    }

    private static Tensor Checked(Tensor? t, string what, string name, int[] shape)
    {
        if (t is null) Guard.ThrowArg(what, name, "is missing.");
        if (!Shapes.Equal(t.Shape, shape)) Guard.ThrowArg(what, name, $"expected shape {Guard.Shape(shape)}, got {Guard.Shape(t)}.");
        return t;
    }

    // The initial state of every direction as (directions, batch, hidden); zeros when the input is omitted.
    private static Tensor State(Tensor? given, bool batchMajor, string what, string name, int dirs, int batch, int h, DType dtype)
    {
        if (given is null) return Tensor.Zeros([dirs, batch, h], dtype);
        return batchMajor ? Checked(given, what, name, [batch, dirs, h]).Transpose(0, 1) : Checked(given, what, name, [dirs, batch, h]);
    }

    private static Tensor Reorder(Tensor t, int[] order, int h) => Tensor.Cat([.. order.Select(i => t.Slice(0, i * h, (i + 1) * h))], 0);

    // ONNX's GRU (gates z, r, h): z = s(x Wz + h Rz + bz), r likewise, n = tanh(x Wh + r (h Rh + Rbh) + Wbh) when
    // linear_before_reset (PyTorch's form), tanh(x Wh + (r h) Rh + Rbh + Wbh) otherwise; h' = (1 - z) n + z h.
    private static Func<Tensor, Tensor, Tensor> GruCell(Tensor r, Tensor? rb, int h, bool linearBeforeReset)
    {
        var rzr = r.Slice(0, 0, 2 * h);
        var rh = r.Slice(0, 2 * h, 3 * h);
        var rbzr = rb?.Slice(0, 0, 2 * h);
        var rbh = rb?.Slice(0, 2 * h, 3 * h);
        return (xp, hp) =>
        {
            var xg = xp.Chunk(3, 1);
            Tensor z, reset, n;
            if (linearBeforeReset)
            {
                var hg = Functional.Linear(hp, r, rb).Chunk(3, 1);
                z = (xg[0] + hg[0]).Sigmoid();
                reset = (xg[1] + hg[1]).Sigmoid();
                n = (xg[2] + reset * hg[2]).Tanh();
            }
            else
            {
                var hg = Functional.Linear(hp, rzr, rbzr).Chunk(2, 1);
                z = (xg[0] + hg[0]).Sigmoid();
                reset = (xg[1] + hg[1]).Sigmoid();
                n = (xg[2] + Functional.Linear(reset * hp, rh, rbh)).Tanh();
            }
            return (1.0 - z) * n + z * hp;
        };
    }

    // One cell call per step on the step's input projection, forwards or backwards; outputs stay in time order.
    private static (Tensor Seq, Tensor Last) Unroll(Tensor proj, Tensor h, bool reverse, Func<Tensor, Tensor, Tensor> cell)
    {
        int steps = proj.Size(0);
        var slices = proj.Split(1); // one op: its backward is one Cat
        var outputs = new Tensor[steps];
        for (int s = 0; s < steps; s++)
        {
            int t = reverse ? steps - 1 - s : s;
            h = cell(slices[t].Squeeze(0), h);
            outputs[t] = h;
        }
        return (Tensor.Stack(outputs), h);
    }
}
