using GradFlow.Kernels;

namespace GradFlow;

// One direction of an LSTM layer over a whole sequence as one op, as cuDNN and oneDNN run it. Forward: per step one
// GEMM (h W_hh^T accumulated onto x W_ih^T + b_ih + b_hh) and one fused cell pass that keeps the activated gates.
// Backward through time: per step one fused cell pass and one GEMM for dh; dW_hh is then one GEMM over all steps
// (the stacked gate gradients against the stacked previous states) and db_hh falls out of the cell passes.
// Under createGraph the backward recomputes the sequence from composed ops and differentiates that, so second
// derivatives are those of the composed formula. When a listener arms it (Instrumentation.ArmRecurrentSteps), the
// backward also sums the squares of dL/dh_t at each step as it completes it (one pass over batch x hidden per step
// into a reused per-thread buffer): the per-step gradient norms the doctor reads vanishing through time from.
public sealed partial class Tensor
{
    /// <summary>
    /// LSTM over <paramref name="xProj"/> (steps, batch, 4*hidden) = x W_ih^T + b_ih, from (h0, c0) (batch, hidden):
    /// [output (steps, batch, hidden), h_n, c_n]; null when the dtypes need the composed path.
    /// Observers see the gate activations as the ops "Sigmoid" (i, f, o) and "Tanh" (g, tanh c) would show them.
    /// <paramref name="layer"/> is the stacked layer's index, for the per-step gradient measure.
    /// </summary>
    internal static Tensor[]? LstmSequence(Tensor xProj, Tensor h0, Tensor c0, Tensor whh, Tensor? bhh, bool reverse, int layer = 0)
    {
        var dt = xProj.DType;
        if (dt is not (DType.Float32 or DType.Float64) || h0.DType != dt || c0.DType != dt || whh.DType != dt
            || (bhh is not null && bhh.DType != dt) || xProj.NumEl == 0)
            return null;
        int steps = xProj.ShapeArray[0], batch = xProj.ShapeArray[1], hidden = whh.ShapeArray[1];
        var sizes = new LstmSizes(steps, batch, hidden, reverse);
        var output = Empty([steps, batch, hidden], dt);
        var gates = Empty([LstmCell.Planes, steps, batch, hidden], dt);
        var cells = Empty([steps, batch, hidden], dt);
        var pre = Empty([batch, 4 * hidden], dt);
        var (x, h, c, w, b) = (xProj.ContiguousRaw(), h0.ContiguousRaw(), c0.ContiguousRaw(), whh.ContiguousRaw(), bhh?.ContiguousRaw());
        if (dt == DType.Float32) LstmKernels<float>.Forward(sizes, x, h, c, w, b, output, gates, cells, pre);
        else LstmKernels<double>.Forward(sizes, x, h, c, w, b, output, gates, cells, pre);

        int n = batch * hidden, last = sizes.TimeAt(steps - 1);
        var hN = output.AsStridedView([batch, hidden], [hidden, 1], last * n).ContiguousCopy();
        var cN = cells.AsStridedView([batch, hidden], [hidden, 1], last * n).ContiguousCopy();
        Tensor[] inputs = bhh is null ? [xProj, h0, c0, whh] : [xProj, h0, c0, whh, bhh];
        var node = Autograd.NeedsGrad(inputs) ? new LstmBackward(inputs, output, gates, cells, reverse, layer) : null;
        var outputs = Autograd.Record(OpNames.Lstm, [output, hN, cN], node, inputs);
        if (Instrumentation.Listening)
        {
            Instrumentation.Forward(OpNames.Sigmoid, [xProj], gates.AsStridedView([3 * steps, batch, hidden], [n, hidden, 1], 0), null);
            Instrumentation.Forward(OpNames.Tanh, [xProj], gates.AsStridedView([2 * steps, batch, hidden], [n, hidden, 1], 3 * steps * n), null);
        }
        return outputs;
    }

