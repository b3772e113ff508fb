namespace GradFlow.Tests.AutogradTests;

/// <summary>
/// A leaf adopts a fresh backward gradient as its Grad instead of copying it (PyTorch's AccumulateGrad steal);
/// these pin down that no adopted buffer is shared with another leaf, a hook's copy or the caller's tensor.
/// </summary>
public class GradientAdoptionTests
{
    private static Tensor Leaf(params float[] v) => Tensor.FromArray(v, v.Length).RequireGrad();

    [Fact]
    public void TwoLeavesGivenTheSameGradientDoNotShareIt()
    {
        Tensor x = Leaf(1, 2, 3), b = Leaf(4, 5, 6);
        ((x + b) * 2.0).Sum().Backward(); // AddBackward hands one tensor to both leaves
        Assert.False(ReferenceEquals(x.Grad!.Storage, b.Grad!.Storage));
        ((x + b) * 2.0).Sum().Backward(); // accumulates in place into x's owned Grad
        Assert.Equal([4f, 4f, 4f], x.Grad!.ToArray<float>());
        Assert.Equal([4f, 4f, 4f], b.Grad!.ToArray<float>());
    }

    [Fact]
    public void AGradientAHookKeptIsNotAdopted()
    {
        var x = Leaf(1, 2);
        Tensor? seen = null;
        var h = x * 3.0;
        var y = h * 1.0; // ScaleBackward(1) passes the gradient the hook saw straight on
        y.RegisterHook(g => { seen = g; return null; });
        (y * 2.0).Sum().Backward(retainGraph: true);
        (y * 2.0).Sum().Backward();
        Assert.Equal([12f, 12f], x.Grad!.ToArray<float>());
        Assert.Equal([2f, 2f], seen!.ToArray<float>());
    }

    [Fact]
    public void TheCallersGradientIsNotAdopted()
    {
        var x = Leaf(1, 2);
        var gradient = Tensor.FromArray(new float[] { 1, 1 }, 2);
        var y = x * 1.0;
        y.Backward(gradient, retainGraph: true);
        y.Backward(gradient);
        Assert.Equal([2f, 2f], x.Grad!.ToArray<float>());
        Assert.Equal([1f, 1f], gradient.ToArray<float>());
    }

    [Fact]
    public void LinearWeightGradientArrivesContiguousAndMatchesTheTransposedProduct()
    {
        var g = new Generator(3);
        var w = Tensor.Randn([7, 5], DType.Float64, g).RequireGrad();
        var x = Tensor.Randn([3, 5], DType.Float64, g);
        var gy = Tensor.Randn([3, 7], DType.Float64, g);
        x.MatMul(w.T).Backward(gy);
        Assert.True(w.Grad!.IsContiguous);
        var expected = gy.T.MatMul(x).ToArray<double>();
        var actual = w.Grad.ToArray<double>();
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i], 12);
    }
}
