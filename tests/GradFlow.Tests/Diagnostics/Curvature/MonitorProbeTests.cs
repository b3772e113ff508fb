using GradFlow.Diagnostics;
using GradFlow.NN;
using GradFlow.Optim;

namespace GradFlow.Tests.Diagnostics.Curvature;

public class MonitorProbeTests
{
    private static List<StepRecord> Train(bool probe)
    {
        var net = new Sequential(new Linear(3, 6, generator: new Generator(1)), new ReLU(), new Linear(6, 2, generator: new Generator(2)));
        var x = Tensor.Randn([8, 3], DType.Float32, new Generator(3));
        var y = Tensor.FromArray(Enumerable.Range(0, 8).Select(i => (long)(i % 2)).ToArray(), 8);
        Tensor Loss() => Functional.CrossEntropy(net.Call(x), y);
        var opt = new SGD(net.Parameters(), 0.1, momentum: 0.9);
        using var monitor = GradientMonitor.Attach(net, opt);
        if (probe) monitor.AddSharpnessProbe(new SharpnessProbe(Loss, net, opt, every: 2));
        var records = new List<StepRecord>();
        monitor.StepRecorded += records.Add;
        for (int step = 0; step < 4; step++)
        {
            opt.ZeroGrad();
            Loss().Backward();
            opt.Step();
        }
        return records;
    }

    [Fact]
    public void ProbeResultsJoinTheRecordsOfDueStepsWithoutTouchingTheRest()
    {
        var plain = Train(probe: false);
        var probed = Train(probe: true);
        Assert.Equal([null, 2L, null, 4L], probed.Select(r => r.Curvature?.Step));
        Assert.All(plain, r => Assert.Null(r.Curvature));
        Assert.All(probed.Where(r => r.Curvature is not null), r => Assert.Equal("SGD", r.Curvature!.Optimizer));
        Assert.Equal(2 * 1.9 / 0.1, probed[1].Curvature!.StabilityThreshold!.Value, 10);
        // The probe's own passes are hidden from the monitor: every other figure is the same with or without it.
        for (int i = 0; i < plain.Count; i++)
            Reporting.RunLogTestData.AssertSame(plain[i], probed[i] with { Curvature = null });
    }
}
