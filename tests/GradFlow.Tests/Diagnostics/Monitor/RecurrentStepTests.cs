using GradFlow.Diagnostics;
using GradFlow.NN;

namespace GradFlow.Tests.Diagnostics;

/// <summary>
/// ||dL/dh_t|| per time step as the monitor records it, against a float64 reference that unrolls the same cell step by
/// step with public ops and reads each h_t's gradient (RetainGrad).
/// </summary>
public class RecurrentStepTests
{
    private delegate (Tensor H, Tensor? C) Cell(Tensor x, Tensor h, Tensor? c, Tensor wih, Tensor whh, Tensor bih, Tensor bhh);

    private static (Tensor H, Tensor? C) TanhCell(Tensor x, Tensor h, Tensor? c, Tensor wih, Tensor whh, Tensor bih, Tensor bhh) =>
        ((Functional.Linear(x, wih, bih) + Functional.Linear(h, whh, bhh)).Tanh(), null);

    private static (Tensor H, Tensor? C) LstmCell(Tensor x, Tensor h, Tensor? c, Tensor wih, Tensor whh, Tensor bih, Tensor bhh)
    {
        var g = (Functional.Linear(x, wih, bih) + Functional.Linear(h, whh, bhh)).Chunk(4, 1);
        var cn = g[1].Sigmoid() * c! + g[0].Sigmoid() * g[2].Tanh();
        return (g[3].Sigmoid() * cn.Tanh(), cn);
    }

    private static (Tensor H, Tensor? C) GruCell(Tensor x, Tensor h, Tensor? c, Tensor wih, Tensor whh, Tensor bih, Tensor bhh)
    {
        var xg = Functional.Linear(x, wih, bih).Chunk(3, 1);
        var hg = Functional.Linear(h, whh, bhh).Chunk(3, 1);
        var r = (xg[0] + hg[0]).Sigmoid();
        var z = (xg[1] + hg[1]).Sigmoid();
        var n = (xg[2] + r * hg[2]).Tanh();
        return ((1.0 - z) * n + z * h, null);
    }

    // The layer's own weights, unrolled step by step; every h_t keeps its gradient. Returns the output and the h_t per (layer, reverse).
    private static (Tensor Output, Dictionary<(int, bool), Tensor[]> States) Unroll(RNNBase m, Tensor x, Cell cell)
    {
        var p = m.NamedParameters().ToDictionary(q => q.Name, q => q.Parameter);
        int steps = x.Size(0), batch = x.Size(1);
        var states = new Dictionary<(int, bool), Tensor[]>();
        for (int layer = 0; layer < m.NumLayers; layer++)
        {
            var outs = new Tensor[m.Directions];
            for (int dir = 0; dir < m.Directions; dir++)
            {
                string sfx = $"_l{layer}" + (dir == 1 ? "_reverse" : "");
                Tensor h = Tensor.Zeros([batch, m.HiddenSize], DType.Float64);
                Tensor? c = Tensor.Zeros([batch, m.HiddenSize], DType.Float64);
                var hs = new Tensor[steps];
                for (int s = 0; s < steps; s++)
                {
                    int t = dir == 1 ? steps - 1 - s : s;
                    var (hn, cn) = cell(x.Select(0, t), h, c, p["weight_ih" + sfx], p["weight_hh" + sfx], p["bias_ih" + sfx], p["bias_hh" + sfx]);
                    hn.RetainGrad();
                    (h, c) = (hn, cn);
                    hs[t] = hn;
                }
                states[(layer, dir == 1)] = hs;
                outs[dir] = Tensor.Stack(hs);
            }
            x = m.Directions == 1 ? outs[0] : Tensor.Cat(outs, 2);
        }
        return (x, states);
    }

    public static TheoryData<string, int, bool> Layers => new()
    {
        { "lstm", 2, false }, { "lstm", 1, true }, { "rnn", 2, true }, { "gru", 1, false }, { "gru", 2, true },
    };

    private static (RNNBase Module, Cell Cell) Make(string kind, int layers, bool bidirectional, Generator g) => kind switch
    {
        "lstm" => (new LSTM(3, 5, layers, bidirectional: bidirectional, dtype: DType.Float64, generator: g), LstmCell),
        "gru" => (new GRU(3, 5, layers, bidirectional: bidirectional, dtype: DType.Float64, generator: g), GruCell),
        _ => (new RNN(3, 5, layers, bidirectional: bidirectional, dtype: DType.Float64, generator: g), TanhCell),
    };

