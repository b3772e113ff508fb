using GradFlow.Diagnostics;
using GradFlow.NN;

namespace GradFlow.Tests.Diagnostics.Curvature;

public class SpectrumTests
{
    private static readonly double[] s_spectrum = [-3, -1, 0.5, 1, 2, 4, 7, 10];

    // f(x) = x^T A x / 2 with A = Q diag(lambda) Q^T, Q a Householder reflection (dense, orthogonal, known).
    private static (CurvatureOperator Op, double[,] A) Quadratic(double[] lambda, bool rotate = true)
    {
        int n = lambda.Length;
        var u = Enumerable.Range(0, n).Select(i => 1.0 + 0.3 * i).ToArray();
        double uu = u.Sum(e => e * e);
        var a = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                for (int k = 0; k < n; k++)
                {
                    double qik = (i == k ? 1 : 0) - (rotate ? 2 * u[i] * u[k] / uu : 0);
                    double qjk = (j == k ? 1 : 0) - (rotate ? 2 * u[j] * u[k] / uu : 0);
                    a[i, j] += qik * lambda[k] * qjk;
                }
        var at = Tensor.FromArray(Enumerable.Range(0, n * n).Select(i => a[i / n, i % n]).ToArray(), n, n);
        var x = Tensor.Randn([n, 1], DType.Float64, new Generator(3), requiresGrad: true);
        return (CurvatureOperator.Hessian(() => x.Transpose(0, 1).MatMul(at).MatMul(x).Sum() * 0.5, [x]), a);
    }

    private static double[,] FullMatrix(CurvatureOperator op)
    {
        int n = op.Dimension;
        var h = new double[n, n];
        for (int j = 0; j < n; j++)
        {
            var e = new double[n];
            e[j] = 1;
            var col = op.Apply(e);
            for (int i = 0; i < n; i++) h[i, j] = col[i];
        }
        return h;
    }

