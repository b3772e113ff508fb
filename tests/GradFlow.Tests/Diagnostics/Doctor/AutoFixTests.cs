using GradFlow.Data;
using GradFlow.Diagnostics;
using GradFlow.DoctorBench;
using GradFlow.NN;
using GradFlow.Optim;
using Xunit.Abstractions;

namespace GradFlow.Tests.Diagnostics;

public class AutoFixTests(ITestOutputHelper output)
{
    // Trains under a monitor and doctor; with autoFix the doctor may roll back, lower the rate and clip. `clip` is a clip the
    // script applies from the first step; `decayAt` divides the rate by 10 there (a step schedule, which settles the last
    // steps so that the final accuracy is the run's plateau, not one noisy mini-batch step); a run without auto-fix stops at
    // its first non-finite loss (nothing is learnt after it).
    private static (List<Finding> Actions, bool Finite) Train(Module model, Optimizer optimizer, Func<int, (Tensor X, Tensor Y)> batches, int steps, bool autoFix,
        double? clip = null, int decayAt = 0)
    {
        using var monitor = GradientMonitor.Attach(model, optimizer, new MonitorOptions { Histograms = false });
        using var doctor = Doctor.Attach(monitor);
        if (autoFix) doctor.EnableAutoFix(model, optimizer);
        var actions = new List<Finding>();
        doctor.FindingRaised += f => { if (f.Kind == FindingKind.AutoFixApplied) actions.Add(f); };
        model.Train();
        for (int step = 1; step <= steps; step++)
        {
            var (x, y) = batches(step);
            optimizer.ZeroGrad();
            var loss = Functional.CrossEntropy(model.Call(x), y);
            loss.Backward();
            if (clip is { } c) monitor.ClipGradNorm(c);
            doctor.ClipGradients();
            optimizer.Step();
            if (step == decayAt)
                foreach (var g in optimizer.ParamGroups) g.Lr *= 0.1;
            if (!autoFix && !double.IsFinite(loss.Item())) break;
        }
        model.Eval();
        return (actions, model.Parameters().All(p => p.ToDoubleArray().All(double.IsFinite)));
    }

    private static double Accuracy(Module model, Tensor x, Tensor y)
    {
        using var _ = Autograd.NoGrad();
        var predicted = model.Call(x).ArgMax(1);
        return predicted.Eq(y).Sum().Item() / y.Size(0);
    }

    [Fact]
    public void AnMlpWithATooHighRateRecoversToItsHealthyTwin()
    {
        var (_, test) = Digits.Load(testFraction: 0.2, seed: 0);
        Module Model()
        {
            using var seeded = Generator.UseAsDefault(new Generator(11)); // not the shared default: tests run side by side
            return Tasks.Mlp([64, 128, 64, 10], () => new ReLU());
        }
        var healthy = Model();
        Train(healthy, new SGD(healthy.Parameters(), 0.05, momentum: 0.9), Tasks.DigitsBatches(5), 300, autoFix: false);
        var broken = Model();
        var (noActions, _) = Train(broken, new SGD(broken.Parameters(), 5.0, momentum: 0.9), Tasks.DigitsBatches(5), 300, autoFix: false);
        var fixedModel = Model();
        var (actions, finite) = Train(fixedModel, new SGD(fixedModel.Parameters(), 5.0, momentum: 0.9), Tasks.DigitsBatches(5), 300, autoFix: true);

        double healthyAcc = Accuracy(healthy, test.Inputs, test.Targets), brokenAcc = Accuracy(broken, test.Inputs, test.Targets);
        double fixedAcc = Accuracy(fixedModel, test.Inputs, test.Targets);
        output.WriteLine($"auto-fixed {fixedAcc:P1} against healthy {healthyAcc:P1}, broken {brokenAcc:P1}");
        Assert.Empty(noActions);
        Assert.True(brokenAcc < 0.5 * healthyAcc, $"the fault is real: broken {brokenAcc:P1}, healthy {healthyAcc:P1}");
        Assert.NotEmpty(actions);
        Assert.True(finite);
        Assert.True(fixedAcc >= 0.95 * healthyAcc, $"auto-fixed {fixedAcc:P1} against healthy {healthyAcc:P1}; actions: {string.Join("; ", actions.Select(a => a.Title))}");
    }

