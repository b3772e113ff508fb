using GradFlow.Diagnostics;
using GradFlow.NN;
using GradFlow.Optim;

namespace GradFlow.Tests.Diagnostics.Curvature;

public class StabilityTests
{
    private static readonly double[] s_lambda = [1, 3, 10];

    // f(theta) = sum lambda_i theta_i^2 / 2: Hessian diag(lambda).
    private static (Tensor Theta, Func<Tensor> Loss) Quadratic()
    {
        var theta = Tensor.Ones([3], DType.Float64, requiresGrad: true);
        var lambda = Tensor.FromArray(s_lambda, 3);
        return (theta, () => (lambda * theta.Pow(2)).Sum() * 0.5);
    }

    private static double Run(Func<Tensor, Optimizer> make, int steps = 1500)
    {
        var (theta, loss) = Quadratic();
        var opt = make(theta);
        for (int i = 0; i < steps; i++)
        {
            opt.ZeroGrad();
            loss().Backward();
            opt.Step();
            if (!double.IsFinite(theta.Norm().Item()) || theta.Norm().Item() > 1e6) break;
        }
        return theta.Norm().Item();
    }

    // The threshold is checked against GradFlow's own optimiser on the quadratic: below it (ratio < 1) the iterates
    // shrink, above it they blow up. Ratio 0.97 and 1.03 keep the spectral radius a few percent from 1 either side.
    [Theory]
    [InlineData(0.0, 0.0, false)]
    [InlineData(0.9, 0.0, false)]
    [InlineData(0.5, 0.3, false)]
    [InlineData(0.9, 0.0, true)]
    public void SgdThresholdSeparatesConvergenceFromDivergence(double momentum, double dampening, bool nesterov)
    {
        var (theta, loss) = Quadratic();
        var probeOpt = new SGD([theta], lr: 1, momentum: momentum, dampening: dampening, nesterov: nesterov);
        var unit = Stability.Measure(CurvatureOperator.Hessian(loss, [theta]), probeOpt, tolerance: 1e-12);
        Assert.Equal(10, unit.Sharpness!.Value, 10);
        Assert.Null(unit.PreconditionedSharpness);
        // The threshold scales as 1/lr: the boundary learning rate is threshold(lr = 1) / lambda_max.
        double boundary = unit.StabilityThreshold!.Value / unit.Sharpness.Value;
        foreach (double f in new[] { 0.97, 1.03 })
        {
            double lr = f * boundary;
            var (t2, l2) = Quadratic();
            var r = Stability.Measure(CurvatureOperator.Hessian(l2, [t2]), new SGD([t2], lr, momentum, dampening, nesterov: nesterov), tolerance: 1e-12);
            Assert.Equal(f, r.Ratio!.Value, 8);
            double norm = Run(t => new SGD([t], lr, momentum, dampening, nesterov: nesterov));
            if (f < 1) Assert.True(norm < 1e-3, $"lr {lr} (ratio {r.Ratio}) should converge, |theta| = {norm}");
            else Assert.True(norm > 1e3 || !double.IsFinite(norm), $"lr {lr} (ratio {r.Ratio}) should diverge, |theta| = {norm}");
        }
    }

    [Fact]
    public void WeightDecayAddsToTheSharpness()
    {
        var (theta, loss) = Quadratic();
        var r = Stability.Measure(CurvatureOperator.Hessian(loss, [theta]), new SGD([theta], 0.1, weightDecay: 0.5), tolerance: 1e-12);
        Assert.Equal(10.5, r.Sharpness!.Value, 10);
        Assert.Equal(20, r.StabilityThreshold!.Value, 12);
        Assert.Equal("2/lr", r.Rule);
    }

    private static void Steps(Optimizer opt, Func<Tensor> loss, int n)
    {
        for (int i = 0; i < n; i++)
        {
            opt.ZeroGrad();
            loss().Backward();
            opt.Step();
        }
    }

    [Fact]
    public void AdamPreconditionedSharpnessOnADiagonalHessianIsTheLargestScaledCurvature()
    {
        var (theta, loss) = Quadratic();
        var adam = new Adam([theta], lr: 0.01, beta1: 0.8, beta2: 0.99);
        Steps(adam, loss, 5);
        var r = Stability.Measure(CurvatureOperator.Hessian(loss, [theta]), adam, step: 5, tolerance: 1e-12, plainSharpness: true);
        var v = adam.GetState(theta)!.Buffer("exp_avg_sq").ToDoubleArray();
        double expected = s_lambda.Select((l, i) => l / ((1 - Math.Pow(0.8, 5)) * (Math.Sqrt(v[i] / (1 - Math.Pow(0.99, 5))) + 1e-8))).Max();
        Assert.Equal(expected, r.PreconditionedSharpness!.Value, 8);
        Assert.Equal(10, r.Sharpness!.Value, 10);
        Assert.Equal(3.6 / (0.2 * 0.01), r.StabilityThreshold!.Value, 8);
        Assert.Equal(5, r.Step);
        Assert.Equal("Adam", r.Optimizer);
    }