    private Tensor ContiguousCopy()
    {
        var y = Empty(ShapeArray, DType);
        CopyRaw(this, y);
        return y;
    }

    /// <summary>The sequence as composed differentiable ops: the reference the fused op matches, and its double backward.</summary>
    internal static Tensor[] LstmSequenceComposed(Tensor xProj, Tensor h, Tensor c, Tensor whh, Tensor? bhh, bool reverse)
    {
        int steps = xProj.ShapeArray[0];
        var proj = xProj.Split(1);
        var outputs = new Tensor[steps];
        for (int s = 0; s < steps; s++)
        {
            int t = reverse ? steps - 1 - s : s;
            var hw = Linear(h, whh, bhh) ?? h.MatMul(whh.T);
            var gates = (proj[t].Squeeze(0) + hw).Chunk(4, 1);
            var i = gates[0].Sigmoid();
            var f = gates[1].Sigmoid();
            var g = gates[2].Tanh();
            var o = gates[3].Sigmoid();
            c = f * c + i * g;
            h = o * c.Tanh();
            outputs[t] = h;
        }
        return [Stack(outputs), h, c];
    }
}

/// <summary>Sizes of a sequence and the order its steps run in.</summary>
internal readonly record struct LstmSizes(int Steps, int Batch, int Hidden, bool Reverse)
{
    /// <summary>The time index of the <paramref name="s"/>-th step run.</summary>
    public int TimeAt(int s) => Reverse ? Steps - 1 - s : s;
}

internal sealed class LstmBackward : Node
{
    private readonly bool _reverse, _hasBias;
    private readonly int _layer;
    private readonly bool[] _needs;
    private readonly Tensor _gates, _cells;

    public LstmBackward(Tensor[] inputs, Tensor output, Tensor gates, Tensor cells, bool reverse, int layer) : base(3)
    {
        _needs = Array.ConvertAll(inputs, t => t.RequiresGrad);
        (_reverse, _hasBias, _gates, _cells, _layer) = (reverse, inputs.Length == 5, gates, cells, layer);
        Save([.. inputs, output]);
    }

    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        if (Autograd.IsGradEnabled) return ComposedBackward(g);
        Tensor x = Saved(0), h0 = Saved(1), c0 = Saved(2), w = Saved(3).ContiguousRaw(), output = Saved(_hasBias ? 5 : 4);
        var dt = x.DType;
        var sizes = new LstmSizes(x.ShapeArray[0], x.ShapeArray[1], w.ShapeArray[1], _reverse);
        var dPre = Tensor.Empty(x.ShapeArray, dt);
        var dh = State(g[1], sizes, dt);
        var dc = State(g[2], sizes, dt);
        var dw = _needs[3] ? Tensor.Empty(w.ShapeArray, dt) : null;
        var db = _hasBias && _needs[4] ? Tensor.EmptyZeroed([w.ShapeArray[0]], dt) : null;
        var gOut = g[0]?.ContiguousRaw();
        var stepSquares = Instrumentation.RecurrentStepsArmed ? Instrumentation.RecurrentStepBuffer(sizes.Steps) : null;
        var args = new LstmGrads(gOut, h0.ContiguousRaw(), c0.ContiguousRaw(), w, output, _gates, _cells, dPre, dh, dc, dw, db, _needs[1], stepSquares);
        if (dt == DType.Float32) LstmKernels<float>.Backward(sizes, args);
        else LstmKernels<double>.Backward(sizes, args);
        if (stepSquares is not null) Instrumentation.RecordRecurrentSteps(this, _layer, _reverse, stepSquares, sizes.Steps);
        Tensor?[] result = [_needs[0] ? dPre : null, _needs[1] ? dh : null, _needs[2] ? dc : null, dw];
        return _hasBias ? [.. result, db] : result;
    }

    private static Tensor State(Tensor? given, LstmSizes s, DType dt)
    {
        if (given is null) return Tensor.EmptyZeroed([s.Batch, s.Hidden], dt);
        var copy = Tensor.Empty([s.Batch, s.Hidden], dt);
        Tensor.CopyRaw(given, copy);
        return copy;
    }

    // createGraph: differentiate a composed recomputation, so the gradient is itself a differentiable function.
    private Tensor?[] ComposedBackward(Tensor?[] g)
    {
        int count = _hasBias ? 5 : 4;
        var inputs = new Tensor[count];
        for (int k = 0; k < count; k++) inputs[k] = Saved(k);
        var outs = Tensor.LstmSequenceComposed(inputs[0], inputs[1], inputs[2], inputs[3], _hasBias ? inputs[4] : null, _reverse);
        var (roots, grads) = (new List<Tensor>(), new List<Tensor?>());
        for (int k = 0; k < 3; k++)
            if (g[k] is { } gk) { roots.Add(outs[k]); grads.Add(gk); }
        var wanted = Enumerable.Range(0, count).Where(k => _needs[k]).ToArray();
        var result = new Tensor?[count];
        if (roots.Count == 0 || wanted.Length == 0) return result;
        var d = Autograd.Grad([.. roots], [.. wanted.Select(k => inputs[k])], [.. grads], createGraph: true, retainGraph: true, allowUnused: true);
        for (int k = 0; k < wanted.Length; k++) result[wanted[k]] = d[k];
        return result;
    }
}

