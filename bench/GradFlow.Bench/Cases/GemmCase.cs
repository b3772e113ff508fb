using GradFlow.Kernels;

namespace GradFlow.Bench.Cases;

/// <summary>Square fp32 matmul C = A * B through <see cref="Gemm.Sgemm"/>; torch twin: torch.matmul.</summary>
internal sealed class GemmCase(int size) : IBenchCase
{
    private float[] a = [];
    private float[] b = [];
    private float[] c = [];

    public string Name => $"gemm{size}";

    public double FlopsPerStep => 2.0 * size * size * size;

    public void Setup()
    {
        var random = new Random(42);
        a = new float[size * size];
        b = new float[size * size];
        c = new float[size * size];
        for (int i = 0; i < a.Length; i++)
        {
            a[i] = (float)((random.NextDouble() * 2) - 1);
            b[i] = (float)((random.NextDouble() * 2) - 1);
        }
    }

    public void Step() => Gemm.Sgemm(false, false, size, size, size, 1f, a, size, b, size, 0f, c, size);
}
