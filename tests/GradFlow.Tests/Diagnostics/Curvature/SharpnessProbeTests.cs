using GradFlow.Diagnostics;
using GradFlow.NN;
using GradFlow.Optim;

namespace GradFlow.Tests.Diagnostics.Curvature;

/// <summary>The probe's budget: what a probe measures, how many products it spends, and that warm starts stay right.</summary>
public class SharpnessProbeTests
{
    private static readonly double[] s_lambda = [1, 3, 10];

    // f(w) = sum lambda_i w_i^2 / 2 on a bias-free Linear(3, 1): Hessian diag(1, 3, 10), as a module the probe can take.
    private static (Linear Model, Func<Tensor> Loss) Quadratic()
    {
        var model = new Linear(3, 1, bias: false, dtype: DType.Float64);
        using (Autograd.NoGrad()) model.Weight.CopyFrom(Tensor.Ones([1, 3], DType.Float64));
        var lambda = Tensor.FromArray(s_lambda, 1, 3);
        return (model, () => (lambda * model.Weight.Pow(2)).Sum() * 0.5);
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

    // Adam's P^-1 from its state, as torch.optim.Adam 1.13 updates (docs/CURVATURE.md).
    private static double[] AdamInversePreconditioner(Adam adam, IEnumerable<Tensor> parameters, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
    {
        var result = new List<double>();
        foreach (var p in parameters)
        {
            var state = adam.GetState(p)!;
            foreach (var v in state.Buffer("exp_avg_sq").ToDoubleArray())
                result.Add(1 / ((1 - Math.Pow(beta1, state.Step)) * (Math.Sqrt(v / (1 - Math.Pow(beta2, state.Step))) + eps)));
        }
        return [.. result];
    }

    [Fact]
    public void AnAdamProbeMeasuresThePreconditionedSharpnessOnly()
    {
        var (model, loss) = Quadratic();
        var adam = new Adam(model.Parameters(), lr: 0.01);
        Steps(adam, loss, 5);
        var inverse = AdamInversePreconditioner(adam, model.Parameters());
        double expected = s_lambda.Select((l, i) => l * inverse[i]).Max();
        var r = new SharpnessProbe(loss, model, adam, every: 5, tolerance: 1e-12).Run(5);
        Assert.Equal(expected, r.PreconditionedSharpness!.Value, 8);
        Assert.NotEqual(10, r.PreconditionedSharpness.Value, 3); // the preconditioned operator's, not H's
        Assert.Null(r.Sharpness);
        Assert.Equal(r.PreconditionedSharpness.Value / r.StabilityThreshold!.Value, r.Ratio!.Value, 12);
        // On request, the plain sharpness too, from a second run on the same operator.
        var both = new SharpnessProbe(loss, model, adam, every: 5, tolerance: 1e-12, plainSharpness: true).Run(5);
        Assert.Equal(expected, both.PreconditionedSharpness!.Value, 8);
        Assert.Equal(10, both.Sharpness!.Value, 10);
        Assert.Equal(r.Ratio.Value, both.Ratio!.Value, 12);
    }

    [Fact]
    public void AnRmspropProbeMeasuresThePreconditionedSharpnessOnly()
    {
        var (model, loss) = Quadratic();
        var opt = new RMSprop(model.Parameters(), lr: 0.01);
        Steps(opt, loss, 3);
        var v = opt.GetState(model.Weight)!.Buffer("square_avg").ToDoubleArray();
        var r = new SharpnessProbe(loss, model, opt, tolerance: 1e-12).Run(3);
        Assert.Equal(s_lambda.Select((l, i) => l / (Math.Sqrt(v[i]) + 1e-8)).Max(), r.PreconditionedSharpness!.Value, 8);
        Assert.Null(r.Sharpness);
    }

    // The budget: one Lanczos run of at most maxIterations products (two with the plain sharpness), each counted once.
    // Three distinct eigenvalues in three dimensions: Lanczos spans the space, so it is exact, in three products.
    [Theory]
    [InlineData("SGD", false, 2, 2, 3)]
    [InlineData("Adam", false, 2, 2, 3)]
    [InlineData("Adam", true, 2, 4, 6)]
    [InlineData("RMSprop", false, 2, 2, 3)]
    public void AProbeSpendsWhatItsBudgetSays(string optimizer, bool plain, int cap, int cappedCount, int exactCount)
    {
        var (model, loss) = Quadratic();
        Optimizer opt = optimizer switch
        {
            "SGD" => new SGD(model.Parameters(), 0.01, momentum: 0.9),
            "Adam" => new Adam(model.Parameters(), lr: 0.01),
            _ => new RMSprop(model.Parameters(), lr: 0.01),
        };
        Steps(opt, loss, 2);
        var capped = new SharpnessProbe(loss, model, opt, tolerance: 0, maxIterations: cap, plainSharpness: plain).Run(2);
        Assert.Equal(cappedCount, capped.HvpCount);
        Assert.False(capped.Converged);
        var exact = new SharpnessProbe(loss, model, opt, tolerance: 1e-12, plainSharpness: plain).Run(2);
        Assert.Equal(exactCount, exact.HvpCount);
        Assert.True(exact.Converged);
        // The count is the operator's: every product the measurement made, and no other.
        using var op = CurvatureOperator.Hessian(loss, model);
        var measured = Stability.Measure(op, opt, tolerance: 1e-12, plainSharpness: plain);
        Assert.Equal(op.ProductCount, measured.HvpCount);
        Assert.Equal(exactCount, measured.HvpCount);
    }

    [Fact]
    public void AProbeAtUnchangedWeightsSpendsOneProduct()
    {
        // Warm-started from its own eigenvector, Lanczos's first Ritz pair already meets the tolerance.
        var (net, loss, _) = SmallNet();
        var adam = new Adam(net.Parameters(), lr: 1e-2);
        Steps(adam, loss, 10);
        var probe = new SharpnessProbe(loss, net, adam, tolerance: 1e-4);
        var first = probe.Run(10);
        var again = probe.Run(10);
        Assert.True(first.HvpCount > 1, $"a cold probe took {first.HvpCount} products");
        Assert.Equal(1, again.HvpCount);
        Assert.Equal(first.PreconditionedSharpness!.Value, again.PreconditionedSharpness!.Value, 1e-4 * first.PreconditionedSharpness.Value);
    }

    [Theory]
    [InlineData("SGD")]
    [InlineData("Adam")]
    [InlineData("RMSprop")]
    public void KeptVectorsChangeNoResult(string optimizer)
    {
        // Two probes of the same run, one keeping its vectors between probes (Lanczos's, and an adaptive optimiser's
        // scale and scratch) and one freeing them: kept vectors are reused uninitialised (every entry is written before
        // it is read), so the results are the same bits.
        Optimizer Make(Sequential net) => optimizer switch
        {
            "SGD" => new SGD(net.Parameters(), lr: 0.1, momentum: 0.9),
            "Adam" => new Adam(net.Parameters(), lr: 1e-2),
            _ => new RMSprop(net.Parameters(), lr: 1e-3, centered: true),
        };
        var (netA, lossA, _) = SmallNet();
        var (netB, lossB, _) = SmallNet();
        var (optA, optB) = (Make(netA), Make(netB));
        var keeping = new SharpnessProbe(lossA, netA, optA, every: 5, tolerance: 1e-6, keptVectors: 40);
        var freeing = new SharpnessProbe(lossB, netB, optB, every: 5, tolerance: 1e-6, keptVectors: 0);
        Assert.Equal(40, keeping.KeptVectors);
        for (int probe = 1; probe <= 4; probe++)
        {
            Steps(optA, lossA, 5);
            Steps(optB, lossB, 5);
            var a = keeping.Run(5 * probe);
            var b = freeing.Run(5 * probe);
            Assert.Equal(b.HvpCount, a.HvpCount);
            double sa = (a.PreconditionedSharpness ?? a.Sharpness)!.Value, sb = (b.PreconditionedSharpness ?? b.Sharpness)!.Value;
            Assert.Equal(BitConverter.DoubleToInt64Bits(sb), BitConverter.DoubleToInt64Bits(sa));
        }
    }

    [Fact]
    public void LanczosRentsFromItsPoolAndGivesEveryVectorBack()
    {
        var (net, loss, _) = SmallNet();
        using var op = CurvatureOperator.Hessian(loss, net);
        var pool = new VectorPool(op.Dimension, capacity: 3);
        // Garbage in the kept vectors must not reach a result: fill them with NaN.
        var kept = new[] { pool.Rent(), pool.Rent(), pool.Rent() };
        foreach (var v in kept)
        {
            Array.Fill(v, double.NaN);
            pool.Return(v);
        }
        Assert.Equal(3, pool.Count);
        var start = Enumerable.Range(0, op.Dimension).Select(i => Math.Sin(i + 1.0)).ToArray();
        var startCopy = (double[])start.Clone();
        var pooled = Spectrum.TopEigenvalue(op, 1e-8, 30, 0, start, pool);
        var plain = Spectrum.TopEigenvalue(op, 1e-8, 30, 0, start);
        Assert.Equal(startCopy, start); // the start is read, not written
        Assert.Equal(plain.HvpCount, pooled.HvpCount);
        Assert.Equal(plain.Values, pooled.Values);
        Assert.Equal(plain.Vectors[0], pooled.Vectors[0]);
        // The run needed more vectors than the pool kept (k basis vectors, the next one and the eigenvector) and gave
        // back as many as the pool takes.
        Assert.True(pooled.HvpCount + 2 > 3, $"the run spent only {pooled.HvpCount} products");
        Assert.Equal(3, pool.Count);
        // With room for all of them, a second run (the first's eigenvector given back, as the probe does) rents only
        // arrays the pool held: no fresh memory.
        var roomy = new VectorPool(op.Dimension, capacity: 64);
        var first = Spectrum.TopEigenvalue(op, 1e-8, 30, 0, start, roomy);
        roomy.Return(first.Vectors[0]);
        var held = new HashSet<double[]>(ReferenceEqualityComparer.Instance);
        while (roomy.Count > 0) held.Add(roomy.Rent());
        foreach (var v in held) roomy.Return(v);
        var second = Spectrum.TopEigenvalue(op, 1e-8, 30, 0, start, roomy);
        Assert.Equal(first.HvpCount, second.HvpCount);
        Assert.True(held.Contains(second.Vectors[0]), "the second run's eigenvector is a fresh array");
        Assert.Equal(held.Count - 1, roomy.Count);
        Assert.Equal(plain.Vectors[0], second.Vectors[0]);
        // A vector of another length, or one past the capacity, is not kept.
        pool.Return(new double[op.Dimension + 1]);
        pool.Return(new double[op.Dimension]);
        Assert.Equal(3, pool.Count);
    }

    [Fact]
    public void PowerIterationLeavesItsStartVectorAsItWas()
    {
        var (net, loss, _) = SmallNet();
        using var op = CurvatureOperator.Hessian(loss, net);
        var start = Enumerable.Range(0, op.Dimension).Select(i => Math.Cos(i + 1.0)).ToArray();
        var copy = (double[])start.Clone();
        var first = Spectrum.PowerIteration(op, 1e-6, 50, start: start);
        Assert.Equal(copy, start);
        var second = Spectrum.PowerIteration(op, 1e-6, 50, start: start);
        Assert.Equal(first.Values, second.Values);
    }

    private static (Sequential Net, Func<Tensor> Loss, Tensor[] Parameters) SmallNet()
    {
        var net = new Sequential(new Linear(3, 8, dtype: DType.Float64, generator: new Generator(1)), new Tanh(),
            new Linear(8, 2, dtype: DType.Float64, generator: new Generator(2)));
        var x = Tensor.Randn([16, 3], DType.Float64, new Generator(3));
        var y = Tensor.FromArray(Enumerable.Range(0, 16).Select(i => (long)(i % 2)).ToArray(), 16);
        return (net, () => Functional.CrossEntropy(net.Call(x), y), [.. net.Parameters()]);
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

    // A probe warm-started from the previous probe's eigenvector (the weights have moved since) lands on the same
    // lambda_max as the exact Hessian's dense eigen-decomposition, from below, within the probe's tolerance; the
    // eigenvalue has moved, so the start vector was not already the answer.
    [Theory]
    [InlineData(false, 1e-2)]
    [InlineData(false, 1e-6)]
    [InlineData(true, 1e-2)]
    [InlineData(true, 1e-6)]
    public void AWarmStartConvergesToTheExactEigenvalueWithinTolerance(bool adam, double tolerance)
    {
        var (net, loss, parameters) = SmallNet();
        Optimizer opt = adam ? new Adam(parameters, lr: 0.05) : new SGD(parameters, 0.5, momentum: 0.9);
        var probe = new SharpnessProbe(loss, net, opt, every: 20, tolerance: tolerance);
        SharpnessProbeResult? before = null, warm = null;
        for (long step = 1; step <= 40; step++)
        {
            Steps(opt, loss, 1);
            if (probe.MaybeRun(step) is { } r) (before, warm) = (warm, r);
        }
        Assert.Equal(20, before!.Step);
        Assert.Equal(40, warm!.Step);
        using var op = CurvatureOperator.Hessian(loss, net);
        var h = DenseHessian(op);
        int n = op.Dimension;
        var scale = adam ? AdamInversePreconditioner((Adam)opt, parameters).Select(Math.Sqrt).ToArray() : Enumerable.Repeat(1.0, n).ToArray();
        var m = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) m[i, j] = scale[i] * h[i, j] * scale[j];
        double exact = SymmetricEigen.Jacobi(m).Values.Max();
        double measured = adam ? warm.PreconditionedSharpness!.Value : warm.Sharpness!.Value;
        double previous = adam ? before.PreconditionedSharpness!.Value : before.Sharpness!.Value;
        Assert.True(measured <= exact * (1 + 1e-10), $"a Ritz value {measured} above lambda_max {exact}");
        Assert.True(exact - measured <= tolerance * exact, $"warm {measured} against exact {exact}: off by {(exact - measured) / exact:G3}, tolerance {tolerance}");
        Assert.True(Math.Abs(exact - previous) > tolerance * exact, $"the eigenvalue barely moved ({previous} to {exact}): the warm start was not tested");
        Assert.True(warm.HvpCount > 1, $"the warm probe took {warm.HvpCount} product");
    }

    // The probe's accuracy claim (SharpnessProbe.DefaultTolerance, docs/CURVATURE.md): with its defaults, every probe,
    // cold and warm, reads lambda_max from below and within 1% of it. Checked at every probe of small MLPs trained from
    // several seeds with SGD and with Adam, against a tight reference (Lanczos to a residual of 1e-10 from two random
    // starts, the larger value). The runs were not used to choose the rule; the errors are far inside 1% (about 1e-4 and
    // below), so the margin does not hang on rounding.
    [Theory]
    [InlineData(false, 11)]
    [InlineData(false, 12)]
    [InlineData(false, 13)]
    [InlineData(true, 11)]
    [InlineData(true, 12)]
    [InlineData(true, 13)]
    public void EveryDefaultProbeIsWithinItsToleranceOfLambdaMax(bool adam, int seed)
    {
        var g = new Generator((ulong)seed);
        var net = new Sequential(new Linear(5, 16, dtype: DType.Float64, generator: g), new Tanh(), new Linear(16, 16, dtype: DType.Float64, generator: g), new Tanh(),
            new Linear(16, 3, dtype: DType.Float64, generator: g));
        var x = Tensor.Randn([48, 5], DType.Float64, g);
        var y = Tensor.FromArray(Enumerable.Range(0, 48).Select(i => (long)(i * 7 % 3)).ToArray(), 48);
        Func<Tensor> loss = () => Functional.CrossEntropy(net.Call(x), y);
        var parameters = net.Parameters().ToArray();
        Optimizer opt = adam ? new Adam(parameters, lr: 0.02) : new SGD(parameters, 0.2, momentum: 0.9);
        var probe = new SharpnessProbe(loss, net, opt, every: 10);
        double? previous = null;
        int moved = 0, warmMultiProduct = 0;
        for (long step = 1; step <= 60; step++)
        {
            Steps(opt, loss, 1);
            if (probe.MaybeRun(step) is not { } r) continue;
            using var op = CurvatureOperator.Hessian(loss, net);
            var judged = adam ? op.Scaled(AdamInversePreconditioner((Adam)opt, parameters).Select(Math.Sqrt).ToArray()) : op;
            double exact = Math.Max(Spectrum.TopEigenvalues(judged, 1, 1e-10, 300, seed: 1).Values[0], Spectrum.TopEigenvalues(judged, 1, 1e-10, 300, seed: 2).Values[0]);
            double measured = adam ? r.PreconditionedSharpness!.Value : r.Sharpness!.Value;
            Assert.True(r.Converged, $"step {step}: the probe did not converge in {r.HvpCount} products");
            Assert.True(measured <= exact * (1 + 1e-9), $"step {step}: a Ritz value {measured} above lambda_max {exact}");
            Assert.True(exact - measured <= SharpnessProbe.DefaultTolerance * exact,
                $"step {step}: the probe read {measured} against lambda_max {exact}, {(exact - measured) / exact:G3} low, in {r.HvpCount} products");
            if (previous is { } p)
            {
                if (Math.Abs(exact - p) > SharpnessProbe.DefaultTolerance * exact) moved++;
                if (r.HvpCount > 1) warmMultiProduct++;
            }
            previous = exact;
        }
        // The warm starts were tested: lambda_max moved by more than the tolerance between probes, and warm probes had
        // more than their first product to decide on.
        Assert.True(moved >= 2, $"lambda_max moved by more than 1% at only {moved} of 5 warm probes");
        Assert.True(warmMultiProduct >= 2, $"only {warmMultiProduct} of 5 warm probes took more than one product");
    }

    // The tolerance is relative to lambda_max, not to the largest |eigenvalue|: where the negative end is 50 times the
    // top (a saddle region), a residual of 1% of |lambda_min| would stop far from lambda_max.
    [Fact]
    public void TheToleranceIsRelativeToLambdaMaxNotToTheNegativeEnd()
    {
        const int N = 200;
        var lambda = new double[N];
        (lambda[0], lambda[1]) = (-50, 1);
        for (int i = 2; i < N; i++) lambda[i] = -0.5 + (1.3 * (i - 2) / (N - 3)); // the rest in [-0.5, 0.8]
        var model = new Linear(N, 1, bias: false, dtype: DType.Float64);
        using (Autograd.NoGrad()) model.Weight.CopyFrom(Tensor.Ones([1, N], DType.Float64));
        var diagonal = Tensor.FromArray(lambda, 1, N);
        Func<Tensor> loss = () => (diagonal * model.Weight.Pow(2)).Sum() * 0.5;
        var r = new SharpnessProbe(loss, model, new SGD(model.Parameters(), 0.1)).Run(0);
        Assert.True(r.Converged);
        Assert.InRange(1 - r.Sharpness!.Value, 0, SharpnessProbe.DefaultTolerance);
        using var op = CurvatureOperator.Hessian(loss, model);
        var byLargest = Spectrum.TopEigenvalues(op, 1, SharpnessProbe.DefaultTolerance, SharpnessProbe.DefaultMaxIterations);
        Assert.True(1 - byLargest.Values[0] > SharpnessProbe.DefaultTolerance, $"the largest-|Ritz| rule stopped at {byLargest.Values[0]} after {byLargest.HvpCount} products");
    }

    [Fact]
    public void BadInputIsNamed()
    {
        var (model, loss) = Quadratic();
        var opt = new SGD(model.Parameters(), 0.1);
        Assert.Contains("loss", Assert.Throws<ArgumentNullException>(() => new SharpnessProbe(null!, model, opt)).Message);
        Assert.Contains("model", Assert.Throws<ArgumentNullException>(() => new SharpnessProbe(loss, null!, opt)).Message);
        Assert.Contains("optimizer", Assert.Throws<ArgumentNullException>(() => new SharpnessProbe(loss, model, null!)).Message);
        foreach (var (make, argument) in new (Func<SharpnessProbe>, string)[]
        {
            (() => new SharpnessProbe(loss, model, opt, every: 0), "every"),
            (() => new SharpnessProbe(loss, model, opt, tolerance: -1e-3), "tolerance"),
            (() => new SharpnessProbe(loss, model, opt, tolerance: double.NaN), "tolerance"),
            (() => new SharpnessProbe(loss, model, opt, tolerance: double.PositiveInfinity), "tolerance"),
            (() => new SharpnessProbe(loss, model, opt, maxIterations: 0), "maxIterations"),
            (() => new SharpnessProbe(loss, model, opt, keptVectors: -1), "keptVectors"),
        })
        {
            var e = Assert.Throws<ArgumentException>(make);
            Assert.Equal(argument, e.ParamName);
            Assert.StartsWith(nameof(SharpnessProbe) + ":", e.Message, StringComparison.Ordinal);
        }
        // Adam before its first step has no preconditioner to probe with.
        var adam = new Adam(model.Parameters());
        var noState = Assert.Throws<InvalidOperationException>(() => new SharpnessProbe(loss, model, adam).Run(0));
        Assert.Contains("'weight'", noState.Message);
        // The stability threshold is for the exact Hessian: a Gauss-Newton operator or a scaled view is refused.
        using var op = CurvatureOperator.Hessian(loss, model);
        var view = Assert.Throws<ArgumentException>(() => Stability.Measure(op.Scaled([1.0, 1, 1]), opt));
        Assert.Equal("op", view.ParamName);
        var gn = CurvatureOperator.GaussNewton(() => model.Weight.Sum() * 1.0, z => z.Pow(2), model);
        Assert.Contains("GaussNewton", Assert.Throws<ArgumentException>(() => Stability.Measure(gn, opt)).Message);
    }
}
