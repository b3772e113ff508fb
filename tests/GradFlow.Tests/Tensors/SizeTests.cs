using GradFlow.Diagnostics;
using GradFlow.NN;

namespace GradFlow.Tests.Tensors;

public class SizeTests
{
    [Fact]
    public void AShapePrintsComparesAndIndexesFromTheEnd()
    {
        var x = Tensor.Zeros(64, 1, 28, 28);
        Assert.Equal("[64, 1, 28, 28]", $"{x.Shape}");
        Assert.Equal("[]", $"{Tensor.Scalar(1).Shape}");
        Assert.Equal(28, x.Shape[^1]);
        Assert.Equal(4, x.Shape.Length);
        Assert.Equal(64L * 28 * 28, x.Shape.Numel());
        Assert.Equal(new Size(1, 28, 28), x.Shape[1..]);
        Assert.True(x.Shape == new Size(64, 1, 28, 28));
        Assert.True(x.Shape != Tensor.Zeros(64, 28, 28).Shape);
        Assert.Equal(x.Shape.GetHashCode(), new Size(64, 1, 28, 28).GetHashCode());
        ReadOnlySpan<int> span = x.Shape; // existing code that takes a span still compiles
        Assert.Equal(1, span[1]);
        Assert.Equal([64, 1, 28, 28], x.Shape.ToArray());
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => x.Shape[4]);
        Assert.Contains("dim 4 is out of range for shape [64, 1, 28, 28]", ex.Message);
        int total = 0;
        foreach (int d in x.Shape) total += d;
        Assert.Equal(64 + 1 + 28 + 28, total);
    }

    [Fact]
    public void LoadStateDictResultPrintsAsPyTorchDoes()
    {
        var a = new Linear(2, 2);
        Assert.Equal("<All keys matched successfully>", a.LoadStateDict(new Linear(2, 2).StateDict()).ToString());
        var partial = new Dictionary<string, Tensor> { ["weight"] = Tensor.Zeros(2, 2), ["extra"] = Tensor.Zeros(1) };
        Assert.Equal("_IncompatibleKeys(missing_keys=['bias'], unexpected_keys=['extra'])", a.LoadStateDict(partial, strict: false).ToString());
    }

    [Fact]
    public void AStepRecordPrintsALineAndATable()
    {
        var grad = new TensorStats(4, 0.5, 0.2, 0.4, 0.25, 0, 0, 0, null);
        var record = new StepRecord
        {
            Step = 3,
            Loss = 0.25,
            LearningRate = 0.1,
            GlobalGradNorm = 0.5,
            Parameters = [new ParameterStats("fc.weight", "fc", grad, 2, 0.002)],
            Layers = [new LayerGradientStats("fc", 0, grad, 2, 0.002)],
            Flow = [new FlowStats("fc", 0, 0.125, 0)],
            Activations = [new ActivationStats("fc", "Relu", 0, 8, 0.25, null, null, 0.1, 0.2)],
        };
        Assert.Equal("StepRecord(step 3, loss 0.25, lr 0.1, grad norm 0.5, 1 parameters in 1 layers)", record.ToString());
        var table = record.ToTable().Split(Environment.NewLine);
        Assert.StartsWith("layer", table[1]);
        Assert.Contains("update/weight", table[1]);
        Assert.StartsWith("fc", table[2]);
        Assert.Contains("5.000e-1", table[2]);
        Assert.Contains("1.0e-3", table[2]);
        Assert.Contains("Relu dead 25%", table[2]);
        Assert.Equal("[fc] 0.500 1.0e-3", StepRecord.Summary([record, record]));
        Assert.Throws<ArgumentException>(() => StepRecord.Summary([]));
    }
}
