namespace GradFlow.Tests.Ops;

public class IndexSelectTests
{
    // Rows of a contiguous tensor are copied as runs; the same rows read through a strided layout take the general path.
    [Fact]
    public void RowsOfContiguousTensorsMatchTheStridedPath()
    {
        var idx = Tensor.FromArray(new long[] { 3, -1, 0, 3, 2 });
        var x = Tensor.Randn([6, 4, 5], DType.Float32, new Generator(8));
        var rows = x.Narrow(0, 1, 5); // contiguous, at an offset into its storage
        var strided = x.Permute(1, 0, 2).Contiguous().Permute(1, 0, 2).Narrow(0, 1, 5);
        Assert.False(strided.IsContiguous);
        Assert.Equal(strided.IndexSelect(0, idx).ToArray<float>(), rows.IndexSelect(0, idx).ToArray<float>());
        Assert.Equal(rows.Select(0, 4).ToArray<float>(), rows.IndexSelect(0, idx).Select(0, 1).ToArray<float>());

        var labels = Tensor.FromArray(new long[] { 10, 11, 12, 13, 14 });
        Assert.Equal([13L, 14, 10, 13, 12], labels.IndexSelect(0, idx).ToArray<long>());
        Assert.Equal([0, 4], Tensor.Zeros(0, 4).IndexSelect(0, Tensor.FromArray(Array.Empty<long>())).Shape.ToArray());
    }
}
