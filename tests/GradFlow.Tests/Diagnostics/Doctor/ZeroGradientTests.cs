using GradFlow.Diagnostics;
using GradFlow.NN;
using GradFlow.Optim;

namespace GradFlow.Tests.Diagnostics;

public class ZeroGradientTests
{
    // Full-batch training under a monitor and an attached doctor with a stationary probe on the same batch.
    private static IReadOnlyList<Finding> Train(Module model, Func<Tensor> loss, int steps, int? classes, double lr = 0.1)
    {
        var optimizer = new SGD(model.Parameters(), lr);
        using var monitor = GradientMonitor.Attach(model, optimizer, new MonitorOptions { Histograms = false });
        using var doctor = Doctor.Attach(monitor, new DoctorOptions { Classes = classes }, probes: false);
        doctor.AddStationaryProbe(loss, model);
        for (int i = 0; i < steps; i++)
        {
            optimizer.ZeroGrad();
            loss().Backward();
            optimizer.Step();
        }
        return doctor.Findings;
    }

    [Fact]
    public void AnAllZeroStartIsASaddle()
    {
        // The saddle demo's fault, exactly: with every weight zero, tanh(0) = 0 and the output layer is zero, so both
        // weight gradients are exactly zero forever; the cross terms d2L/(dW2 dW1) make the Hessian indefinite.
        var model = new Sequential(new Linear(4, 8, bias: false), new Tanh(), new Linear(8, 3, bias: false));
        foreach (var p in model.Parameters()) Init.Zeros(p);
        var x = Tensor.Randn([24, 4], generator: new Generator(5));
        var y = Tensor.FromArray(Enumerable.Range(0, 24).Select(i => (long)(i % 3)).ToArray());
        var findings = Train(model, () => Functional.CrossEntropy(model.Call(x), y), 60, classes: 3);

        var f = Assert.Single(findings, f => f.Kind == FindingKind.ZeroGradient);
        Assert.Equal(Severity.Warning, f.Severity);
        Assert.Contains("saddle", f.Title);
        Assert.Equal(1, f.Evidence[0].Value); // every gradient element exactly zero
        var curvature = Assert.Single(f.Evidence, e => e.Quantity.StartsWith("StationaryPoint.Classify: Saddle", StringComparison.Ordinal));
        Assert.True(curvature.Value < 0, $"lambda_min {curvature.Value}");
        Assert.Contains("randomly", f.Fixes[0].Action);
        Assert.DoesNotContain(findings, f => f.Kind == FindingKind.NotLearning); // the cause is known
    }

    [Fact]
    public void LeastSquaresAtItsSolutionIsAMinimum()
    {
        // Linear regression started at the exact least-squares solution of its (noisy) batch: the gradient is zero up to
        // rounding, the loss stays at its positive minimum, and the Hessian 2 X^T X / n is positive definite.
        var gen = new Generator(9);
        var xs = Enumerable.Range(0, 64).Select(_ => gen.NextNormal()).ToArray();
        var ys = Enumerable.Range(0, 32).Select(i => xs[2 * i] - 2 * xs[2 * i + 1] + 0.3 * gen.NextNormal()).ToArray();
        double sxx = 0, sxy = 0, syy = 0, bx = 0, by = 0;
        for (int i = 0; i < 32; i++)
        {
            double a = xs[2 * i], b = xs[2 * i + 1];
            sxx += a * a; sxy += a * b; syy += b * b; bx += a * ys[i]; by += b * ys[i];
        }
        double det = sxx * syy - sxy * sxy;
        double w0 = (syy * bx - sxy * by) / det, w1 = (sxx * by - sxy * bx) / det; // the normal equations, solved by hand
        var model = new Linear(2, 1, bias: false, dtype: DType.Float64);
        using (Autograd.NoGrad()) model.Weight.CopyFrom(Tensor.FromArray(new[] { w0, w1 }, 1, 2));
        var x = Tensor.FromArray(xs, 32, 2);
        var y = Tensor.FromArray(ys, 32, 1);
        var findings = Train(model, () => Functional.MseLoss(model.Call(x), y), 60, classes: null, lr: 0.01);

        var f = Assert.Single(findings, f => f.Kind == FindingKind.ZeroGradient);
        Assert.Equal(Severity.Info, f.Severity); // nothing is broken: the model cannot do better on this data
        Assert.Contains("minimum", f.Title);
        Assert.Contains(f.Evidence, e => e.Quantity.StartsWith("StationaryPoint.Classify: Minimum", StringComparison.Ordinal));
    }

    [Fact]
    public void OfflineACurvatureSampleClassifiesAndDeadUnitsNeedNone()
    {
        // The same records offline: without curvature the doctor says it cannot tell; a sample with lambda_min < 0 says saddle.
        StepRecord Step(long t, double deadFraction) => new()
        {
            Step = t, Loss = 1.0986, LearningRate = 0.1, GlobalGradNorm = 0,
            Parameters = [new ParameterStats("0.weight", "0", new TensorStats(32, 0, 0, 0, 0, 1, 0, 0, null), 0, 0)],
            Layers = [], Flow = [],
            Activations = [new ActivationStats("1", "Relu", 1, 8, deadFraction, deadFraction, null, 0, 0)],
        };
        var steps = Enumerable.Range(1, 60).Select(t => Step(t, 0)).ToList();
        var options = new DoctorOptions { Classes = 3 };
        Assert.Contains("no curvature", Assert.Single(Doctor.Diagnose(steps, options), f => f.Kind == FindingKind.ZeroGradient).Title);
        var saddle = Doctor.Diagnose(steps, options, [new CurvatureSample(30, LambdaMax: 0.5, LambdaMin: -0.2)]);
        Assert.Contains("saddle", Assert.Single(saddle, f => f.Kind == FindingKind.ZeroGradient).Title);
        var dead = Doctor.Diagnose(Enumerable.Range(1, 60).Select(t => Step(t, 1.0)), options);
        var f = Assert.Single(dead, f => f.Kind == FindingKind.ZeroGradient);
        Assert.Contains("dead network", f.Title);
        Assert.Equal(Severity.Info, f.Severity); // DeadRelu carries the fault
    }
}
