using GradFlow.Diagnostics;
using GradFlow.NN;

namespace GradFlow.Tests.Diagnostics.Curvature;

public class LossLandscapeTests
{
    private static (Sequential Net, Func<Tensor> Loss) Model()
    {
        var net = new Sequential(new Conv2d(1, 3, 3, dtype: DType.Float64, generator: new Generator(1)), new BatchNorm2d(3, dtype: DType.Float64), new Tanh(),
            new Flatten(), new Linear(12, 2, dtype: DType.Float64, generator: new Generator(2)));
        var x = Tensor.Randn([4, 1, 4, 4], DType.Float64, new Generator(3));
        var y = Tensor.FromArray(new long[] { 0, 1, 1, 0 }, 4);
        return (net, () => Functional.CrossEntropy(net.Call(x), y));
    }

    private static double[][] Snapshot(Module m) =>
        [.. m.Parameters().Concat(m.Buffers()).Select(t => t.ToDoubleArray())];

    [Fact]
    public void FilterNormalizedDirectionMatchesEachFilterNormAndLeavesOutBiasesAndNorms()
    {
        var (net, _) = Model();
        var d = LossLandscape.FilterNormalizedDirection(net, new Generator(7));
        var ps = net.NamedParameters().ToArray();
        Assert.Equal(ps.Length, d.Length);
        for (int k = 0; k < ps.Length; k++)
        {
            var p = ps[k].Parameter;
            Assert.Equal(p.Shape.ToArray(), d[k].Shape.ToArray());
            if (p.Rank < 2)
            {
                Assert.All(d[k].ToDoubleArray(), v => Assert.Equal(0, v));
                continue;
            }
            for (int f = 0; f < p.Shape[0]; f++)
                Assert.Equal(p.Select(0, f).Norm().Item(), d[k].Select(0, f).Norm().Item(), 10);
        }
        Assert.Equal(d[0].ToDoubleArray(), LossLandscape.FilterNormalizedDirection(net, new Generator(7))[0].ToDoubleArray());
    }

    [Fact]
    public void SliceAndSurfaceEvaluateTheLossAtTheShiftedWeightsAndRestoreThem()
    {
        var (net, loss) = Model();
        var before = Snapshot(net);
        var d1 = LossLandscape.FilterNormalizedDirection(net, new Generator(1));
        var d2 = LossLandscape.FilterNormalizedDirection(net, new Generator(2));
        var alphas = LossLandscape.Range(-1, 1, 5);
        var slice = LossLandscape.Slice(loss, net, d1, alphas);
        var surface = LossLandscape.Surface(loss, net, d1, d2, alphas, [0.0, 0.5]);
        Assert.Equal(before, Snapshot(net));
        Assert.Equal(5, slice.Losses.Length);
        Assert.Equal(loss().Item(), slice.Losses[2], 12);
        // One grid point checked by moving the weights by hand.
        using (Autograd.NoGrad())
        {
            var ps = net.Parameters().ToArray();
            for (int k = 0; k < ps.Length; k++) ps[k].AddInPlace(d1[k] * 0.5 + d2[k] * 0.5);
            Assert.Equal(loss().Item(), surface.Losses[3, 1], 12);
        }
        Assert.Equal(slice.Losses, Enumerable.Range(0, 5).Select(i => surface.Losses[i, 0]));
    }

    [Fact]
    public void TopEigenvectorSliceHasTheTopCurvature()
    {
        var (net, loss) = Model();
        net.Eval(); // batch statistics fixed, so the loss is a smooth function of the weights alone
        var op = CurvatureOperator.Hessian(loss, net);
        var top = Spectrum.TopEigenvalues(op, tolerance: 1e-10);
        double h = 1e-3;
        var slice = LossLandscape.Slice(loss, net, op.ToTensors(top.Vectors[0]), [-h, 0, h]);
        double curvature = (slice.Losses[0] - 2 * slice.Losses[1] + slice.Losses[2]) / (h * h);
        Assert.Equal(top.Values[0], curvature, 4);
    }

    [Fact]
    public void InterpolationRunsFromOneParameterSetToTheOther()
    {
        var (net, loss) = Model();
        var a = net.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value.Clone());
        double lossA = loss().Item();
        using (Autograd.NoGrad()) foreach (var p in net.Parameters()) p.MulInPlace(0.5);
        var b = net.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value.Clone());
        double lossB = loss().Item();
        var before = Snapshot(net);
        var line = LossLandscape.Interpolate(loss, net, a, b, [0.0, 0.5, 1.0]);
        Assert.Equal(lossA, line.Losses[0], 12);
        Assert.Equal(lossB, line.Losses[2], 12);
        Assert.Equal(before, Snapshot(net));
        b.Remove("4.bias");
        var e = Assert.Throws<ArgumentException>(() => LossLandscape.Interpolate(loss, net, a, b, [0.5]));
        Assert.Contains("'4.bias'", e.Message);
    }

    [Fact]
    public void DirectionOfTheWrongShapeIsRejected()
    {
        var (net, loss) = Model();
        var d = LossLandscape.FilterNormalizedDirection(net);
        d[0] = Tensor.Zeros([2, 2], DType.Float64);
        var e = Assert.Throws<ArgumentException>(() => LossLandscape.Slice(loss, net, d, [0.0]));
        Assert.Contains("'0.weight'", e.Message);
        Assert.Throws<ArgumentException>(() => LossLandscape.Range(1, 1));
    }
}
