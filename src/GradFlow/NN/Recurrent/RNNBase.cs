using System.Globalization;

namespace GradFlow.NN;

/// <summary>
/// The machinery shared by <see cref="RNN"/>, <see cref="LSTM"/> and <see cref="GRU"/>: PyTorch's parameter
/// names and layout (weight_ih_l{k}[_reverse] of shape (gates*hidden, input), weight_hh_l{k} (gates*hidden,
/// hidden), bias_ih_l{k}, bias_hh_l{k}; gates stacked in PyTorch's order), stacking of layers and directions,
/// batch-first layouts and initial states. Every parameter starts as U(-1/sqrt(hidden), 1/sqrt(hidden)).
/// The input projection of a whole sequence is one matrix product; only the hidden-to-hidden product runs per step
/// (for the LSTM inside one fused op over the sequence, <c>Ops/Lstm.cs</c>).
/// </summary>
public abstract class RNNBase : Module
{
    private readonly Tensor[][] _weights; // per layer*direction: w_ih, w_hh, b_ih?, b_hh?

    /// <summary>Creates the parameters for <paramref name="gates"/> gates per cell.</summary>
    protected RNNBase(int gates, int inputSize, int hiddenSize, int numLayers, bool bias, bool batchFirst, double dropout, bool bidirectional,
        DType dtype, Generator? generator)
    {
        if (inputSize <= 0 || hiddenSize <= 0 || numLayers <= 0)
            Guard.Throw(GetType().Name, $"input_size={inputSize}, hidden_size={hiddenSize} and num_layers={numLayers} must be positive.");
        if (dropout < 0 || dropout > 1) Guard.ThrowArg(GetType().Name, nameof(dropout), $"must be in [0, 1], got {dropout}.");
        (InputSize, HiddenSize, NumLayers, BatchFirst, Dropout, Bidirectional) = (inputSize, hiddenSize, numLayers, batchFirst, dropout, bidirectional);
        double bound = 1 / Math.Sqrt(hiddenSize);
        _weights = new Tensor[numLayers * Directions][];
        for (int layer = 0; layer < numLayers; layer++)
            for (int dir = 0; dir < Directions; dir++)
            {
                string sfx = $"_l{layer}" + (dir == 1 ? "_reverse" : "");
                int inSize = layer == 0 ? inputSize : hiddenSize * Directions;
                var list = new List<Tensor>
                {
                    RegisterParameter("weight_ih" + sfx, Init.Uniform(Tensor.Zeros([gates * hiddenSize, inSize], dtype), -bound, bound, generator)),
                    RegisterParameter("weight_hh" + sfx, Init.Uniform(Tensor.Zeros([gates * hiddenSize, hiddenSize], dtype), -bound, bound, generator)),
                };
                if (bias)
                {
                    list.Add(RegisterParameter("bias_ih" + sfx, Init.Uniform(Tensor.Zeros([gates * hiddenSize], dtype), -bound, bound, generator)));
                    list.Add(RegisterParameter("bias_hh" + sfx, Init.Uniform(Tensor.Zeros([gates * hiddenSize], dtype), -bound, bound, generator)));
                }
                _weights[layer * Directions + dir] = [.. list];
            }
    }

    /// <summary>Features per input step.</summary>
    public int InputSize { get; }

    /// <summary>Features of the hidden state.</summary>
    public int HiddenSize { get; }

    /// <summary>Stacked layers.</summary>
    public int NumLayers { get; }

    /// <summary>True when inputs and outputs are (batch, seq, feature) rather than (seq, batch, feature).</summary>
    public bool BatchFirst { get; }

    /// <summary>Dropout on the outputs of every layer but the last, in training.</summary>
    public double Dropout { get; }

    /// <summary>True when a second direction reads the sequence backwards.</summary>
    public bool Bidirectional { get; }

    /// <summary>1, or 2 when bidirectional.</summary>
    public int Directions => Bidirectional ? 2 : 1;

    /// <summary>
    /// One layer direction over the sequence, from the input projection x W_ih^T + b_ih of every step (steps, batch, gates*hidden):
    /// the outputs (steps, batch, hidden) and the final state. <paramref name="layer"/> is the stacked layer's index.
    /// </summary>
    private protected abstract (Tensor Seq, Tensor H, Tensor? C) Sequence(Tensor proj, Tensor h, Tensor? c, Tensor whh, Tensor? bhh, bool reverse, int layer);

