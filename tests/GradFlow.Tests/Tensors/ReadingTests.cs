using GradFlow.Formats;

namespace GradFlow.Tests.Tensors;

/// <summary>Reading a tensor (ToArray, printing, saving) is not an op: a monitor watching the step sees none of it.</summary>
public class ReadingTests
{
    private sealed class OpCounter : IAutogradObserver
    {
        public List<string> Ops { get; } = [];
        public void OnForward(string op, ReadOnlySpan<Tensor> inputs, Tensor output, Node? node) => Ops.Add(op);
        public void OnBackward(Node node, ReadOnlySpan<Tensor?> gradOutputs, ReadOnlySpan<Tensor?> gradInputs) { }
    }

    [Fact]
    public void ReadingAStridedTensorRecordsNoOp()
    {
        var x = Tensor.Arange(0, 12).Reshape(3, 4).RequireGrad();
        var y = (x * 2).Transpose(0, 1);   // strided, and part of a graph
        Assert.False(y.IsContiguous);
        var counter = new OpCounter();
        double[] d;
        float[] f;
        string printed;
        using (Autograd.AddObserver(counter))
        {
            d = y.ToDoubleArray();
            f = y.ToArray<float>();
            printed = y.ToString();
            using var stream = new MemoryStream();
            SafeTensors.Write(stream, new Dictionary<string, Tensor> { ["y"] = y });
        }
        Assert.Empty(counter.Ops);
        Assert.Equal([0, 8, 16, 2, 10, 18, 4, 12, 20, 6, 14, 22], d);
        Assert.Equal([0f, 8, 16, 2, 10, 18, 4, 12, 20, 6, 14, 22], f);
        Assert.StartsWith("tensor([[ 0.,  8., 16.],", printed, StringComparison.Ordinal);
        Assert.EndsWith("gradFn=<PermuteBackward>)", printed, StringComparison.Ordinal);

        // The observer does see ops, so the empty list above is not for want of listening.
        using (Autograd.AddObserver(counter)) _ = y.Contiguous();
        Assert.Equal(["Clone"], counter.Ops);
    }

    [Fact]
    public void AStridedInt64TensorCopiesRowMajor()
    {
        var x = Tensor.Arange(6, DType.Int64).Reshape(2, 3).Transpose(0, 1);
        Assert.Equal([0L, 3, 1, 4, 2, 5], x.ToArray<long>());
        Assert.Equal([0.0, 3, 1, 4, 2, 5], x.ToDoubleArray());
    }
}
