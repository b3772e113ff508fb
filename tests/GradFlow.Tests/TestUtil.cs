namespace GradFlow.Tests;

internal static class TestUtil
{
    public static Tensor R64(ulong seed, params int[] shape) =>
        Tensor.Randn(shape, DType.Float64, new Generator(seed), requiresGrad: true);

    /// <summary>Values away from zero (for Log, Sqrt, Div, Pow).</summary>
    public static Tensor Pos64(ulong seed, params int[] shape)
    {
        var t = Tensor.Rand(shape, DType.Float64, new Generator(seed)) + 0.5;
        return t.Detach().RequireGrad();
    }

    public static void Close(double[] expected, double[] actual, double rtol = 1e-5, double atol = 1e-6)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double tol = atol + rtol * Math.Abs(expected[i]);
            if (double.IsNaN(expected[i])) { Assert.True(double.IsNaN(actual[i]), $"element {i}: expected NaN, got {actual[i]}"); continue; }
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol || expected[i] == actual[i],
                $"element {i}: expected {expected[i]:R}, got {actual[i]:R} (tolerance {tol:G3})");
        }
    }
}
