namespace GradFlow.NN;

/// <summary>Elman RNN (torch.nn.RNN): h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh), act tanh or ReLU.</summary>
public sealed class RNN : RNNBase
{
    /// <summary>Creates the layer; <paramref name="relu"/> selects the ReLU nonlinearity instead of tanh.</summary>
    public RNN(int inputSize, int hiddenSize, int numLayers = 1, bool relu = false, bool bias = true, bool batchFirst = false,
        double dropout = 0, bool bidirectional = false, DType dtype = DType.Float32, Generator? generator = null)
        : base(1, inputSize, hiddenSize, numLayers, bias, batchFirst, dropout, bidirectional, dtype, generator) => Relu = relu;

    /// <summary>True for ReLU, false for tanh.</summary>
    public bool Relu { get; }

    private protected override (Tensor Seq, Tensor H, Tensor? C) Sequence(Tensor proj, Tensor h, Tensor? c, Tensor whh, Tensor? bhh, bool reverse, int layer) =>
        StepByStep(proj, h, c, reverse, layer, (xProj, h, _) =>
        {
            var pre = xProj + Functional.Linear(h, whh, bhh);
            return (Relu ? pre.Relu() : pre.Tanh(), null);
        });

    /// <summary>The output sequence for a zero initial state.</summary>
    public override Tensor Forward(Tensor input) => Run(input, null, null, hasCell: false).Output;

    /// <summary>Runs the sequence from an initial state (zeros when null): the outputs of the last layer at every step, and the final state of every layer.</summary>
    public (Tensor Output, Tensor HN) Call(Tensor input, Tensor? h0)
    {
        Guard.NotNull(input, TypeName, nameof(input));
        var r = Invoke(h0 is null ? [input] : [input, h0], xs =>
        {
            var (o, h, _) = Run(xs[0], xs.Length > 1 ? xs[1] : null, null, hasCell: false);
            return [o, h];
        });
        return (r[0], r[1]);
    }

    /// <inheritdoc />
    protected override string ExtraRepr() => base.ExtraRepr() + (Relu ? ", nonlinearity=relu" : "");
}

/// <summary>
/// Long short-term memory (torch.nn.LSTM), gates in PyTorch's order input, forget, cell, output:
/// c' = f c + i g, h' = o tanh(c').
/// </summary>
public sealed class LSTM(int inputSize, int hiddenSize, int numLayers = 1, bool bias = true, bool batchFirst = false, double dropout = 0,
    bool bidirectional = false, DType dtype = DType.Float32, Generator? generator = null)
    : RNNBase(4, inputSize, hiddenSize, numLayers, bias, batchFirst, dropout, bidirectional, dtype, generator)
{
    // The whole sequence as one op with a fused cell (Ops/Lstm.cs); its composed twin for dtypes the fused op does not take.
    private protected override (Tensor Seq, Tensor H, Tensor? C) Sequence(Tensor proj, Tensor h, Tensor? c, Tensor whh, Tensor? bhh, bool reverse, int layer)
    {
        var r = Tensor.LstmSequence(proj, h, c!, whh, bhh, reverse, layer) ?? Tensor.LstmSequenceComposed(proj, h, c!, whh, bhh, reverse);
        return (r[0], r[1], r[2]);
    }

    /// <summary>The output sequence for a zero initial state.</summary>
    public override Tensor Forward(Tensor input) => Run(input, null, null, hasCell: true).Output;

    /// <summary>Runs the sequence from an initial (h0, c0) (zeros when null): the last layer's outputs and every layer's final (h, c).</summary>
    public (Tensor Output, (Tensor H, Tensor C) State) Call(Tensor input, (Tensor H, Tensor C)? state)
    {
        Guard.NotNull(input, TypeName, nameof(input));
        var r = Invoke(state is { } s ? [input, s.H, s.C] : [input], xs =>
        {
            var (o, h, c) = Run(xs[0], xs.Length > 1 ? xs[1] : null, xs.Length > 2 ? xs[2] : null, hasCell: true);
            return [o, h, c!];
        });
        return (r[0], (r[1], r[2]));
    }
}

/// <summary>
/// Gated recurrent unit (torch.nn.GRU), gates in PyTorch's order reset, update, new:
/// n = tanh(x_n + r (h W_hn^T + b_hn)), h' = (1 - z) n + z h.
/// </summary>
public sealed class GRU(int inputSize, int hiddenSize, int numLayers = 1, bool bias = true, bool batchFirst = false, double dropout = 0,
    bool bidirectional = false, DType dtype = DType.Float32, Generator? generator = null)
    : RNNBase(3, inputSize, hiddenSize, numLayers, bias, batchFirst, dropout, bidirectional, dtype, generator)
{
    private protected override (Tensor Seq, Tensor H, Tensor? C) Sequence(Tensor proj, Tensor h, Tensor? c, Tensor whh, Tensor? bhh, bool reverse, int layer) =>
        StepByStep(proj, h, c, reverse, layer, (xProj, h, _) =>
        {
            var xg = xProj.Chunk(3, 1);
            var hg = Functional.Linear(h, whh, bhh).Chunk(3, 1);
            var r = (xg[0] + hg[0]).Sigmoid();
            var z = (xg[1] + hg[1]).Sigmoid();
            var n = (xg[2] + r * hg[2]).Tanh();
            return ((1.0 - z) * n + z * h, null);
        });

    /// <summary>The output sequence for a zero initial state.</summary>
    public override Tensor Forward(Tensor input) => Run(input, null, null, hasCell: false).Output;

    /// <summary>Runs the sequence from an initial state (zeros when null): the last layer's outputs and every layer's final state.</summary>
    public (Tensor Output, Tensor HN) Call(Tensor input, Tensor? h0)
    {
        Guard.NotNull(input, TypeName, nameof(input));
        var r = Invoke(h0 is null ? [input] : [input, h0], xs =>
        {
            var (o, h, _) = Run(xs[0], xs.Length > 1 ? xs[1] : null, null, hasCell: false);
            return [o, h];
        });
        return (r[0], r[1]);
    }
}