    [Fact]
    public void RmspropCentredWithMomentum()
    {
        var (theta, loss) = Quadratic();
        var opt = new RMSprop([theta], lr: 0.01, alpha: 0.9, momentum: 0.5, centered: true);
        Steps(opt, loss, 4);
        var r = Stability.Measure(CurvatureOperator.Hessian(loss, [theta]), opt, tolerance: 1e-12);
        var state = opt.GetState(theta)!;
        var v = state.Buffer("square_avg").ToDoubleArray();
        var a = state.Buffer("grad_avg").ToDoubleArray();
        double expected = s_lambda.Select((l, i) => l / (Math.Sqrt(v[i] - a[i] * a[i]) + 1e-8)).Max();
        Assert.Equal(expected, r.PreconditionedSharpness!.Value, 8);
        Assert.Equal(3 / 0.01, r.StabilityThreshold!.Value, 8);
    }

    [Fact]
    public void AdamPreconditionedSharpnessMatchesPyTorch()
    {
        var m = CurvatureFixtures.Load("mlp");
        var c = m.Case;
        var adam = new Adam(m.Net.Parameters(), lr: c.Param("lr"), beta1: c.Param("beta1"), beta2: c.Param("beta2"), eps: c.Param("eps"));
        Steps(adam, m.Loss, c.IntParam("steps"));
        var r = Stability.Measure(CurvatureOperator.Hessian(m.Loss, m.Net), adam, tolerance: 1e-8, plainSharpness: true);
        SpectrumTests.AssertRelative(m.Out("adam_preconditioned_sharpness"), r.PreconditionedSharpness!.Value, 1e-4, "preconditioned sharpness");
        SpectrumTests.AssertRelative(m.Out("adam_sharpness"), r.Sharpness!.Value, 1e-4, "sharpness");
    }

    // A float64 BatchNorm MLP trained by AdamW: the probe's preconditioned sharpness against a dense eigen-decomposition
    // of S H S, H the exact Hessian built column by column from products (docs/CURVATURE.md).
    private static (Sequential Net, Func<Tensor> Loss, AdamW Opt) BatchNormRun()
    {
        var net = new Sequential(new Linear(3, 4, dtype: DType.Float64, generator: new Generator(1)), new BatchNorm1d(4, dtype: DType.Float64), new Tanh(),
            new Linear(4, 2, dtype: DType.Float64, generator: new Generator(2)));
        var x = Tensor.Randn([8, 3], DType.Float64, new Generator(3));
        var y = Tensor.FromArray(Enumerable.Range(0, 8).Select(i => (long)(i % 2)).ToArray(), 8);
        Tensor Loss() => Functional.CrossEntropy(net.Call(x), y);
        var opt = new AdamW(net.Parameters(), lr: 1e-2);
        Steps(opt, Loss, 20);
        return (net, Loss, opt);
    }

    private static double[,] DenseHessian(CurvatureOperator op)
    {
        int n = op.Dimension;
        var h = new double[n, n];
        var e = new double[n];
        for (int j = 0; j < n; j++)
        {
            e[j] = 1;
            var column = op.Apply(e);
            e[j] = 0;
            for (int i = 0; i < n; i++) h[i, j] = column[i];
        }
        return h;
    }

