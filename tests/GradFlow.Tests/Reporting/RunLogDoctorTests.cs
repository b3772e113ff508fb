using GradFlow.Diagnostics;
using GradFlow.NN;
using GradFlow.Optim;
using GradFlow.Reporting;

namespace GradFlow.Tests.Reporting;

public class RunLogDoctorTests
{
    [Fact]
    public void ARunLogIsDiagnosedAfterTheFact()
    {
        // A learning rate so low the loss cannot move: the offline doctor names it from the log alone.
        using var seeded = Generator.UseAsDefault(new Generator(5)); // not the shared default: tests run side by side
        var model = new Sequential(new Linear(8, 16), new ReLU(), new Linear(16, 4));
        var optimizer = new SGD(model.Parameters(), 1e-7);
        string path = Path.Combine(Path.GetTempPath(), $"gradflow-doctor-{Guid.NewGuid():N}.jsonl");
        try
        {
            using (var monitor = GradientMonitor.Attach(model, optimizer))
            using (RunLog.Attach(monitor, path))
            {
                var gen = new Generator(2);
                for (int i = 0; i < 40; i++)
                {
                    var x = Tensor.Randn([32, 8], generator: gen);
                    var y = x.Slice(1, 0, 4).ArgMax(1);
                    optimizer.ZeroGrad();
                    Functional.CrossEntropy(model.Call(x), y).Backward();
                    optimizer.Step();
                }
            }
            var findings = RunLog.Diagnose(path, new DoctorOptions { Classes = 4 });
            var f = Assert.Single(findings);
            Assert.Equal(FindingKind.LearningRateTooLow, f.Kind);
            Assert.Contains(f.Fixes, x => x.Action.StartsWith("raise the learning rate to", StringComparison.Ordinal));
        }
        finally { File.Delete(path); }
    }
}