    // A relu RNN (hidden 32) whose recurrent weights are drawn from N(0, 0.4): spectral radius about 0.4 sqrt(32) = 2.3, so
    // over 16 time steps activations and gradients grow by about 2.3^16 = 6e5, and plain SGD overflows within ten steps.
    private static SequenceClassifier ExplodingRnn(ulong seed)
    {
        using var seeded = Generator.UseAsDefault(new Generator(seed));
        var rnn = new RNN(1, 32, relu: true);
        foreach (var (name, p) in rnn.NamedParameters())
            if (name.StartsWith("weight_hh", StringComparison.Ordinal)) Init.Normal(p, 0, 0.4, new Generator(seed + 5));
        return new SequenceClassifier(rnn, 32, 2);
    }

    // Seeds 1-5 less seed 2, whose net does not overflow at this init (no fault to repair; the test asserts the fault).
    // The twin is the same net, data and schedule with the standard remedy for exploding gradients from the first step:
    // clipping at max norm 1.0 (the common PyTorch recipe). The repaired run differs from it by the steps it lost before
    // the doctor acted and by the batches those steps used, so both are compared at the end of a step schedule. How fast
    // a clipped ReLU RNN recovers from this start depends on the batch order (one repaired run in the exploration ended
    // at 0.92 of its twin, the rest at 0.97 or more), and rounding differs between SIMD widths: the claim is therefore
    // made over four seeds, the mean ratio at least 0.95 and no seed below 0.85.
    [Fact]
    public void AnExplodingRnnRecoversToItsClippedTwin()
    {
        var ratios = new List<double>();
        foreach (ulong seed in new ulong[] { 1, 3, 4, 5 })
        {
            const int Steps = RnnSteps, DecayAt = RnnDecayAt;
            var test = Tasks.SignTask(seed + 100, length: 16, span: 16, batch: 512)(0);
            SGD Sgd(Module m) => new(m.Parameters(), RnnLr, momentum: 0.9);
            var twin = ExplodingRnn(seed);
            Train(twin, Sgd(twin), Tasks.SignTask(seed, 16, 16, batch: 64), Steps, autoFix: false, clip: 1.0, decayAt: DecayAt);
            var broken = ExplodingRnn(seed);
            var (noActions, brokenFinite) = Train(broken, Sgd(broken), Tasks.SignTask(seed, 16, 16, batch: 64), Steps, autoFix: false, decayAt: DecayAt);
            var fixedModel = ExplodingRnn(seed);
            var (actions, finite) = Train(fixedModel, Sgd(fixedModel), Tasks.SignTask(seed, 16, 16, batch: 64), Steps, autoFix: true, decayAt: DecayAt);

            double twinAcc = Accuracy(twin, test.X, test.Y), fixedAcc = Accuracy(fixedModel, test.X, test.Y);
            string log = $"seed {seed}: auto-fixed {fixedAcc:P1} against clipped twin {twinAcc:P1}; actions: {string.Join("; ", actions.Select(a => a.Title))}";
            output.WriteLine(log);
            Assert.Empty(noActions);
            Assert.False(brokenFinite, $"seed {seed}: the fault is real: without a clip the weights overflow");
            Assert.Contains(actions, a => a.Title.Contains("rolled back", StringComparison.Ordinal) && a.Title.Contains("clipped at norm", StringComparison.Ordinal));
            Assert.All(actions, a => Assert.Equal(FindingKind.AutoFixApplied, a.Kind));
            Assert.True(finite, log);
            Assert.True(fixedAcc >= 0.85 * twinAcc, log);
            ratios.Add(fixedAcc / twinAcc);
        }
        Assert.True(ratios.Average() >= 0.95, $"mean auto-fixed / twin accuracy {ratios.Average():F3} over seeds 1, 3, 4, 5");
    }

    private const int RnnSteps = 400, RnnDecayAt = 300;
    private const double RnnLr = 0.05;
}
