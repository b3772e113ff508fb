using GradFlow.Data;
using GradFlow.Diagnostics;
using GradFlow.DoctorBench;
using GradFlow.NN;
using GradFlow.Optim;

namespace GradFlow.Tests.Diagnostics;

public class AutoFixTests
{
    // Trains under a monitor and doctor; with autoFix the doctor may roll back, lower the rate and clip.
    private static (List<Finding> Actions, bool Finite) Train(Module model, Optimizer optimizer, Func<int, (Tensor X, Tensor Y)> batches, int steps, bool autoFix)
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
            Functional.CrossEntropy(model.Call(x), y).Backward();
            doctor.ClipGradients();
            optimizer.Step();
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
        Assert.Empty(noActions);
        Assert.True(brokenAcc < 0.5 * healthyAcc, $"the fault is real: broken {brokenAcc:P1}, healthy {healthyAcc:P1}");
        Assert.NotEmpty(actions);
        Assert.True(finite);
        Assert.True(fixedAcc >= 0.95 * healthyAcc, $"auto-fixed {fixedAcc:P1} against healthy {healthyAcc:P1}; actions: {string.Join("; ", actions.Select(a => a.Title))}");
    }
}