    [Fact]
    public void JacobiDiagonalisesASymmetricMatrix()
    {
        var gen = new Generator(4);
        int n = 7;
        var a = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++) a[i, j] = a[j, i] = gen.NextNormal();
        var (values, v) = SymmetricEigen.Jacobi(a);
        for (int k = 0; k < n; k++)
        {
            if (k > 0) Assert.True(values[k] >= values[k - 1]);
            for (int i = 0; i < n; i++)
            {
                double av = 0;
                for (int j = 0; j < n; j++) av += a[i, j] * v[j, k];
                Assert.True(Math.Abs(av - values[k] * v[i, k]) < 1e-12, $"A v != lambda v for pair {k}");
            }
            for (int l = 0; l < n; l++)
            {
                double dot = 0;
                for (int i = 0; i < n; i++) dot += v[i, k] * v[i, l];
                Assert.True(Math.Abs(dot - (k == l ? 1 : 0)) < 1e-12);
            }
        }
    }

    [Fact]
    public void QuadraticSpectrumIsExact()
    {
        var (op, a) = Quadratic(s_spectrum);
        var top = Spectrum.TopEigenvalues(op, k: 3, tolerance: 1e-12, maxIterations: 8);
        var bottom = Spectrum.SmallestEigenvalues(op, k: 2, tolerance: 1e-12, maxIterations: 8);
        Assert.True(top.Converged && bottom.Converged);
        TestUtil.Close([10, 7, 4], top.Values, 0, 1e-8);
        TestUtil.Close([-3, -1], bottom.Values, 0, 1e-8);
        Assert.Equal(top.Iterations, top.HvpCount);
        // The eigenvector satisfies A v = lambda v.
        var v = top.Vectors[0];
        var av = op.Apply(v);
        for (int i = 0; i < v.Length; i++) Assert.True(Math.Abs(av[i] - 10 * v[i]) < 1e-8);
        // The full matrix from products is A, so its trace is exact.
        var h = FullMatrix(op);
        double trace = 0;
        for (int i = 0; i < 8; i++)
        {
            trace += h[i, i];
            for (int j = 0; j < 8; j++) Assert.True(Math.Abs(h[i, j] - a[i, j]) < 1e-12);
        }
        Assert.True(Math.Abs(trace - s_spectrum.Sum()) < 1e-8);
    }

    [Fact]
    public void PowerIterationFindsTheLargestMagnitude()
    {
        var (op, _) = Quadratic(s_spectrum);
        var r = Spectrum.PowerIteration(op, tolerance: 1e-14, maxIterations: 500);
        Assert.True(r.Converged);
        Assert.True(Math.Abs(r.Values[0] - 10) < 1e-8, $"{r.Values[0]}");
        Assert.Equal(r.Iterations, r.HvpCount);
        // A spectrum whose largest magnitude is negative: power iteration reports it, Lanczos's top does not.
        var (neg, _) = Quadratic([-12, -1, 0.5, 1, 2, 4, 7, 10]);
        Assert.True(Math.Abs(Spectrum.PowerIteration(neg, tolerance: 1e-14, maxIterations: 500).Values[0] + 12) < 1e-6);
        Assert.True(Math.Abs(Spectrum.TopEigenvalues(neg, tolerance: 1e-12).Values[0] - 10) < 1e-8);
    }

    [Fact]
    public void HutchinsonIsExactOnADiagonalHessianAndWithinItsErrorBarOtherwise()
    {
        // z^T D z = tr(D) for every Rademacher z.
        var (diag, _) = Quadratic(s_spectrum, rotate: false);
        var exact = Spectrum.Trace(diag, maxSamples: 3, minSamples: 3);
        Assert.True(Math.Abs(exact.Trace - s_spectrum.Sum()) < 1e-12);
        Assert.Equal(0, exact.StandardError, 12);
        Assert.Equal(3, exact.HvpCount);

        var (op, _) = Quadratic(s_spectrum);
        var est = Spectrum.Trace(op, maxSamples: 1000, relativeTolerance: 0.05, seed: 1);
        Assert.True(est.StandardError > 0);
        Assert.True(est.Samples < 1000 && est.StandardError <= 0.05 * Math.Abs(est.Trace), $"{est}");
        Assert.True(Math.Abs(est.Trace - s_spectrum.Sum()) <= 4 * est.StandardError, $"{est} vs {s_spectrum.Sum()}");
        Assert.Equal(est.Samples, est.HvpCount);
    }

    [Fact]
    public void SaddleOfXSquaredMinusYSquared()
    {
        var p = Tensor.Zeros([2], DType.Float64, requiresGrad: true);
        var op = CurvatureOperator.Hessian(() => p.Select(0, 0).Pow(2) - p.Select(0, 1).Pow(2), [p]);
        var ends = Spectrum.Extremes(op, tolerance: 1e-12);
        Assert.Equal(2, ends.Max, 12);
        Assert.Equal(-2, ends.Min, 12);
        Assert.Equal(0, ends.MinVector[0], 12);
        Assert.Equal(1, Math.Abs(ends.MinVector[1]), 12);
        Assert.True(ends.Converged);
        Assert.Equal(0, op.GradientNorm);
    }

    [Fact]
    public void TinyMlpFullHessianFromProductsAgreesWithLanczos()
    {
        var net = new Sequential(new Linear(3, 4, dtype: DType.Float64, generator: new Generator(1)), new Tanh(),
            new Linear(4, 2, dtype: DType.Float64, generator: new Generator(2)));
        var x = Tensor.Randn([5, 3], DType.Float64, new Generator(3));
        var t = Tensor.Randn([5, 2], DType.Float64, new Generator(4));
        var op = CurvatureOperator.Hessian(() => Functional.MseLoss(net.Call(x), t), net);
        int n = op.Dimension;
        Assert.Equal(26, n);
        var h = FullMatrix(op);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < i; j++) Assert.True(Math.Abs(h[i, j] - h[j, i]) < 1e-12, $"H not symmetric at ({i}, {j})");
        var (values, _) = SymmetricEigen.Jacobi(h);
        var top = Spectrum.TopEigenvalues(op, k: 2, tolerance: 1e-10, maxIterations: n);
        var bottom = Spectrum.SmallestEigenvalues(op, tolerance: 1e-10, maxIterations: n);
        TestUtil.Close([values[^1], values[^2]], top.Values, 1e-8, 1e-10);
        TestUtil.Close([values[0]], bottom.Values, 1e-8, 1e-10);
        Assert.True(values[0] < 0, "an MLP away from a minimum has negative curvature");

        // Stochastic Lanczos quadrature run to the full dimension: the nodes are eigenvalues, the weights sum to one
        // and reproduce the first probe's Rayleigh quotient z^T H z / z^T z exactly.
        var density = Spectrum.Density(op, steps: n, probes: 2, seed: 5);
        Assert.Equal(n * 2, density.HvpCount);
        foreach (var (nodes, weights) in density.Nodes.Zip(density.Weights))
        {
            Assert.Equal(1, weights.Sum(), 10);
            foreach (var node in nodes) Assert.Contains(values, e => Math.Abs(e - node) < 1e-7);
        }
        var z = Spectrum.Rademacher(n, new Generator(5));
        Assert.Equal(Lanczos.Dot(z, op.Apply(z)) / n, density.Nodes[0].Zip(density.Weights[0]).Sum(p => p.First * p.Second), 10);
        var (grid, pdf) = density.OnGrid(500);
        double integral = 0;
        for (int i = 1; i < grid.Length; i++) integral += 0.5 * (pdf[i] + pdf[i - 1]) * (grid[i] - grid[i - 1]);
        Assert.Equal(1, integral, 3);
    }

    [Theory]
    [InlineData("mlp", 1e-10)]
    [InlineData("cnn", 1e-5)]
    public void MatchesPyTorch(string name, double productTolerance)
    {
        var m = CurvatureFixtures.Load(name);
        var op = CurvatureOperator.Hessian(m.Loss, m.Net);
        for (int i = 0; i < 2; i++)
        {
            var expected = m.Flat($"hv{i}");
            var actual = op.Apply(m.Flat($"v{i}"));
            double scale = expected.Max(Math.Abs);
            for (int j = 0; j < expected.Length; j++)
                Assert.True(Math.Abs(expected[j] - actual[j]) <= productTolerance * scale, $"{name} hv{i}[{j}]: {expected[j]:R} vs {actual[j]:R}");
        }
        int probes = m.Case.IntParam("probes");
        var trace = Spectrum.Trace(op, [.. Enumerable.Range(0, probes).Select(i => (IReadOnlyList<double>)m.Flat($"z{i}"))]);
        AssertRelative(m.Out("hutchinson"), trace.Trace, 1e-4, "Hutchinson over the same vectors");
        Assert.Equal(probes, trace.HvpCount);
        var ends = Spectrum.Extremes(op, tolerance: 1e-6);
        AssertRelative(m.Out("top_eigenvalue"), ends.Max, 1e-4, "top eigenvalue");
        AssertRelative(m.Out("min_eigenvalue"), ends.Min, 1e-4, "smallest eigenvalue");
        var top = Spectrum.TopEigenvalues(op);
        AssertRelative(m.Out("top_eigenvalue"), top.Values[0], 1e-3, "top eigenvalue at the default tolerance");
        Assert.True(top.HvpCount <= 20, $"{top.HvpCount} products");
    }

    internal static void AssertRelative(double expected, double actual, double rtol, string what) =>
        Assert.True(Math.Abs(expected - actual) <= rtol * Math.Abs(expected), $"{what}: expected {expected:R}, got {actual:R} (rtol {rtol}).");

    [Fact]
    public void BadArgumentsAreRejected()
    {
        var (op, _) = Quadratic(s_spectrum);
        Assert.Throws<ArgumentException>(() => Spectrum.TopEigenvalues(op, k: 0));
        Assert.Throws<ArgumentException>(() => Spectrum.TopEigenvalues(op, k: 9));
        Assert.Throws<ArgumentException>(() => Spectrum.TopEigenvalues(op, tolerance: -1));
        Assert.Throws<ArgumentException>(() => Spectrum.TopEigenvalues(op, maxIterations: 0));
        Assert.Throws<ArgumentException>(() => Spectrum.TopEigenvalues(op, start: new double[3]));
        Assert.Throws<ArgumentException>(() => Spectrum.TopEigenvalues(op, start: new double[8]));
        Assert.Throws<ArgumentException>(() => Spectrum.Trace(op, maxSamples: 0));
        Assert.Throws<ArgumentException>(() => Spectrum.Density(op, steps: 0));
        Assert.Throws<ArgumentNullException>(() => Spectrum.Extremes(null!));
    }
}
