using GradFlow.Diagnostics;

namespace GradFlow.Tests.Diagnostics;

public class AnomalyModeTests
{
    [Fact]
    public void ANonFiniteInputIsReportedOnceAtItsFirstReaderAndReadingItDoesNotRecurse()
    {
        // Reading the input's range for the report copies it; the copy is non-finite too and once recursed without end.
        var x = Tensor.FromArray(new float[] { 1, float.NaN, 2 }).RequireGrad();
        using var anomaly = AnomalyMode.Enable(throwOnAnomaly: false);
        var y = (x * 2.0).Sum();
        Assert.True(double.IsNaN(y.Item()));
        var r = Assert.Single(anomaly.Reports);
        Assert.Equal(AnomalyPhase.Input, r.Phase);
        Assert.Equal(1, r.NaNCount);
        Assert.Contains("non-finite input", r.ToString());
    }

    [Fact]
    public void LogOfZeroIsReportedAtTheLogInForward()
    {
        var x = Tensor.FromArray(new float[] { 1, 0, 2 }).RequireGrad();
        using var anomaly = AnomalyMode.Enable();
        var e = Assert.Throws<AnomalyException>(() =>
        {
            using var _ = Autograd.Scope("encoder.norm");
            return (x * 2.0).Log().Sum();
        });
        Assert.Equal(AnomalyPhase.Forward, e.Report.Phase);
        Assert.Equal("Log", e.Report.Op);
        Assert.Equal("encoder.norm", e.Report.Module);
        Assert.Equal(1, e.Report.InfCount);
        Assert.Equal(0, e.Report.Inputs[0].Min);
        Assert.Contains(nameof(LogOfZeroIsReportedAtTheLogInForward), e.Report.CreatedAt);
    }

    [Fact]
    public void ZeroOverZeroIsReportedAtTheDivision()
    {
        var a = Tensor.Zeros(3);
        using var anomaly = AnomalyMode.Enable(throwOnAnomaly: false);
        var y = (a / a).Exp() + 1.0; // NaN starts at Div; Exp and Add only pass it on
        Assert.Single(anomaly.Reports);
        Assert.Equal("Div", anomaly.Reports[0].Op);
        Assert.Equal(3, anomaly.Reports[0].NaNCount);
        Assert.True(double.IsNaN(y.GetFlat(0)));
    }

    [Fact]
    public void OverflowingExpIsReported()
    {
        using var anomaly = AnomalyMode.Enable(throwOnAnomaly: false);
        _ = Tensor.FromArray(new float[] { 1, 100 }).Exp();
        Assert.Equal("Exp", anomaly.Reports.Single().Op);
        Assert.Equal(1, anomaly.Reports[0].InfCount);
    }

    [Fact]
    public void InfiniteGradientOfSqrtAtZeroIsReportedInBackwardWithItsCreationSite()
    {
        var x = Tensor.FromArray(new float[] { 0, 4 }).RequireGrad();
        using var anomaly = AnomalyMode.Enable(throwOnAnomaly: false);
        Tensor y;
        using (Autograd.Scope("head")) y = x.Sqrt().Sum();
        Assert.Empty(anomaly.Reports);
        y.Backward();
        var r = anomaly.Reports.Single();
        Assert.Equal(AnomalyPhase.Backward, r.Phase);
        Assert.Equal("Sqrt", r.Op);
        Assert.Equal("head", r.Module);
        Assert.Equal(1, r.InfCount);
        Assert.Contains(nameof(InfiniteGradientOfSqrtAtZeroIsReportedInBackwardWithItsCreationSite), r.CreatedAt);
        Assert.Contains("AnomalyModeTests.cs:line", r.CreatedAt); // resolved from the PDB only for the report
    }

    [Fact]
    public void FiniteComputationsReportNothingAndDisposeDetaches()
    {
        var anomaly = AnomalyMode.Enable();
        var x = Tensor.Randn([4, 4], requiresGrad: true);
        x.MatMul(x).Tanh().Sum().Backward();
        anomaly.Dispose();
        _ = Tensor.Zeros(2).Log(); // no longer watched: no throw
        Assert.Empty(anomaly.Reports);
    }

    [Fact]
    public void DivisionWhoseGradientOverflowsIsReportedInBackward()
    {
        // 1e-30 / 1e-30 = 1 is finite, but d(a/b)/db = -a/b^2 = -1e30 overflows float32 once scaled by the upstream 1e9.
        var a = Tensor.FromArray(new float[] { 1e-30f, 1 }).RequireGrad();
        var b = Tensor.FromArray(new float[] { 1e-30f, 1 }).RequireGrad();
        using var anomaly = AnomalyMode.Enable(throwOnAnomaly: false);
        var y = (a / b).Mul(1e9).Sum();
        Assert.Empty(anomaly.Reports);
        y.Backward();
        var r = anomaly.Reports.Single();
        Assert.Equal((AnomalyPhase.Backward, "Div"), (r.Phase, r.Op));
        Assert.Equal(1e9, r.Inputs.Single().Max, 1);
    }

    [Fact]
    public void ExpNearTheFloatLimitIsFiniteForwardButOverflowsBackward()
    {
        var x = Tensor.FromArray(new float[] { 88f, 0 }).RequireGrad();
        using var anomaly = AnomalyMode.Enable();
        var y = x.Exp(); // e^88 = 1.65e38 < float max, but the gradient 4 e^88 does not fit
        var e = Assert.Throws<AnomalyException>(() => y.Backward(Tensor.Full([2], 4.0)));
        Assert.Equal((AnomalyPhase.Backward, "Exp"), (e.Report.Phase, e.Report.Op));
        Assert.Equal(1, e.Report.InfCount);
    }
}
