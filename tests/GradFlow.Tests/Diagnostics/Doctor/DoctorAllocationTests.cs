using GradFlow.Diagnostics;
using GradFlow.NN;
using GradFlow.Optim;

namespace GradFlow.Tests.Diagnostics;

/// <summary>
/// What the doctor allocates per step while a finding holds, on step records of real runs (a vanishing sigmoid MLP, a
/// vanishing RNN). Allocation counts are deterministic: no timing.
/// </summary>
public class DoctorAllocationTests
{
    private static List<StepRecord> Record(string name)
    {
        using var seeded = Generator.UseAsDefault(new Generator(11)); // not the shared default: tests run side by side
        var g = new Generator(5);
        Module model;
        Func<Tensor> loss;
        Optimizer optimizer;
        if (name == "deep_sigmoid")
        {
            var seq = new Sequential();
            for (int i = 0; i < 10; i++)
            {
                seq.Add(new Linear(i == 0 ? 16 : 32, 32, generator: g));
                seq.Add(new Sigmoid());
            }
            seq.Add(new Linear(32, 4, generator: g));
            var x = Tensor.Randn([32, 16], DType.Float32, g);
            var y = Tensor.FromArray(Enumerable.Range(0, 32).Select(i => (long)(i % 4)).ToArray());
            model = seq;
            optimizer = new SGD(model.Parameters(), lr: 0.01);
            loss = () => Functional.CrossEntropy(seq.Call(x), y);
        }
        else
        {
            var rnn = new RNN(1, 16, numLayers: 2);
            foreach (var (n, p) in rnn.NamedParameters())
                if (n.StartsWith("weight_hh", StringComparison.Ordinal)) Init.Normal(p, 0, 0.05, new Generator(3));
            var head = new Linear(16, 2);
            model = new Sequential(("rnn", (Module)rnn), ("head", head));
            var x = Tensor.Randn([30, 16, 1], generator: g);
            var v = x.ToDoubleArray();
            var y = Tensor.FromArray(Enumerable.Range(0, 16).Select(b => v[b] + v[16 + b] + v[32 + b] > 0 ? 1L : 0L).ToArray());
            optimizer = new SGD(model.Parameters(), 0.05, momentum: 0.9);
            loss = () => Functional.CrossEntropy(head.Call(rnn.Call(x).Select(0, 29)), y);
        }
        var records = new List<StepRecord>();
        using var monitor = GradientMonitor.Attach(model, optimizer, new MonitorOptions { DetailEvery = 5 });
        monitor.StepRecorded += records.Add;
        for (int i = 0; i < 160; i++)
        {
            optimizer.ZeroGrad();
            loss().Backward();
            optimizer.Step();
        }
        return records;
    }

    // The bound: while a finding holds, the doctor keeps the step's figures in its detectors' fields and writes the text
    // only when the finding is raised, escalates or is read (Doctor.Known). A step that raises nothing therefore allocates
    // nothing: its rings, streaks and snapshots are made once. 64 B a step of slack, over the measured steps, covers a
    // runtime one-off (a lazily made cache) without admitting the 6.5 KB a step that rebuilding the finding cost.
    private const long SlackPerStep = 64;

    [Theory]
    [InlineData("deep_sigmoid")]
    [InlineData("rnn")]
    public void AStepWhileAFindingHoldsAllocatesNothing(string name)
    {
        var records = Record(name);
        var doctor = new Doctor(new DoctorOptions { Classes = name == "rnn" ? 2 : 4 });
        bool raised = false;
        doctor.FindingRaised += _ => raised = true;
        for (int t = 0; t < 100; t++) doctor.Observe(records[t]); // past the window: the finding raised, every ring and streak made
        long quiet = 0;
        int steps = 0;
        for (int t = 100; t < 140; t++)
        {
            raised = false;
            long before = GC.GetAllocatedBytesForCurrentThread();
            doctor.Observe(records[t]);
            long bytes = GC.GetAllocatedBytesForCurrentThread() - before;
            if (raised) continue; // an escalation writes its finding for the event, as it should
            quiet += bytes;
            steps++;
        }
        var held = Assert.Single(doctor.Findings, f => f.Kind == FindingKind.VanishingGradients);
        Assert.True(held.LastStep >= records[139].Step - 5, $"{name}: the finding must hold over the measured steps (last held at {held.LastStep})");
        Assert.True(steps >= 30, $"{name}: {steps} quiet steps");
        Assert.True(quiet <= SlackPerStep * steps, $"{name}: {steps} steps on which a finding held but none was raised allocated {quiet} B in the doctor (bound {SlackPerStep * steps} B)");
    }

    [Theory]
    [InlineData("deep_sigmoid")]
    [InlineData("rnn")]
    public void FindingsWrittenLateMatchThoseWrittenEveryStep(string name)
    {
        var records = Record(name);
        var options = new DoctorOptions { Classes = name == "rnn" ? 2 : 4 };
        var late = new Doctor(options);
        var eager = new Doctor(options);
        foreach (var r in records)
        {
            late.Observe(r);
            eager.Observe(r);
            _ = eager.Findings; // writes every pending finding on every step
        }
        Assert.NotEmpty(late.Findings);
        Assert.Equal(eager.Findings.Select(f => f.ToString()), late.Findings.Select(f => f.ToString()));
        Assert.Equal(eager.Findings.Select(f => (f.LastStep, f.Confidence)), late.Findings.Select(f => (f.LastStep, f.Confidence)));
    }
}
