using GradFlow.Diagnostics;
using GradFlow.NN;
using GradFlow.Optim;
using GradFlow.Reporting;

namespace GradFlow.Tests.Diagnostics;

/// <summary>
/// Faults of the training loop the engine sees directly: a gradient carried over from an earlier step (ZeroGrad
/// forgotten) and a batch of identical inputs; and the two rate rules that need no loss rise (movement, killed ReLUs).
/// </summary>
public class LoopFaultTests
{
    private static (Tensor X, Tensor Y) Batch(int n = 32, ulong seed = 1)
    {
        var x = Tensor.Randn([n, 6], generator: new Generator(seed));
        var y = Tensor.FromArray(Enumerable.Range(0, n).Select(i => (long)(i % 3)).ToArray());
        return (x, y);
    }

    private static Sequential Model(ulong seed)
    {
        using var _ = Generator.UseAsDefault(new Generator(seed)); // not the shared default: tests run side by side
        return new Sequential(new Linear(6, 16), new ReLU(), new Linear(16, 3));
    }

    // Trains with the given loop body per step and returns the monitor's records.
    private static List<StepRecord> Records(Module model, Optimizer optimizer, int steps, Action<int, Tensor, Tensor> step)
    {
        var (x, y) = Batch();
        using var monitor = GradientMonitor.Attach(model, optimizer, new MonitorOptions { Histograms = false });
        var records = new List<StepRecord>();
        monitor.StepRecorded += records.Add;
        for (int i = 0; i < steps; i++) step(i, x, y);
        return records;
    }

    [Fact]
    public void AForgottenZeroGradIsSeenByTheEngine()
    {
        var model = Model(2);
        var optimizer = new SGD(model.Parameters(), 0.01);
        var records = Records(model, optimizer, 4, (_, x, y) =>
        {
            Functional.CrossEntropy(model.Call(x), y).Backward();
            optimizer.Step();
        });
        Assert.Equal(0, records[0].GradientsCarriedOver); // the first step has nothing to carry
        Assert.All(records.Skip(1), r => Assert.Equal(4, r.GradientsCarriedOver)); // two weights and two biases
    }

    [Theory]
    [InlineData("zero-to-none")]
    [InlineData("zero-in-place")]
    [InlineData("module-zero-in-place")]
    [InlineData("manual-fill")]
    [InlineData("micro-batches")]
    public void ACorrectLoopCarriesNothing(string loop)
    {
        var model = Model(3);
        var optimizer = new Adam(model.Parameters(), 1e-3);
        var records = Records(model, optimizer, 5, (_, x, y) =>
        {
            switch (loop)
            {
                case "zero-to-none": optimizer.ZeroGrad(); break;
                case "zero-in-place": optimizer.ZeroGrad(setToNone: false); break;
                case "module-zero-in-place": model.ZeroGrad(setToNone: false); break;
                case "manual-fill":
                    using (Autograd.NoGrad())
                        foreach (var p in model.Parameters()) p.Grad?.Zero();
                    break;
                case "micro-batches": // two halves summed, then one step, then cleared: accumulation within a step
                    optimizer.ZeroGrad();
                    Functional.CrossEntropy(model.Call(x.Slice(0, 0, 16)), y.Slice(0, 0, 16)).Backward();
                    Functional.CrossEntropy(model.Call(x.Slice(0, 16, 32)), y.Slice(0, 16, 32)).Backward();
                    optimizer.Step();
                    return;
            }
            Functional.CrossEntropy(model.Call(x), y).Backward();
            optimizer.Step();
        });
        Assert.All(records, r => Assert.Equal(0, r.GradientsCarriedOver));
    }

    [Fact]
    public void AnotherOptimisersBackwardIsClearedBeforeThisStep()
    {
        // A GAN's pattern: the critic's loss also reaches the generator's parameters, whose gradient the generator's
        // ZeroGrad then clears before its own backward; nothing is carried into the generator's step.
        var generator = Model(4);
        var critic = new Linear(3, 1);
        var optG = new SGD(generator.Parameters(), 0.01);
        var optC = new SGD(critic.Parameters(), 0.01);
        var records = Records(generator, optG, 4, (_, x, _) =>
        {
            optC.ZeroGrad();
            critic.Call(generator.Call(x)).Mean().Backward();
            optC.Step();
            optG.ZeroGrad();
            (-critic.Call(generator.Call(x)).Mean()).Backward();
            optG.Step();
        });
        Assert.All(records, r => Assert.Equal(0, r.GradientsCarriedOver));
    }