    [Theory]
    [MemberData(nameof(Layers))]
    public void PerStepNormsEqualAStepByStepReference(string kind, int layers, bool bidirectional)
    {
        var g = new Generator(7);
        var (m, cell) = Make(kind, layers, bidirectional, g);
        var x = Tensor.Randn([9, 4, 3], DType.Float64, g);
        var weights = Tensor.Randn([9, 4, 5 * m.Directions], DType.Float64, g);

        var (reference, states) = Unroll(m, x, cell);
        (reference * weights).Sum().Backward();
        var expected = states.ToDictionary(s => s.Key, s => s.Value.Select(h => Math.Sqrt(h.Grad!.ToDoubleArray().Sum(v => v * v))).ToArray());
        m.ZeroGrad();

        var model = new Sequential(m);
        using var monitor = GradientMonitor.Attach(model);
        (model.Call(x) * weights).Sum().Backward();
        var record = monitor.EndStep()!;

        Assert.Equal(layers * m.Directions, record.RecurrentSteps.Count);
        foreach (var r in record.RecurrentSteps)
        {
            Assert.Equal("0", r.Layer);
            var want = expected[(r.RecurrentLayer, r.Reverse)];
            Assert.Equal(want.Length, r.GradNorms.Count);
            for (int t = 0; t < want.Length; t++)
                Assert.True(Math.Abs(r.GradNorms[t] - want[t]) <= 1e-10 * Math.Max(1, want[t]), $"{kind} {r.Suffix} t={t}: {r.GradNorms[t]:R} vs {want[t]:R}");
        }
        // The gradient a step receives differs from step to step: the figures are per step, not one repeated.
        Assert.True(record.RecurrentSteps[0].GradNorms.Distinct().Count() > 1);
    }

    [Fact]
    public void NothingIsMeasuredOrAddedWhenNotArmed()
    {
        var g = new Generator(8);
        var rnn = new RNN(2, 3, generator: g);
        var x = Tensor.Randn([5, 2, 2], DType.Float32, g);
        using (var off = GradientMonitor.Attach(rnn, options: new MonitorOptions { RecurrentSteps = false }))
        {
            var y = rnn.Call(x);
            Assert.Equal(0, Instrumentation.RecurrentStepMarks);
            y.Sum().Backward();
            Assert.Empty(off.EndStep()!.RecurrentSteps);
        }
        // Without a listener the step-by-step layers mark nothing either.
        rnn.Call(x);
        Assert.Equal(0, Instrumentation.RecurrentStepMarks);
        Assert.False(Instrumentation.RecurrentStepsArmed);
    }

    [Fact]
    public void GradientAccumulationAddsTheSquaresOfEachBackward()
    {
        var g = new Generator(9);
        var lstm = new LSTM(2, 4, dtype: DType.Float64, generator: g);
        var x = Tensor.Randn([6, 3, 2], DType.Float64, g);
        using var monitor = GradientMonitor.Attach(lstm, options: new MonitorOptions { DetailEvery = 1 });
        lstm.Call(x).Sum().Backward();
        lstm.Call(x).Sum().Backward();
        var twice = monitor.EndStep()!.RecurrentSteps.Single().GradNorms.ToArray();
        lstm.Call(x).Sum().Backward();
        var once = monitor.EndStep()!.RecurrentSteps.Single().GradNorms;
        for (int t = 0; t < twice.Length; t++) Assert.Equal(Math.Sqrt(2) * once[t], twice[t], 12);
    }

    [Fact]
    public void StepByStepLayersAreMeasuredOnTheStepsWithDetailsOnly()
    {
        var g = new Generator(11);
        var gru = new GRU(2, 3, generator: g);
        var x = Tensor.Randn([5, 2, 2], DType.Float32, g);
        using var monitor = GradientMonitor.Attach(gru, options: new MonitorOptions { DetailEvery = 2 });
        var counts = new List<int>();
        for (int step = 0; step < 4; step++)
        {
            var y = gru.Call(x);
            counts.Add(Instrumentation.RecurrentStepMarks); // one marked node per time step, on the detailed steps only
            y.Sum().Backward();
            Assert.Equal(0, Instrumentation.RecurrentStepMarks); // backward measured and unmarked every one
            Assert.Equal(step % 2 == 0 ? 5 : 0, monitor.EndStep()!.RecurrentSteps.SingleOrDefault()?.GradNorms.Count ?? 0);
        }
        Assert.Equal([5, 0, 5, 0], counts);
        gru.Call(x); // a forward whose graph never runs backward: its marks go when the step ends
        monitor.EndStep();
        Assert.Equal(0, Instrumentation.RecurrentStepMarks);
    }

    [Fact]
    public void FusedLstmMeasuresWithoutAllocatingPerTimeStep()
    {
        var g = new Generator(10);
        var w = Tensor.Randn([16, 4], DType.Float32, g).RequireGrad();
        Tensor Run(int steps)
        {
            var x = Tensor.Randn([steps, 2, 16], DType.Float32, g).RequireGrad();
            return Tensor.LstmSequence(x, Tensor.Zeros([2, 4]), Tensor.Zeros([2, 4]), w, null, reverse: false)![0].Sum();
        }
        long Backward(Tensor loss)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            loss.Backward();
            return GC.GetAllocatedBytesForCurrentThread() - before;
        }
        Instrumentation.ArmRecurrentSteps();
        try
        {
            Backward(Run(200)); // the per-thread buffer grows once
            long armed = Backward(Run(200));
            Assert.NotNull(Instrumentation.TakeRecurrentSteps());
            Instrumentation.DisarmRecurrentSteps();
            long plain = Backward(Run(200));
            Assert.True(armed <= plain, $"armed backward allocated {armed} B, unarmed {plain} B");
        }
        finally
        {
            while (Instrumentation.RecurrentStepsArmed) Instrumentation.DisarmRecurrentSteps();
        }
    }
}