/// <summary>The tensors of one backward through time; dW (and db) null when not wanted; StepSquares[t] receives ||dL/dh_t||^2 when not null.</summary>
internal sealed record LstmGrads(Tensor? GradOutput, Tensor H0, Tensor C0, Tensor W, Tensor Output, Tensor Gates, Tensor Cells,
    Tensor DPre, Tensor Dh, Tensor Dc, Tensor? Dw, Tensor? Db, bool NeedH0, double[]? StepSquares = null);

/// <summary>The per-step loops of <see cref="Tensor.LstmSequence"/> over spans of T.</summary>
internal static class LstmKernels<T> where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
{
    // W_hh packed once per sequence as the GEMM's B operand: transposed for the forward, as stored for the backward.
    [ThreadStatic] private static PackedMatrix<T>? t_forwardWeight, t_backwardWeight;

    private static Span<T> S(Tensor t) => t.Data<T>().AsSpan(t.Offset, t.NumEl);

    public static void Forward(LstmSizes z, Tensor xProj, Tensor h0, Tensor c0, Tensor w, Tensor? b, Tensor output, Tensor gates, Tensor cells, Tensor preBuffer)
    {
        int n = z.Batch * z.Hidden, g4 = 4 * z.Hidden, plane = z.Steps * n;
        Span<T> x = S(xProj), y = S(output), gs = S(gates), cs = S(cells), pre = S(preBuffer);
        ReadOnlySpan<T> bias = b is null ? default : S(b);
        var wt = t_forwardWeight ??= new PackedMatrix<T>();
        GemmPacked.PackB<T>(true, z.Hidden, g4, S(w), z.Hidden, wt);
        for (int s = 0; s < z.Steps; s++)
        {
            int t = z.TimeAt(s), prev = z.TimeAt(s - 1);
            ReadOnlySpan<T> hPrev = s == 0 ? S(h0) : y.Slice(prev * n, n);
            ReadOnlySpan<T> cPrev = s == 0 ? S(c0) : cs.Slice(prev * n, n);
            var xt = x.Slice(t * z.Batch * g4, z.Batch * g4);
            for (int r = 0; r < z.Batch; r++)
            {
                var row = pre.Slice(r * g4, g4);
                if (bias.IsEmpty) xt.Slice(r * g4, g4).CopyTo(row);
                else Add(xt.Slice(r * g4, g4), bias, row);
            }
            GemmPacked.Run(false, z.Batch, T.One, hPrev, z.Hidden, wt, T.One, pre, g4);
            LstmCell.Forward<T>(z.Batch, z.Hidden, pre, g4, cPrev, gs[(t * n)..], plane, cs.Slice(t * n, n), y.Slice(t * n, n));
        }
    }

