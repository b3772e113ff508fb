namespace GradFlow;

// The per-step gradient measure of a recurrent layer run step by step (RNN, GRU, the LSTM's composed twin). The engine
// sums every gradient that reaches h_t (from the output at t and from step t+1) before it runs the node that made h_t, so
// that node's incoming gradient is exactly dL/dh_t: the engine measures it there (Instrumentation.BeforeBackward) for the
// nodes marked here. The measure adds no node to the graph (an identity node per time step allocated a node, a tensor
// and an edge array per step); a mark is an entry in a per-thread table, made only while a listener has armed
// Instrumentation.ArmRecurrentSteps. The fused LSTM measures in its own backward instead (Ops/Lstm.cs).

/// <summary>The squared norms of dL/dh_t of one layer direction, filled as backward reaches each step's marked node.</summary>
internal sealed class RecurrentStepSquares(int layer, bool reverse, int steps)
{
    public int Layer { get; } = layer;
    public bool Reverse { get; } = reverse;
    public double[] Squares { get; } = new double[steps];
    public int Pending { get; private set; }

    /// <summary>Marks <paramref name="h"/>, the hidden state of time step <paramref name="t"/>, for measuring in backward.</summary>
    public void Mark(Tensor h, int t)
    {
        if (h.GradFn is not { } node || !Autograd.NeedsGrad(h)) return;
        Pending++;
        Instrumentation.MarkRecurrentStep(node, h.OutputNr, this, t);
    }

    /// <summary>
    /// Adds ||<paramref name="g"/>||^2 (dL/dh_t) for step <paramref name="t"/>; the last marked step to run (the first in
    /// the run's order) hands the whole sequence over, keyed by <paramref name="node"/>.
    /// </summary>
    public void Add(Node node, int t, Tensor? g)
    {
        if (g is not null) Squares[t] += SumSquares(g);
        if (--Pending == 0) Instrumentation.RecordRecurrentSteps(node, Layer, Reverse, Squares, Squares.Length);
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
