using GradFlow.Diagnostics;
using GradFlow.NN;
using GradFlow.Optim;

namespace GradFlow.Tests.Diagnostics;

/// <summary>
/// What a monitored training step allocates once steady, against the same step unmonitored: only the record the step
/// hands out (which its listeners may keep, so it owns its objects). Allocation counts are deterministic: no timing.
/// </summary>
public class MonitorAllocationTests
{
    // The bound, per record: a ParameterStats and its TensorStats for each parameter and each layer (64 + 88 B on x64),
    // the two arrays and the StepRecord, and 512 B of slack for the runtime's layout. A step with details adds a compact
    // histogram per parameter and per layer (at most the 56 buckets of each sign it spans), and one small record per
    // activation and per flow entry.
    private const long PerStat = 160, Slack = 512, PerHistogram = 48 + 24 + 2 * 8 * Log2Histogram.BucketCount, PerEntry = 128;

    private static long LightBound(StepRecord r) => PerStat * (r.Parameters.Count + r.Layers.Count) + 8 * (r.Parameters.Count + r.Layers.Count) + 3 * 24 + 160 + Slack;

    private static long DetailBound(StepRecord r) => LightBound(r) + PerHistogram * (r.Parameters.Count + r.Layers.Count)
        + (PerEntry + 8) * (r.Activations.Count + r.Flow.Count) + 2 * 24;

    private static (Module Model, Optimizer Optimizer, Func<Tensor> Loss) Mlp(int depth, bool relu)
    {
        var g = new Generator(3);
        var model = new Sequential();
        for (int i = 0; i < depth; i++)
        {
            model.Add(new Linear(i == 0 ? 24 : 16, 16, generator: g));
            model.Add(relu ? new ReLU() : new Sigmoid());
        }
        model.Add(new Linear(16, 4, generator: g));
        var x = Tensor.Randn([8, 24], DType.Float32, g);
        var y = Tensor.FromArray(new long[] { 0, 1, 2, 3, 0, 1, 2, 3 }, 8);
        var lossFn = new CrossEntropyLoss();
        return (model, new SGD(model.Parameters(), lr: 0.1), () => lossFn.Call(model.Call(x), y));
    }

    private static (Module Model, Optimizer Optimizer, Func<Tensor> Loss) Gru()
    {
        var g = new Generator(4);
        var gru = new GRU(6, 8, generator: g);
        var head = new Linear(8, 3, generator: g);
        var model = new Sequential(("gru", (Module)gru), ("head", head));
        var x = Tensor.Randn([12, 4, 6], DType.Float32, g);
        var y = Tensor.FromArray(new long[] { 0, 1, 2, 0 }, 4);
        var lossFn = new CrossEntropyLoss();
        return (model, new Adam(model.Parameters(), lr: 1e-3), () => lossFn.Call(head.Call(gru.Call(x).Select(0, 11)), y));
    }

    public static TheoryData<string> Models => ["deep_sigmoid", "relu_mlp", "gru"];

    [Theory]
    [MemberData(nameof(Models))]
    public void SteadyMonitoredStepAllocatesOnlyItsRecord(string name)
    {
        var (model, optimizer, loss) = name switch { "gru" => Gru(), "relu_mlp" => Mlp(2, relu: true), _ => Mlp(6, relu: false) };
        var arena = new TensorArena();
        void Step()
        {
            using (arena.Step())
            {
                optimizer.ZeroGrad();
                loss().Backward();
                optimizer.Step();
            }
        }
        for (int i = 0; i < 10; i++) Step();
        long plain = TestUtil.SteadyAllocation(Step, 0).Least;

        using var monitor = GradientMonitor.Attach(model, optimizer, new MonitorOptions { DetailEvery = 5 });
        StepRecord? last = null;
        monitor.StepRecorded += r => last = r;
        for (int i = 0; i < 10; i++) Step(); // two periods of the schedule: every tracker and buffer made
        // Per position in the schedule (the first of each five has the details), the least over four periods.
        var least = new long[5];
        var records = new StepRecord[5];
        Array.Fill(least, long.MaxValue);
        for (int period = 0; period < 4; period++)
            for (int k = 0; k < 5; k++)
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                Step();
                least[k] = Math.Min(least[k], GC.GetAllocatedBytesForCurrentThread() - before);
                records[k] = last!;
            }
        Assert.True(records[0].Activations.Count > 0 && records[1].Activations.Count == 0, "the schedule: details on the first step of five");
        long detail = least[0] - plain, bound = DetailBound(records[0]);
        Assert.True(detail <= bound, $"{name}: a step with details allocated {detail} B beyond the unmonitored step; its record needs at most {bound} B");
        for (int k = 1; k < 5; k++)
        {
            long light = least[k] - plain, lightBound = LightBound(records[k]);
            Assert.True(light <= lightBound, $"{name}: step {k} of the period allocated {light} B beyond the unmonitored step; its record needs at most {lightBound} B");
        }
    }
}
