namespace GradFlow;

// The per-step gradient measure of a recurrent layer run step by step (RNN, GRU, the LSTM's composed twin). The engine
// sums every gradient that reaches h_t (from the output at t and from step t+1) before it runs h_t's node, so an
// identity node right after each step's cell receives exactly dL/dh_t. Inserted only while a listener has armed
// Instrumentation.ArmRecurrentSteps; the fused LSTM measures in its own backward instead (Ops/Lstm.cs).
public sealed partial class Tensor
{
    /// <summary>
    /// Passes <paramref name="h"/> (the hidden state of time step <paramref name="t"/>) through an identity whose backward
    /// adds ||dL/dh_t||^2 into <paramref name="sequence"/>; the node that completes the sequence records the measure.
    /// </summary>
    internal static Tensor RecurrentStepProbe(Tensor h, RecurrentStepSquares sequence, int t)
    {
        if (!Autograd.NeedsGrad(h)) return h;
        sequence.Pending++;
        return Autograd.Record(OpNames.RecurrentStep, h.Detach(), new RecurrentStepBackward(sequence, t), h);
    }
}

/// <summary>The squared norms of dL/dh_t of one layer direction, filled by its steps' probes in backward.</summary>
internal sealed class RecurrentStepSquares(int layer, bool reverse, int steps)
{
    public int Layer { get; } = layer;
    public bool Reverse { get; } = reverse;
    public double[] Squares { get; } = new double[steps];
    public int Pending { get; set; }
}

internal sealed class RecurrentStepBackward(RecurrentStepSquares sequence, int t) : Node, IMeasuresRecurrentSteps
{
    protected internal override Tensor?[] Backward(Tensor?[] gradOutputs)
    {
        if (gradOutputs[0] is { } g) sequence.Squares[t] += SumSquares(g);
        // The last probe to run (the first step in time order of the run) hands the whole sequence over.
        if (--sequence.Pending == 0 && Instrumentation.RecurrentStepsArmed)
            Instrumentation.RecordRecurrentSteps(this, sequence.Layer, sequence.Reverse, sequence.Squares, sequence.Squares.Length);
        return gradOutputs;
    }

    // In double and in row-major order, as the fused LSTM sums its steps.
    private static double SumSquares(Tensor g)
    {
        var c = g.ContiguousRaw();
        double sum = 0;
        if (c.DType == DType.Float64)
            foreach (double v in c.Data<double>().AsSpan(c.Offset, c.NumEl)) sum += v * v;
        else if (c.DType == DType.Float32)
            foreach (float v in c.Data<float>().AsSpan(c.Offset, c.NumEl)) sum += (double)v * v;
        else sum = double.NaN;
        return sum;
    }
}
