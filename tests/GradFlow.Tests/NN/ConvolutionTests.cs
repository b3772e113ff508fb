using GradFlow.NN;
using static GradFlow.Tests.TestUtil;

namespace GradFlow.Tests.NN;

public class ConvolutionTests
{
    // Sums of up to 36 products: float32 rounding differs from PyTorch's summation order by a few ulps.
    private const double Rtol = 1e-5, Atol = 1e-5;

    [Fact] public void Conv2dMatchesPyTorch() => NNFixtures.Check("conv2d", new Conv2d(3, 4, 3), Rtol, Atol);

    [Fact]
    public void Conv2dStridedPaddedDilatedMatchesPyTorch() =>
        NNFixtures.Check("conv2d_strided_padded_dilated", new Conv2d(2, 4, (3, 2), stride: (2, 1), padding: (1, 2), dilation: (2, 1)), Rtol, Atol);

    [Fact] public void Conv2dGroupsMatchesPyTorch() => NNFixtures.Check("conv2d_groups", new Conv2d(4, 6, 3, padding: 1, groups: 2, bias: false), Rtol, Atol);
    [Fact] public void Conv1dMatchesPyTorch() => NNFixtures.Check("conv1d", new Conv1d(3, 2, 3, stride: 2, padding: 1), Rtol, Atol);

    [Fact]
    public void ConvTranspose2dMatchesPyTorch() =>
        NNFixtures.Check("conv_transpose2d", new ConvTranspose2d(3, 2, 3, stride: 2, padding: 1, outputPadding: 1), Rtol, Atol);

    [Fact]
    public void ConvTranspose2dGroupsDilatedMatchesPyTorch() =>
        NNFixtures.Check("conv_transpose2d_groups", new ConvTranspose2d(4, 4, 2, groups: 2, dilation: 2), Rtol, Atol);

    [Fact] public void MaxPool2dMatchesPyTorch() => NNFixtures.Check("maxpool2d", new MaxPool2d(2));
    [Fact] public void MaxPool2dPaddedMatchesPyTorch() => NNFixtures.Check("maxpool2d_padded", new MaxPool2d(3, stride: 2, padding: 1));
    [Fact] public void AvgPool2dMatchesPyTorch() => NNFixtures.Check("avgpool2d", new AvgPool2d(3, stride: 2, padding: 1));
    [Fact] public void AdaptiveAvgPool2dMatchesPyTorch() => NNFixtures.Check("adaptive_avgpool2d", new AdaptiveAvgPool2d((3, 2)));
    [Fact] public void FlattenMatchesPyTorch() => NNFixtures.Check("flatten", new Flatten());

    private static void GradCheckModule(Module m, Tensor x, bool secondOrder = false)
    {
        Tensor[] inputs = [x, .. m.Parameters()];
        Assert.True(GradCheck.Check(_ => m.Call(x), inputs));
        if (secondOrder) Assert.True(GradCheck.CheckSecondOrder(_ => m.Call(x), inputs));
    }

    [Fact]
    public void Conv2dGradChecksFirstAndSecondOrder() =>
        GradCheckModule(new Conv2d(2, 3, (2, 3), stride: (2, 1), padding: (1, 1), dilation: (1, 2), dtype: DType.Float64), R64(1, 2, 2, 5, 5), secondOrder: true);

    [Theory]
    [InlineData(1, 0, false)] // the cnn bench's first layer: the direct kernel (on AVX-512), input without a gradient
    [InlineData(1, 1, true)]  // padded, and the input's gradient through the im2col path
    [InlineData(2, 2, true)]  // two input channels, 18 taps: the GEMM path
    public void FloatConv2dWithBiasMatchesFloat64(int inChannels, int padding, bool inputGrad)
    {
        var m64 = new Conv2d(inChannels, 5, 3, padding: padding, dtype: DType.Float64, generator: new Generator(3));
        var m32 = new Conv2d(inChannels, 5, 3, padding: padding, generator: new Generator(3));
        var x64 = R64(12, 2, inChannels, 19, 21).RequireGrad(inputGrad);
        var x32 = x64.Detach().To(DType.Float32).RequireGrad(inputGrad);
        var y64 = m64.Call(x64);
        var y32 = m32.Call(x32);
        var gy = Tensor.Randn(y64.Shape, DType.Float64, new Generator(13));
        (y64 * gy).Sum().Backward();
        (y32 * gy.To(DType.Float32)).Sum().Backward();
        Fixtures.Fixture.AssertClose(y64, y32.To(DType.Float64), "y", 1e-5, 1e-5);
        Fixtures.Fixture.AssertClose(m64.Weight.Grad!, m32.Weight.Grad!.To(DType.Float64), "dW", 1e-4, 1e-4);
        Fixtures.Fixture.AssertClose(m64.Bias!.Grad!, m32.Bias!.Grad!.To(DType.Float64), "db", 1e-4, 1e-4);
        if (inputGrad) Fixtures.Fixture.AssertClose(x64.Grad!, x32.Grad!.To(DType.Float64), "dx", 1e-5, 1e-5);
        else Assert.Null(x32.Grad);
    }