    public static void Backward(LstmSizes z, LstmGrads a)
    {
        int n = z.Batch * z.Hidden, g4 = 4 * z.Hidden, plane = z.Steps * n, rows = z.Batch * g4;
        Span<T> dPre = S(a.DPre), dh = S(a.Dh), dc = S(a.Dc), db = a.Db is null ? default : S(a.Db);
        var w = t_backwardWeight ??= new PackedMatrix<T>();
        GemmPacked.PackB<T>(false, g4, z.Hidden, S(a.W), z.Hidden, w);
        ReadOnlySpan<T> gs = S(a.Gates), cs = S(a.Cells), gOut = a.GradOutput is null ? default : S(a.GradOutput);
        for (int s = z.Steps - 1; s >= 0; s--)
        {
            int t = z.TimeAt(s);
            if (!gOut.IsEmpty) Add(dh, gOut.Slice(t * n, n), dh);
            if (a.StepSquares is { } squares) squares[t] = SumSquares(dh);
            ReadOnlySpan<T> cPrev = s == 0 ? S(a.C0) : cs.Slice(z.TimeAt(s - 1) * n, n);
            var dPreT = dPre.Slice(t * rows, rows);
            LstmCell.Backward<T>(z.Batch, z.Hidden, dh, dc, gs[(t * n)..], plane, cPrev, dPreT, g4, db);
            if (s > 0 || a.NeedH0) GemmPacked.Run(false, z.Batch, T.One, dPreT, g4, w, T.Zero, dh, z.Hidden);
        }
        if (a.Dw is not null) WeightGrad(z, a);
    }

    // dW_hh = sum_t dPre_t^T h_{t-1}: the steps whose previous state is an output form one block of rows
    // (outputs 0..T-2 forward, 1..T-1 reversed), one GEMM; the first step run pairs with h0.
    private static void WeightGrad(LstmSizes z, LstmGrads a)
    {
        int n = z.Batch * z.Hidden, g4 = 4 * z.Hidden, rows = z.Batch * g4, k = (z.Steps - 1) * z.Batch;
        Span<T> dPre = S(a.DPre), dw = S(a.Dw!);
        ReadOnlySpan<T> y = S(a.Output);
        if (k > 0)
        {
            var gates = z.Reverse ? dPre[..(k * g4)] : dPre[rows..];
            var states = z.Reverse ? y[n..] : y[..(k * z.Hidden)];
            GemmOf<T>.Run(true, false, g4, z.Hidden, k, T.One, gates, g4, states, z.Hidden, T.Zero, dw, z.Hidden);
        }
        int first = z.TimeAt(0);
        GemmOf<T>.Run(true, false, g4, z.Hidden, z.Batch, T.One, dPre.Slice(first * rows, rows), g4, S(a.H0), z.Hidden,
            k > 0 ? T.One : T.Zero, dw, z.Hidden);
    }

    // In double and in order, so a float64 run gives the very sum a step-by-step reference gives.
    private static double SumSquares(ReadOnlySpan<T> values)
    {
        double sum = 0;
        foreach (var v in values)
        {
            double d = double.CreateTruncating(v);
            sum += d * d;
        }
        return sum;
    }

    private static void Add(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> dst)
    {
        int i = 0;
        if (System.Numerics.Vector.IsHardwareAccelerated)
            for (; i <= a.Length - System.Numerics.Vector<T>.Count; i += System.Numerics.Vector<T>.Count)
                (new System.Numerics.Vector<T>(a[i..]) + new System.Numerics.Vector<T>(b[i..])).CopyTo(dst[i..]);
        for (; i < a.Length; i++) dst[i] = a[i] + b[i];
    }
}
