using GradFlow.Kernels;

namespace GradFlow.Tests.Kernels;

[Collection(ParallelismCollection.Name)]
public unsafe class GemmTransposeTests
{
    [Theory]
    [InlineData(12, 16, 12)]
    [InlineData(12, 48, 33)]
    [InlineData(16, 16, 17)]
    [InlineData(32, 32, 1023)]
    [InlineData(32, 1024, 1031)]
    public void Pack16MatchesTheScalarTranspose(int width, int kc, int ld)
    {
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported) return; // an AVX-512 kernel; GemmPacking falls back to its scalar gather
        var random = new Random(width * 1000 + kc);
        var src = new float[(width * ld) + kc];
        for (int i = 0; i < src.Length; i++) src[i] = (float)random.NextDouble();
        var dst = new float[(width * kc) + 16];
        Array.Fill(dst, float.NaN);
        fixed (float* s = src, d = dst) GemmTranspose.Pack16(s + 1, ld, width, kc, d);
        for (int p = 0; p < kc; p++)
            for (int i = 0; i < width; i++)
                Assert.Equal(src[1 + (i * ld) + p], dst[(p * width) + i]);
        for (int i = width * kc; i < dst.Length; i++) Assert.True(float.IsNaN(dst[i]), $"wrote past the panel at {i}");
    }

    [Theory]
    [InlineData(4, 8, 9)]
    [InlineData(6, 8, 8)]
    [InlineData(6, 48, 33)]
    [InlineData(8, 16, 17)]
    [InlineData(16, 256, 121)]
    [InlineData(24, 40, 1023)]
    public void Pack8MatchesTheScalarTranspose(int width, int kc, int ld)
    {
        if (!System.Runtime.Intrinsics.X86.Avx.IsSupported) return; // an AVX kernel; GemmPacking falls back to its scalar gather
        var random = new Random(width * 1000 + kc);
        var src = new float[(width * ld) + kc];
        for (int i = 0; i < src.Length; i++) src[i] = (float)random.NextDouble();
        var dst = new float[(width * kc) + 16];
        Array.Fill(dst, float.NaN);
        fixed (float* s = src, d = dst) GemmTranspose.Pack8(s + 1, ld, width, kc, d);
        for (int p = 0; p < kc; p++)
            for (int i = 0; i < width; i++)
                Assert.Equal(src[1 + (i * ld) + p], dst[(p * width) + i]);
        for (int i = width * kc; i < dst.Length; i++) Assert.True(float.IsNaN(dst[i]), $"wrote past the panel at {i}");
    }

    // Operands of every size class and orientation against the scalar gather and memmove runs, bit for bit: packing
    // only moves values.
    [Theory]
    [InlineData(64, 288, 121)]
    [InlineData(13, 37, 29)]
    [InlineData(7, 45, 8)]
    public void SgemmWithAndWithoutVectorPacksAgreeExactly(int m, int n, int k)
    {
        var random = new Random(m * n + k);
        float[] Fill(int len) { var v = new float[len]; for (int i = 0; i < len; i++) v[i] = (float)(random.NextDouble() - 0.5); return v; }
        float[] a = Fill(m * k), b = Fill(k * n);
        foreach (var (ta, tb) in new[] { (false, true), (true, false), (true, true), (false, false) })
        {
            float[] fast = new float[m * n], slow = new float[m * n];
            Gemm.Sgemm(ta, tb, m, n, k, 1f, a, ta ? m : k, b, tb ? k : n, 0f, fast, n);
            GemmTranspose.Pack8Enabled = false;
            GemmPacking.SmallRunsEnabled = false;
            try
            {
                Gemm.Sgemm(ta, tb, m, n, k, 1f, a, ta ? m : k, b, tb ? k : n, 0f, slow, n);
            }
            finally
            {
                GemmTranspose.Pack8Enabled = true;
                GemmPacking.SmallRunsEnabled = true;
            }

            Assert.Equal(slow, fast);
        }
    }

    [Theory]
    [InlineData(128, 1024, 784)]
    [InlineData(7, 33, 1023)]
    [InlineData(129, 47, 35)]
    public void SgemmWithTransposedOperandsMatchesReference(int m, int n, int k)
    {
        var random = new Random(m + n + k);
        float[] Fill(int len) { var v = new float[len]; for (int i = 0; i < len; i++) v[i] = (float)(random.NextDouble() - 0.5); return v; }
        float[] a = Fill(m * k), b = Fill(k * n);
        foreach (var (ta, tb) in new[] { (false, true), (true, false), (true, true), (false, false) })
        {
            var c = new float[m * n];
            Gemm.Sgemm(ta, tb, m, n, k, 1f, a, ta ? m : k, b, tb ? k : n, 0f, c, n);
            for (int i = 0; i < m; i += Math.Max(1, m / 9))
                for (int j = 0; j < n; j += Math.Max(1, n / 11))
                {
                    double r = 0;
                    for (int p = 0; p < k; p++) r += (double)a[ta ? (p * m) + i : (i * k) + p] * b[tb ? (j * k) + p : (p * n) + j];
                    Assert.True(Math.Abs(r - c[(i * n) + j]) < 1e-4 * Math.Sqrt(k), $"ta={ta} tb={tb} C[{i},{j}] = {c[(i * n) + j]}, expected {r}");
                }
        }
    }
}
