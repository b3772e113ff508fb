using GradFlow.Optim;
using GradFlow.Tests.Fixtures;

namespace GradFlow.Tests.Optim;

public class GradientClippingTests
{
    public static IEnumerable<object[]> Cases() =>
        Fixture.Load("optim.json").Where(c => c.Name.StartsWith("clip.")).Select(c => new object[] { c.Name });

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesPyTorch(string name)
    {
        var c = Fixture.Get("optim.json", name);
        bool f64 = c.Params.GetProperty("dtype").GetString() == "f64";
        double rtol = f64 ? 1e-12 : 1e-6, atol = f64 ? 1e-15 : 1e-8;
        var ps = Enumerable.Range(0, 3).Select(i => c[$"param.{i}"].Clone().RequireGrad()).ToArray();
        for (int i = 0; i < 3; i++) ps[i].Grad = c[$"grad.{i}"].Clone();
        var args = c.Params.GetProperty("args");
        switch (c.Params.GetProperty("kind").GetString())
        {
            case "norm":
                var nt = args.GetProperty("norm_type");
                double normType = nt.ValueKind == System.Text.Json.JsonValueKind.String ? double.PositiveInfinity : nt.GetDouble();
                double total = GradientClipping.ClipGradNorm(ps, args.GetProperty("max_norm").GetDouble(), normType);
                Fixture.AssertClose(c["total_norm"], Tensor.FromArray([total]), $"{name} total norm", rtol, atol);
                break;
            case "value":
                GradientClipping.ClipGradValue(ps, args.GetProperty("clip_value").GetDouble());
                break;
            default:
                GradientClipping.AdaptiveClipGrad(ps, args.GetProperty("clip_factor").GetDouble(), args.GetProperty("eps").GetDouble());
                break;
        }
        for (int i = 0; i < 3; i++) Fixture.AssertClose(c[$"clipped.{i}"], ps[i].Grad!, $"{name} grad {i}", rtol, atol);
    }

    [Fact]
    public void ClipGradNormByHand()
    {
        var a = Tensor.Zeros([2], DType.Float64, requiresGrad: true);
        var b = Tensor.Zeros([1], DType.Float64, requiresGrad: true);
        var none = Tensor.Zeros([1], DType.Float64, requiresGrad: true);
        a.Grad = Tensor.FromArray([3.0, 0.0]);
        b.Grad = Tensor.FromArray([4.0]);
        double total = GradientClipping.ClipGradNorm([a, b, none], maxNorm: 1);
        Assert.Equal(5, total, 12);
        double coef = 1 / (5 + 1e-6);
        Assert.Equal([3 * coef, 0], a.Grad.ToDoubleArray());
        Assert.Equal([4 * coef], b.Grad.ToDoubleArray());
        Assert.Null(none.Grad);
        Assert.Equal(0, GradientClipping.ClipGradNorm([none], 1));
    }

    [Fact]
    public void NonfiniteNormThrowsWhenAsked()
    {
        var a = Tensor.Zeros([2], DType.Float32, requiresGrad: true);
        a.Grad = Tensor.FromArray([float.NaN, 1f]);
        var ex = Assert.Throws<InvalidOperationException>(() => GradientClipping.ClipGradNorm([a], 1, errorIfNonfinite: true));
        Assert.Contains("NaN", ex.Message);
        Assert.True(double.IsNaN(GradientClipping.ClipGradNorm([a], 1)));
        Assert.True(float.IsNaN(a.Grad!.ToArray<float>()[1]));
    }

    [Fact]
    public void AgcByHand()
    {
        // Row 0: ‖w‖ = 5, ‖g‖ = 1 > 0.01·5, so g scales to 0.05/1. Row 1: ‖w‖ = 0 -> eps 1e-3, ‖g‖ = 1e-6 < 1e-5: kept.
        var w = Tensor.FromArray([3.0, 4.0, 0.0, 0.0], 2, 2).RequireGrad();
        w.Grad = Tensor.FromArray([0.6, 0.8, 1e-6, 0.0], 2, 2);
        int clipped = GradientClipping.AdaptiveClipGrad([w]);
        Assert.Equal(1, clipped);
        TestUtil.Close([0.6 * 0.05, 0.8 * 0.05, 1e-6, 0], w.Grad.ToDoubleArray(), 1e-12, 0);
    }

    [Fact]
    public void ClipGradValueClampsAndChecksArguments()
    {
        var a = Tensor.Zeros([3], DType.Float32, requiresGrad: true);
        a.Grad = Tensor.FromArray([-2f, 0.1f, 5f]);
        GradientClipping.ClipGradValue([a], 1);
        Assert.Equal([-1f, 0.1f, 1f], a.Grad.ToArray<float>());
        Assert.Contains("clipValue", Assert.Throws<ArgumentException>(() => GradientClipping.ClipGradValue([a], -1)).ParamName);
        Assert.Throws<ArgumentException>(() => GradientClipping.ClipGradNorm([a], 1, normType: 0));
    }
}