    [Fact] public void Conv2dGroupsGradChecks() => GradCheckModule(new Conv2d(4, 2, 2, groups: 2, dtype: DType.Float64), R64(2, 1, 4, 3, 3));
    [Fact] public void Conv1dGradChecks() => GradCheckModule(new Conv1d(2, 2, 3, padding: 2, dilation: 2, dtype: DType.Float64), R64(3, 2, 2, 6));

    [Fact]
    public void ConvTranspose2dGradChecks() =>
        GradCheckModule(new ConvTranspose2d(2, 4, 3, stride: 2, padding: 1, outputPadding: 1, groups: 2, dtype: DType.Float64), R64(4, 1, 2, 3, 2), secondOrder: true);

    [Fact] public void MaxPool2dGradChecks() => GradCheckModule(new MaxPool2d(3, stride: 2, padding: 1), R64(5, 2, 1, 5, 6));
    [Fact] public void AvgPool2dGradChecks() => GradCheckModule(new AvgPool2d(3, stride: 2, padding: 1, countIncludePad: false), R64(6, 1, 2, 5, 4), secondOrder: true);
    [Fact] public void AdaptiveAvgPool2dGradChecks() => GradCheckModule(new AdaptiveAvgPool2d((2, 3)), R64(7, 1, 2, 5, 4), secondOrder: true);

    [Fact]
    public void UnfoldAndFoldAreAdjoint()
    {
        var x = R64(8, 2, 3, 5, 4);
        var cols = Functional.Unfold(x, (2, 3), padding: (1, 1), stride: (2, 1));
        var c = Tensor.Randn(cols.Shape, DType.Float64, new Generator(9));
        var folded = Functional.Fold(c, (5, 4), (2, 3), padding: (1, 1), stride: (2, 1));
        // <unfold(x), c> = <x, fold(c)>
        Assert.Equal((cols * c).Sum().Item(), (x * folded).Sum().Item(), 10);
    }

    [Fact]
    public void KernelConvolutionAgreesWithUnfoldAndMatMul()
    {
        // The reference: columns of every window times the flattened filters, per group.
        var x = R64(10, 2, 4, 6, 5);
        var w = R64(11, 6, 2, 3, 2);
        var y = Functional.Conv2d(x, w, stride: (2, 1), padding: (1, 1), dilation: (1, 2), groups: 2);
        var cols = Functional.Unfold(x, (3, 2), dilation: (1, 2), padding: (1, 1), stride: (2, 1)); // (2, 4*6, L)
        var reference = w.Reshape(2, 3, 12).MatMul(cols.Reshape(2, 2, 12, -1)).Reshape(y.Shape);
        Fixtures.Fixture.AssertClose(reference, y, "conv vs unfold", 1e-12, 1e-12);
    }

    [Fact]
    public void UnbatchedInputsWork()
    {
        var conv = new Conv2d(2, 3, 3, padding: 1);
        var x = Tensor.Randn(2, 4, 4);
        Fixtures.Fixture.AssertClose(conv.Call(x.Unsqueeze(0)).Squeeze(0), conv.Call(x), "unbatched conv");
        Assert.Equal([2, 2, 2], new MaxPool2d(2).Call(x).Shape.ToArray());
    }

    [Fact]
    public void WrongChannelsNameLayerAndShapes()
    {
        var net = new Sequential(new Conv2d(3, 8, 3));
        var ex = Assert.Throws<ArgumentException>(() => net.Call(Tensor.Zeros(1, 4, 8, 8)));
        Assert.Contains("Conv2d '0'", ex.Message);
        Assert.Contains("[N, 3, H, W]", ex.Message);
        Assert.Contains("[1, 4, 8, 8]", ex.Message);
        Assert.Throws<ArgumentException>(() => new Conv2d(3, 8, 5).Call(Tensor.Zeros(1, 3, 3, 3)));
    }

    [Fact]
    public void DefaultInitFollowsPyTorch()
    {
        // kaiming_uniform(a=sqrt(5)) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in)): std 1/sqrt(3 fan_in).
        var conv = new Conv2d(64, 128, 3, generator: new Generator(4));
        double fanIn = 64 * 9;
        var w = conv.Weight.ToDoubleArray();
        double mean = w.Average(), std = Math.Sqrt(w.Average(v => (v - mean) * (v - mean)));
        Assert.True(Math.Abs(std * Math.Sqrt(3 * fanIn) - 1) < 0.01, $"std {std}");
        Assert.True(Math.Abs(mean) < 5 * std / Math.Sqrt(w.Length));
        Assert.All(conv.Bias!.ToDoubleArray(), b => Assert.InRange(b, -1 / Math.Sqrt(fanIn), 1 / Math.Sqrt(fanIn)));
        var t = new ConvTranspose2d(16, 32, 3, generator: new Generator(5)); // fan_in is weight.size(1) * k*k = 32 * 9
        Assert.All(t.Weight.ToDoubleArray(), v => Assert.InRange(v, -1 / Math.Sqrt(32 * 9), 1 / Math.Sqrt(32 * 9)));
    }
}