    /// <summary>
    /// A sequence as one <paramref name="cell"/> call per step, from the state and the step's input projection. While a
    /// listener measures per-step gradients, each step's hidden state is marked for the engine to measure dL/dh_t.
    /// </summary>
    private protected static (Tensor Seq, Tensor H, Tensor? C) StepByStep(Tensor proj, Tensor h, Tensor? c, bool reverse, int layer,
        Func<Tensor, Tensor, Tensor?, (Tensor H, Tensor? C)> cell)
    {
        int steps = proj.Size(0);
        var slices = proj.Split(1); // one op: its backward is one Cat, not a sum of full-size slices
        var outputs = new Tensor[steps];
        var probe = Instrumentation.RecurrentStepsArmed && proj.RequiresGrad && Autograd.IsGradEnabled ? new RecurrentStepSquares(layer, reverse, steps) : null;
        for (int s = 0; s < steps; s++)
        {
            int t = reverse ? steps - 1 - s : s;
            (h, c) = cell(slices[t].Squeeze(0), h, c);
            probe?.Mark(h, t);
            outputs[t] = h;
        }
        return (Tensor.Stack(outputs), h, c);
    }

    /// <summary>Checks the input and states and runs every layer and direction over the sequence.</summary>
    private protected (Tensor Output, Tensor H, Tensor? C) Run(Tensor input, Tensor? h0, Tensor? c0, bool hasCell)
    {
        bool unbatched = input.Rank == 2;
        CheckInput(input, BatchFirst ? $"[N, L, {InputSize}] or [L, {InputSize}]" : $"[L, N, {InputSize}] or [L, {InputSize}]",
            (input.Rank == 3 || unbatched) && input.Size(-1) == InputSize && input.Size(unbatched || !BatchFirst ? 0 : 1) > 0);
        var x = unbatched ? input.Unsqueeze(1) : BatchFirst ? input.Transpose(0, 1) : input;
        int n = x.Size(1);
        var h = State(h0, n, unbatched, x.DType, "h0");
        var c = hasCell ? State(c0, n, unbatched, x.DType, "c0") : null;
        var hs = new List<Tensor>();
        var cs = new List<Tensor>();
        for (int layer = 0; layer < NumLayers; layer++)
        {
            var outs = new Tensor[Directions];
            for (int dir = 0; dir < Directions; dir++)
            {
                int k = layer * Directions + dir;
                var (seq, hn, cn) = RunDirection(x, h.Select(0, k), c?.Select(0, k), _weights[k], reverse: dir == 1, layer);
                outs[dir] = seq;
                hs.Add(hn);
                if (cn is not null) cs.Add(cn);
            }
            x = Directions == 1 ? outs[0] : Tensor.Cat(outs, 2);
            if (layer < NumLayers - 1 && Dropout > 0) x = Functional.Dropout(x, Dropout, Training);
        }
        var output = unbatched ? x.Squeeze(1) : BatchFirst ? x.Transpose(0, 1) : x;
        var hOut = Tensor.Stack(hs);
        var cOut = hasCell ? Tensor.Stack(cs) : null;
        return unbatched ? (output, hOut.Squeeze(1), cOut?.Squeeze(1)) : (output, hOut, cOut);
    }

    private (Tensor Seq, Tensor H, Tensor? C) RunDirection(Tensor x, Tensor h, Tensor? c, Tensor[] w, bool reverse, int layer)
    {
        Tensor? bih = w.Length > 2 ? w[2] : null, bhh = w.Length > 2 ? w[3] : null;
        return Sequence(Functional.Linear(x, w[0], bih), h, c, w[1], bhh, reverse, layer);
    }

    private Tensor State(Tensor? given, int n, bool unbatched, DType dtype, string name)
    {
        int layers = NumLayers * Directions;
        if (given is null) return Tensor.Zeros([layers, n, HiddenSize], dtype);
        int[] expected = unbatched ? [layers, HiddenSize] : [layers, n, HiddenSize];
        if (!Shapes.Equal(given.Shape, expected))
            Guard.ThrowArg($"{TypeName}{(Path.Length > 0 ? $" '{Path}'" : "")}", name, $"expected {name} of shape {Guard.Shape(expected)}, got {Guard.Shape(given)}.");
        return unbatched ? given.Unsqueeze(1) : given;
    }

    /// <inheritdoc />
    protected override string ExtraRepr() =>
        string.Create(CultureInfo.InvariantCulture, $"{InputSize}, {HiddenSize}") + (NumLayers != 1 ? $", num_layers={NumLayers}" : "") +
        (BatchFirst ? ", batch_first=True" : "") + (Dropout != 0 ? string.Create(CultureInfo.InvariantCulture, $", dropout={Dropout}") : "") +
        (Bidirectional ? ", bidirectional=True" : "");
}
