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

    /// <summary>
    /// The bytes one call of <paramref name="step"/> allocates on this thread once steady: the least over up to
    /// <paramref name="rounds"/> calls, stopping at the first within <paramref name="limit"/>. The JIT's tiering
    /// (a method reaching its call count, on-stack replacement) allocates on the calling thread in some calls, and
    /// more of them on a loaded machine, where its background compiles finish later; code that allocates per step
    /// does so in every call, so the least call still exceeds the limit. Other threads' allocations never count.
    /// </summary>
    public static (long Least, List<long> Seen) SteadyAllocation(Action step, long limit, int rounds = 12)
    {
        var seen = new List<long>();
        for (int i = 0; i < rounds && (seen.Count == 0 || seen.Min() > limit); i++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            step();
            seen.Add(GC.GetAllocatedBytesForCurrentThread() - before);
        }
        return (seen.Min(), seen);
    }
}