    [Fact]
    public void AdamWPreconditionedSharpnessOfABatchNormModelIsThatOfTheExactHessian()
    {
        var (net, loss, opt) = BatchNormRun();
        using var op = CurvatureOperator.Hessian(loss, net);
        var h = DenseHessian(op);
        int n = op.Dimension, bias = 12; // 0.weight (4x3), then 0.bias (4): the biases BatchNorm's batch mean cancels
        for (int i = 0; i < n; i++)
            for (int j = bias; j < bias + 4; j++)
                Assert.True(Math.Abs(h[i, j]) < 1e-12, $"H[{i},{j}] = {h[i, j]}: a bias before BatchNorm must be flat in training mode");
        var s = new double[n];
        int at = 0;
        foreach (var p in op.Parameters)
        {
            var state = opt.GetState(p)!;
            foreach (var v in state.Buffer("exp_avg_sq").ToDoubleArray())
                s[at++] = 1 / Math.Sqrt((1 - Math.Pow(0.9, state.Step)) * (Math.Sqrt(v / (1 - Math.Pow(0.999, state.Step))) + 1e-8));
        }
        var m = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) m[i, j] = s[i] * h[i, j] * s[j];
        double expected = SymmetricEigen.Jacobi(m).Values.Max();
        var r = Stability.Measure(op, opt, tolerance: 1e-10, plainSharpness: true);
        SpectrumTests.AssertRelative(expected, r.PreconditionedSharpness!.Value, 1e-8, "preconditioned sharpness");
        SpectrumTests.AssertRelative(SymmetricEigen.Jacobi(h).Values.Max(), r.Sharpness!.Value, 1e-8, "sharpness");
        Assert.True(r.Ratio < 1, $"a healthy run reads {r.Ratio} x the threshold");
    }

    [Fact]
    public void BatchNormOnRunningStatisticsMakesTheFlatBiasesReadAsSharpUnderAdam()
    {
        // The trap of docs/CURVATURE.md: evaluation mode gives the pre-BN biases curvature, and Adam's preconditioner
        // there is 1/eps because training never gave them a gradient. The reading is then orders above the threshold.
        var (net, loss, opt) = BatchNormRun();
        net.Eval();
        using var op = CurvatureOperator.Hessian(loss, net);
        var h = DenseHessian(op);
        double biasCurvature = Enumerable.Range(12, 4).Max(i => h[i, i]);
        Assert.True(biasCurvature > 1e-3, $"the pre-BN biases' largest curvature on running statistics is {biasCurvature}");
        var r = Stability.Measure(op, opt, tolerance: 1e-6);
        Assert.True(r.Ratio > 100, $"evaluation mode read {r.Ratio} x the threshold");
    }

    [Fact]
    public void AnAdamProbeWarmStartsBothItsLanczosRuns()
    {
        var (net, loss, opt) = BatchNormRun();
        var probe = new SharpnessProbe(loss, net, opt, every: 1, plainSharpness: true);
        var first = probe.Run(20);
        var again = probe.Run(20); // the same weights: both start vectors are already the eigenvectors
        Assert.True(again.HvpCount <= 4 && again.HvpCount < first.HvpCount, $"{first.HvpCount} products cold, {again.HvpCount} warm (preconditioned and plain)");
        Assert.Equal(first.Sharpness!.Value, again.Sharpness!.Value, 1e-2 * first.Sharpness.Value);
        Assert.Equal(first.PreconditionedSharpness!.Value, again.PreconditionedSharpness!.Value, 1e-2 * first.PreconditionedSharpness.Value);
    }

    [Fact]
    public void BadInputIsNamed()
    {
        var (theta, loss) = Quadratic();
        var other = Tensor.Ones([2], DType.Float64, requiresGrad: true);
        var op = CurvatureOperator.Hessian(loss, [theta]);
        var e = Assert.Throws<ArgumentException>(() => Stability.Measure(op, new SGD([other], 0.1)));
        Assert.Contains("'param0'", e.Message);
        var adam = new Adam([theta]);
        var noState = Assert.Throws<InvalidOperationException>(() => Stability.Measure(op, adam));
        Assert.Contains("first step", noState.Message);
        var groups = new SGD([new ParamGroup([theta]), new ParamGroup([other], new Dictionary<string, double> { ["lr"] = 0.5 })], lr: 0.1);
        var op2 = CurvatureOperator.Hessian(() => loss() + other.Sum(), [theta, other]);
        Assert.Throws<ArgumentException>(() => Stability.Measure(op2, groups));
    }

    [Fact]
    public void ProbeRunsOnScheduleWarmStartsAndRestoresBuffers()
    {
        var net = new Sequential(new Linear(3, 8, dtype: DType.Float64, generator: new Generator(1)), new BatchNorm1d(8, dtype: DType.Float64), new Tanh(),
            new Linear(8, 2, dtype: DType.Float64, generator: new Generator(2)));
        var x = Tensor.Randn([16, 3], DType.Float64, new Generator(3));
        var y = Tensor.FromArray(Enumerable.Range(0, 16).Select(i => (long)(i % 2)).ToArray(), 16);
        Tensor Loss() => Functional.CrossEntropy(net.Call(x), y);
        var opt = new SGD(net.Parameters(), 0.05, momentum: 0.9);
        var probe = new SharpnessProbe(Loss, net, opt, every: 5, tolerance: 1e-4);
        var results = new List<SharpnessProbeResult>();
        for (long step = 1; step <= 10; step++)
        {
            opt.ZeroGrad();
            Loss().Backward();
            opt.Step();
            var mean = ((BatchNorm1d)net[1]).RunningMean!.ToDoubleArray();
            var grads = net.Parameters().Select(p => p.Grad!.ToDoubleArray()).ToArray();
            if (probe.MaybeRun(step) is { } r) results.Add(r);
            Assert.Equal(mean, ((BatchNorm1d)net[1]).RunningMean!.ToDoubleArray());
            Assert.Equal(grads, net.Parameters().Select(p => p.Grad!.ToDoubleArray()).ToArray());
        }
        Assert.Equal([5L, 10L], results.Select(r => r.Step));
        Assert.Same(results[^1], probe.Last);
        Assert.All(results, r => Assert.True(r.Converged && r.Sharpness > 0 && r.Ratio == r.Sharpness / r.StabilityThreshold));
        Assert.Equal(2 * 1.9 / 0.05, results[0].StabilityThreshold!.Value, 10);
        Assert.True(results[1].HvpCount <= results[0].HvpCount, $"warm start: {results[0].HvpCount} then {results[1].HvpCount} products");
    }
}