    [Fact]
    public void CarriedOverGradientsSurviveTheRunLog()
    {
        var model = Model(5);
        var optimizer = new SGD(model.Parameters(), 0.01);
        var (x, y) = Batch();
        var path = Path.Combine(Path.GetTempPath(), $"gradflow-carried-{Guid.NewGuid():N}.jsonl");
        try
        {
            var records = new List<StepRecord>();
            using (var monitor = GradientMonitor.Attach(model, optimizer, new MonitorOptions { Histograms = false }))
            using (RunLog.Attach(monitor, path))
            {
                monitor.StepRecorded += records.Add;
                for (int i = 0; i < 3; i++)
                {
                    Functional.CrossEntropy(model.Call(x), y).Backward();
                    optimizer.Step();
                }
            }
            using var reader = RunLog.Open(path);
            Assert.Equal([0, 4, 4], records.Select(r => r.GradientsCarriedOver));
            Assert.Equal(records.Select(r => r.GradientsCarriedOver), reader.ReadRecords().Select(r => r.GradientsCarriedOver));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void AForgottenZeroGradUnderAdamIsWarnedEvenWhenTheRunLearns()
    {
        // Adam rescales the growing sum, so the loss still falls: no symptom, yet the loop is wrong. The finding rests
        // on the engine's observation, from the third carried step.
        var model = Model(6);
        var optimizer = new Adam(model.Parameters(), 1e-2);
        var (x, y) = Batch();
        using var monitor = GradientMonitor.Attach(model, optimizer, new MonitorOptions { Histograms = false });
        using var doctor = Doctor.Attach(monitor, new DoctorOptions { Classes = 3 }, probes: false);
        double first = double.NaN, last = double.NaN;
        for (int i = 0; i < 40; i++)
        {
            var loss = Functional.CrossEntropy(model.Call(x), y);
            if (i == 0) first = loss.Item();
            last = loss.Item();
            loss.Backward();
            optimizer.Step();
        }
        Assert.True(last < 0.8 * first, $"the run should still learn: {first} -> {last}");
        var f = Assert.Single(doctor.Findings, f => f.Kind == FindingKind.GradientAccumulation);
        Assert.Equal(Severity.Warning, f.Severity);
        Assert.Equal(2, f.FirstStep); // steps 2, 3 and 4 carried: raised at 4, dated from the first
        Assert.Equal(4, f.Evidence[0].Value);
        Assert.Contains("ZeroGrad", f.Fixes[0].Action);
    }

    // Three correct steps on the given inputs with the doctor and its live probes attached.
    private static IReadOnlyList<Finding> FirstSteps(Tensor x, ulong seed)
    {
        var model = Model(seed);
        var optimizer = new SGD(model.Parameters(), 0.05);
        var (_, y) = Batch();
        using var monitor = GradientMonitor.Attach(model, optimizer, new MonitorOptions { Histograms = false });
        using var doctor = Doctor.Attach(monitor, new DoctorOptions { Classes = 3 });
        for (int i = 0; i < 3; i++)
        {
            optimizer.ZeroGrad();
            Functional.CrossEntropy(model.Call(x), y).Backward();
            optimizer.Step();
        }
        return doctor.Findings;
    }

    [Fact]
    public void IdenticalInputsAreNotLearning()
    {
        var f = Assert.Single(FirstSteps(Tensor.Full([32, 6], 0.3), 7), f => f.Kind == FindingKind.NotLearning);
        Assert.Equal(Severity.Error, f.Severity);
        Assert.Contains("same input", f.Title);
        Assert.Equal(1, f.FirstStep);
    }

    [Fact]
    public void VariedInputsRaiseNoConstantInputFinding() =>
        Assert.DoesNotContain(FirstSteps(Batch().X, 8), f => f.Kind == FindingKind.NotLearning);
}
