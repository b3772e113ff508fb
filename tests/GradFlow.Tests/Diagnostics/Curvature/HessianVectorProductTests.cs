using GradFlow.Diagnostics;
using GradFlow.NN;

namespace GradFlow.Tests.Diagnostics.Curvature;

public class HessianVectorProductTests
{
    // H v against central differences of the gradient, (g(theta + eps v) - g(theta - eps v)) / (2 eps), in float64:
    // truncation ~eps^2 |g'''| and rounding ~1e-16 |g| / eps are both near 1e-10 of the scale at eps = 1e-5.
    private static double[] FiniteDifference(Tensor[] ps, Func<Tensor> loss, double[] v, double eps = 1e-5)
    {
        var originals = ps.Select(p => p.Detach().Clone()).ToArray();
        double[] Gradient(double sign)
        {
            using (Autograd.NoGrad())
            {
                int at = 0;
                for (int i = 0; i < ps.Length; i++)
                {
                    var step = Tensor.FromArray(v[at..(at + ps[i].NumEl)], ps[i].Shape).To(ps[i].DType);
                    ps[i].CopyFrom(originals[i] + step * (sign * eps));
                    at += ps[i].NumEl;
                }
            }
            var g = Autograd.Grad([loss()], ps, allowUnused: true);
            using (Autograd.NoGrad())
                for (int i = 0; i < ps.Length; i++) ps[i].CopyFrom(originals[i]);
            return [.. g.Select((t, i) => t?.ToDoubleArray() ?? new double[ps[i].NumEl]).SelectMany(a => a)];
        }
        var plus = Gradient(1);
        var minus = Gradient(-1);
        return [.. plus.Select((p, i) => (p - minus[i]) / (2 * eps))];
    }

    private static double[] RandomVector(int n, ulong seed)
    {
        var gen = new Generator(seed);
        return [.. Enumerable.Range(0, n).Select(_ => gen.NextNormal())];
    }

