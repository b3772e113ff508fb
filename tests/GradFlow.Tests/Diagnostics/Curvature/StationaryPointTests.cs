using GradFlow.Diagnostics;
using GradFlow.NN;

namespace GradFlow.Tests.Diagnostics.Curvature;

public class StationaryPointTests
{
    private static CurvatureOperator TwoD(Func<Tensor, Tensor, Tensor> f, double x = 0, double y = 0)
    {
        var p = Tensor.FromArray(new[] { x, y }, 2).RequireGrad();
        return CurvatureOperator.Hessian(() => f(p.Select(0, 0), p.Select(0, 1)), [p]);
    }

    [Fact]
    public void SaddleOfXSquaredMinusYSquared()
    {
        var r = StationaryPoint.Classify(TwoD((x, y) => x.Pow(2) - y.Pow(2)));
        Assert.Equal(StationaryPointKind.Saddle, r.Kind);
        Assert.Equal(-2, r.MinEigenvalue, 10);
        Assert.Equal(2, r.MaxEigenvalue, 10);
        Assert.Equal(1, Math.Abs(r.NegativeDirection![1]), 10);
        Assert.Contains("Saddle", r.Evidence);
    }

    [Fact]
    public void MinimumOfABowl()
    {
        var r = StationaryPoint.Classify(TwoD((x, y) => x.Pow(2) + y.Pow(2) * 3));
        Assert.Equal(StationaryPointKind.Minimum, r.Kind);
        Assert.Null(r.NegativeDirection);
        Assert.Equal(6, r.MaxEigenvalue, 10);
    }

    [Fact]
    public void FlatRegionOfAQuarticAndDegenerateMinimum()
    {
        // x^4 + y^4 at the origin: zero gradient and zero Hessian, curvature says nothing.
        Assert.Equal(StationaryPointKind.Flat, StationaryPoint.Classify(TwoD((x, y) => x.Pow(4) + y.Pow(4))).Kind);
        // x^2 + y^4: a minimum with one flat direction.
        var r = StationaryPoint.Classify(TwoD((x, y) => x.Pow(2) + y.Pow(4)));
        Assert.Equal(StationaryPointKind.Minimum, r.Kind);
        Assert.Contains("degenerate", r.Evidence);
    }

    [Fact]
    public void AwayFromStationaryPointsTheGradientDecides()
    {
        var r = StationaryPoint.Classify(TwoD((x, y) => x.Pow(2) - y.Pow(2), x: 1));
        Assert.Equal(StationaryPointKind.NotStationary, r.Kind);
        Assert.Equal(2, r.GradientNorm, 10);
        Assert.NotNull(r.NegativeDirection);
    }

    [Fact]
    public void EscapingAnMlpSaddleAlongTheNegativeDirectionLowersTheLoss()
    {
        // A two-layer tanh network with all weights zero: tanh(0) = 0 and the output layer is zero, so the gradient
        // vanishes, but the cross terms d2L/(dw2 dW1) = -2 mean(y x) make the Hessian indefinite.
        var net = new Sequential(new Linear(2, 3, bias: false, dtype: DType.Float64), new Tanh(), new Linear(3, 1, bias: false, dtype: DType.Float64));
        using (Autograd.NoGrad()) foreach (var p in net.Parameters()) p.Zero();
        var x = Tensor.Randn([16, 2], DType.Float64, new Generator(1));
        var y = x.Select(1, 0).Unsqueeze(1) * 2 - x.Select(1, 1).Unsqueeze(1);
        Tensor Loss() => Functional.MseLoss(net.Call(x), y);
        var op = CurvatureOperator.Hessian(Loss, net);
        var r = StationaryPoint.Classify(op);
        Assert.Equal(StationaryPointKind.Saddle, r.Kind);
        Assert.Equal(0, r.GradientNorm);
        Assert.True(r.MinEigenvalue < 0);

        double before = r.Loss;
        var step = op.ToTensors(r.NegativeDirection!);
        foreach (double sign in new[] { 1.0, -1.0 })
        {
            using (Autograd.NoGrad())
                for (int i = 0; i < step.Length; i++) op.Parameters[i].AddInPlace(step[i], sign * 0.1);
            double after;
            using (Autograd.NoGrad()) after = Loss().Item();
            // Second order: L(theta + a v) = L + a^2 lambda_min / 2 + O(a^3).
            Assert.True(after < before, $"stepping {sign} along the negative direction: {before} -> {after}");
            Assert.True(after - before < 0.5 * 0.01 * r.MinEigenvalue * 0.5);
            using (Autograd.NoGrad())
                for (int i = 0; i < step.Length; i++) op.Parameters[i].AddInPlace(step[i], -sign * 0.1);
        }
        Assert.Contains("stepping along it lowers the loss", r.Evidence);
    }

    [Fact]
    public void GaussNewtonOperatorIsRefused()
    {
        var w = Tensor.Randn([2], DType.Float64, new Generator(1), requiresGrad: true);
        var op = CurvatureOperator.GaussNewton(() => w * 1.0, z => z.Pow(2).Sum(), [w]);
        Assert.Throws<ArgumentException>(() => StationaryPoint.Classify(op));
        var h = CurvatureOperator.Hessian(() => w.Pow(2).Sum(), [w]);
        Assert.Throws<ArgumentException>(() => StationaryPoint.Classify(h, gradientTolerance: -1));
    }
}