    private static void AssertClose(double[] expected, double[] actual, double rtol, string what)
    {
        double scale = expected.Max(Math.Abs);
        Assert.True(scale > 0, $"{what}: the reference product is zero, so the case checks nothing.");
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= rtol * (scale + Math.Abs(expected[i])),
                $"{what}: entry {i}: expected {expected[i]:R}, got {actual[i]:R} (scale {scale:G4}).");
    }

    [Theory]
    [MemberData(nameof(CurvatureCases.Names), MemberType = typeof(CurvatureCases))]
    public void LayerHessianVectorProductMatchesFiniteDifferences(string name)
    {
        var problem = CurvatureCases.All[name](DType.Float64);
        var op = CurvatureOperator.Hessian(problem.Loss, problem.Parameters);
        var v = RandomVector(op.Dimension, 5);
        var hv = op.Apply(v);
        Assert.Equal(1, op.ProductCount);
        AssertClose(FiniteDifference(problem.Parameters, problem.Loss, v), hv, 1e-6, name);
        // The finite differences moved the weights and put them back: the recorded graph is stale, and says so.
        var e = Assert.Throws<InvalidOperationException>(() => op.Apply(v));
        Assert.Contains("changed in place", e.Message);
    }

    // The float32 kernels (fused attention, layer norm, LSTM cell, conv, pooling, cross entropy) take other paths
    // than float64; their products must match the float64 ones up to float32 rounding.
    [Theory]
    [MemberData(nameof(CurvatureCases.Names), MemberType = typeof(CurvatureCases))]
    public void FloatHessianVectorProductMatchesDouble(string name)
    {
        var p64 = CurvatureCases.All[name](DType.Float64);
        var p32 = CurvatureCases.All[name](DType.Float32);
        var op64 = CurvatureOperator.Hessian(p64.Loss, p64.Parameters);
        var op32 = CurvatureOperator.Hessian(p32.Loss, p32.Parameters);
        var v = RandomVector(op64.Dimension, 5);
        AssertClose(op64.Apply(v), op32.Apply(v), 1e-3, name);
    }

    [Fact]
    public void PerParameterProductMatchesFlat()
    {
        var problem = CurvatureCases.All["conv2d"](DType.Float64);
        var op = CurvatureOperator.Hessian(problem.Loss, problem.Parameters);
        var v = RandomVector(op.Dimension, 9);
        var blocks = op.Apply(op.ToTensors(v));
        Assert.Equal(op.Apply(v), op.Flatten(blocks));
        Assert.Equal(problem.Parameters[1].Shape.ToArray(), blocks[1].Shape.ToArray());
    }

    [Fact]
    public void PerParameterProductHasTheParametersDType()
    {
        // A float32 model's product per parameter is float32 (as torch's hvp), equal to the flat float64 product rounded;
        // ToTensors (eigenvectors, directions) stays float64.
        var problem = CurvatureCases.All["conv2d"](DType.Float32);
        var op = CurvatureOperator.Hessian(problem.Loss, problem.Parameters);
        var v = RandomVector(op.Dimension, 9);
        var blocks = op.Apply(op.ToTensors(v));
        Assert.All(blocks, b => Assert.Equal(DType.Float32, b.DType));
        Assert.All(op.ToTensors(v), b => Assert.Equal(DType.Float64, b.DType));
        Assert.Equal(op.Apply(v).Select(x => (double)(float)x), op.Flatten(blocks));
    }

    [Fact]
    public void ViewsApplyTheirShiftAndScaleAsTheirDefinitionSays()
    {
        // S (H + shift I) S v from the plain product, element by element, against the views' vectorised passes; a
        // shift-only view against a scale of ones, bit for bit (it skips the multiplications by one).
        var problem = CurvatureCases.All["conv2d"](DType.Float64);
        var op = CurvatureOperator.Hessian(problem.Loss, problem.Parameters);
        var v = RandomVector(op.Dimension, 11);
        var scale = RandomVector(op.Dimension, 12).Select(x => 0.5 + Math.Abs(x)).ToArray();
        const double shift = 0.3;
        var sv = v.Select((x, i) => scale[i] * x).ToArray();
        var hsv = op.Apply(sv);
        var expected = hsv.Select((x, i) => (x + (shift * sv[i])) * scale[i]).ToArray();
        Assert.Equal(expected, op.Scaled(scale, shift).Apply(v));
        var ones = Enumerable.Repeat(1.0, op.Dimension).ToArray();
        var shifted = op.Shifted(shift).Apply(v);
        Assert.Equal(op.Scaled(ones, shift).Apply(v), shifted);
        var hv = op.Apply(v);
        Assert.Equal(hv.Select((x, i) => x + (shift * v[i])).ToArray(), shifted);
        Assert.Throws<InvalidOperationException>(() => op.Shifted(shift).Shifted(shift));
        var bad = (double[])v.Clone();
        bad[^1] = double.NaN;
        Assert.Throws<ArgumentException>(() => op.Shifted(shift).Apply(bad));
        Assert.Throws<ArgumentException>(() => op.Scaled(scale, shift).Apply(bad));
    }

    [Fact]
    public void GaussNewtonOfMseIsTwiceJTransposeJOverN()
    {
        // For mean squared error over n outputs the loss Hessian is (2/n) I, so G = (2/n) J^T J: checked against
        // J built row by row from vector-Jacobian products.
        var lin = new Linear(3, 2, dtype: DType.Float64, generator: new Generator(1));
        var x = Tensor.Randn([4, 3], DType.Float64, new Generator(2));
        var t = Tensor.Randn([4, 2], DType.Float64, new Generator(3));
        var ps = lin.Parameters().ToArray();
        Tensor Output() => lin.Call(x).Tanh();
        var op = CurvatureOperator.GaussNewton(Output, z => Functional.MseLoss(z, t), ps);
        int n = op.Dimension;
        var y = Output();
        var jac = new double[8, n];
        for (int k = 0; k < 8; k++)
        {
            var onehot = Tensor.Zeros([4, 2], DType.Float64);
            onehot.Data<double>()[k] = 1;
            var row = op.Flatten([.. Autograd.Grad([y], ps, [onehot], retainGraph: true)!.Select(g => g!)]);
            for (int j = 0; j < n; j++) jac[k, j] = row[j];
        }
        var v = RandomVector(n, 4);
        var expected = new double[n];
        for (int k = 0; k < 8; k++)
        {
            double jv = 0;
            for (int j = 0; j < n; j++) jv += jac[k, j] * v[j];
            for (int j = 0; j < n; j++) expected[j] += 2.0 / 8 * jac[k, j] * jv;
        }
        AssertClose(expected, op.Apply(v), 1e-12, "Gauss-Newton");
    }

    [Fact]
    public void GaussNewtonOfCrossEntropyIsPositiveSemiDefiniteAndMatchesHessianForLinearModel()
    {
        // A linear model's output is linear in its weights, so the Hessian of CE(x W^T + b) is exactly the Gauss-Newton matrix.
        var lin = new Linear(5, 4, dtype: DType.Float64, generator: new Generator(1));
        var x = Tensor.Randn([6, 5], DType.Float64, new Generator(2));
        var labels = Tensor.FromArray(new long[] { 0, 3, 1, 2, 3, 0 }, 6);
        var ggn = CurvatureOperator.GaussNewton(() => lin.Call(x), z => Functional.CrossEntropy(z, labels), lin);
        var hessian = CurvatureOperator.Hessian(() => Functional.CrossEntropy(lin.Call(x), labels), lin);
        for (ulong seed = 0; seed < 4; seed++)
        {
            var v = RandomVector(ggn.Dimension, seed);
            var gv = ggn.Apply(v);
            AssertClose(hessian.Apply(v), gv, 1e-12, "linear CE");
            Assert.True(Lanczos.Dot(v, gv) >= 0);
        }
    }

    [Fact]
    public void GaussNewtonIsPositiveSemiDefiniteWhereTheHessianIsNot()
    {
        var net = new Sequential(new Linear(3, 6, dtype: DType.Float64, generator: new Generator(1)), new Tanh(),
            new Linear(6, 3, dtype: DType.Float64, generator: new Generator(2)));
        var x = Tensor.Randn([8, 3], DType.Float64, new Generator(3));
        var labels = Tensor.FromArray(new long[] { 0, 1, 2, 0, 1, 2, 0, 1 }, 8);
        var ggn = CurvatureOperator.GaussNewton(() => net.Call(x), z => Functional.CrossEntropy(z, labels), net);
        var hessian = CurvatureOperator.Hessian(() => Functional.CrossEntropy(net.Call(x), labels), net);
        Assert.True(Spectrum.SmallestEigenvalues(ggn, tolerance: 1e-8, maxIterations: ggn.Dimension).Values[0] > -1e-10);
        Assert.True(Spectrum.SmallestEigenvalues(hessian, tolerance: 1e-8, maxIterations: hessian.Dimension).Values[0] < -1e-6);
    }

    [Fact]
    public void ProductsLeaveParameterGradientsAlone()
    {
        var problem = CurvatureCases.All["linear"](DType.Float64);
        var op = CurvatureOperator.Hessian(problem.Loss, problem.Parameters);
        op.Apply(RandomVector(op.Dimension, 1));
        Assert.All(problem.Parameters, p => Assert.Null(p.Grad));
    }

    [Fact]
    public void NonScalarLossIsRejected()
    {
        var w = Tensor.Randn([3], DType.Float64, new Generator(1), requiresGrad: true);
        var e = Assert.Throws<ArgumentException>(() => CurvatureOperator.Hessian(() => w * 2, [w]));
        Assert.Contains("scalar", e.Message);
        Assert.Contains("[3]", e.Message);
    }

    [Fact]
    public void ParameterWithoutGradIsRejectedByName()
    {
        var lin = new Linear(2, 2, dtype: DType.Float64);
        lin.Bias!.RequiresGrad = false;
        var x = Tensor.Randn([1, 2], DType.Float64, new Generator(1));
        var e = Assert.Throws<ArgumentException>(() => CurvatureOperator.Hessian(() => lin.Call(x).Sum(), lin.NamedParameters()));
        Assert.Contains("'bias'", e.Message);
        Assert.Contains("does not require grad", e.Message);
        // From a module, frozen parameters are simply left out.
        Assert.Equal(4, CurvatureOperator.Hessian(() => lin.Call(x).Pow(2).Sum(), lin).Dimension);
    }

    [Fact]
    public void LossThatDoesNotDependOnParametersIsRejected()
    {
        var w = Tensor.Randn([3], DType.Float64, new Generator(1), requiresGrad: true);
        Assert.Throws<ArgumentException>(() => CurvatureOperator.Hessian(() => w.Detach().Sum(), [w]));
    }

    [Fact]
    public void OpWithoutDoubleBackwardIsNamed()
    {
        var w = Tensor.Randn([3], DType.Float64, new Generator(1), requiresGrad: true);
        Tensor Loss()
        {
            var y = (w * w).Detach().Clone();
            Autograd.Record("OnceOnly", y, new OnceDifferentiable(), w);
            return y.Sum();
        }
        var e = Assert.Throws<NotSupportedException>(() => CurvatureOperator.Hessian(Loss, [w]));
        Assert.Contains(nameof(OnceDifferentiable), e.Message);
        Assert.Contains("double backward", e.Message);
    }

    private sealed class OnceDifferentiable : Node
    {
        public override bool IsTwiceDifferentiable => false;

        protected internal override Tensor?[] Backward(Tensor?[] gradOutputs) => [gradOutputs[0]];
    }

    [Fact]
    public void NonFiniteProductNamesTheParameter()
    {
        // sqrt(w) at w = 1e-300: the gradient w^(-1/2)/2 is finite, the second derivative -w^(-3/2)/4 overflows.
        var a = Tensor.FromArray(new[] { 1.0, 2.0 }, 2).RequireGrad();
        var w = Tensor.FromArray(new[] { 1e-300, 1.0 }, 2).RequireGrad();
        var op = CurvatureOperator.Hessian(() => w.Sqrt().Sum() + (a * a).Sum(), [("a", a), ("w", w)]);
        var e = Assert.Throws<InvalidOperationException>(() => op.Apply([1.0, 1.0, 1.0, 1.0]));
        Assert.Contains("'w'", e.Message);
        Assert.Contains("not finite", e.Message);
    }

    [Fact]
    public void GradientNormIsTheNormOfTheGradientAtEveryScale()
    {
        // float32: the vectorised pass against the float64 sum of the flat gradient's squares (several 4096-blocks and a tail).
        var x = Tensor.Randn([5000], DType.Float32, new Generator(3), requiresGrad: true);
        var op = CurvatureOperator.Hessian(() => (x * x * x).Sum(), [x]);
        double expected = Math.Sqrt(op.Gradient.Sum(g => g * g));
        Assert.True(Math.Abs(op.GradientNorm - expected) <= 1e-6 * expected, $"float32: {op.GradientNorm:R} against {expected:R}");
        // float64 with entries whose squares overflow: the scaled scan still gives the finite norm.
        var w = Tensor.FromArray(new[] { 1e-100, 2e-100 }, 2).RequireGrad();
        var c = Tensor.FromArray(new[] { 3e200, 4e200 }, 2);
        var big = CurvatureOperator.Hessian(() => (w * c).Sum() + (w * w).Sum(), [w]);
        Assert.Equal(5e200, big.GradientNorm, 5e186);
        var y = Tensor.FromArray(new[] { 3.0, 4.0 }, 2).RequireGrad();
        Assert.Equal(5.0, CurvatureOperator.Hessian(() => (y * y).Sum() * 0.5, [y]).GradientNorm, 15);
    }

    [Fact]
    public void WrongVectorLengthIsRejected()
    {
        var w = Tensor.Randn([3], DType.Float64, new Generator(1), requiresGrad: true);
        var op = CurvatureOperator.Hessian(() => (w * w).Sum(), [w]);
        Assert.Throws<ArgumentException>(() => op.Apply(new double[2]));
        Assert.Throws<ArgumentException>(() => op.Apply([1.0, double.NaN, 0]));
    }
}
