using System.Diagnostics;

namespace GradFlow.Bench;

/// <summary>
/// The cnn's conv2 GEMMs (64 filters, 32x3x3 taps, 11x11 outputs, batch 64) as the conv kernels run them, one
/// per image, against one GEMM over the whole batch's columns, alternated 60 rounds: what batching the im2col
/// could gain on the GEMMs alone (the batched layout would also need a strided unfold and a transposed output).
/// </summary>
internal static class ConvGemmProbe
{
    public static void Run()
    {
        const int m = 64, l = 121, k = 288, n = 64;
        var w = new float[m * k];
        var col = new float[k * l * n];
        var y = new float[m * l * n];
        var gen = new Generator(1);
        for (int i = 0; i < w.Length; i++) w[i] = (float)gen.NextNormal();
        for (int i = 0; i < col.Length; i++) col[i] = (float)gen.NextNormal();
        double Per()
        {
            long t = Stopwatch.GetTimestamp();
            for (int b = 0; b < n; b++)
                GradFlow.Kernels.GemmOf<float>.Run(false, false, m, l, k, 1f, w, k, col.AsSpan(b * k * l, k * l), l, 0f, y.AsSpan(b * m * l, m * l), l);
            return Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        }
        double Batched()
        {
            long t = Stopwatch.GetTimestamp();
            GradFlow.Kernels.GemmOf<float>.Run(false, false, m, l * n, k, 1f, w, k, col, l * n, 0f, y, l * n);
            return Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        }
        // weight-gradient shape: dW[m,k] += dy[m,l] col[k,l]^T
        var dw = new float[m * k];
        double PerW()
        {
            long t = Stopwatch.GetTimestamp();
            for (int b = 0; b < n; b++)
                GradFlow.Kernels.GemmOf<float>.Run(false, true, m, k, l, 1f, y.AsSpan(b * m * l, m * l), l, col.AsSpan(b * k * l, k * l), l, b > 0 ? 1f : 0f, dw, k);
            return Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        }
        double BatchedW()
        {
            long t = Stopwatch.GetTimestamp();
            GradFlow.Kernels.GemmOf<float>.Run(false, true, m, k, l * n, 1f, y, l * n, col, l * n, 0f, dw, k);
            return Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        }
        // input-gradient shape: dcol[k,l] = W^T[k,m] dy[m,l]
        double PerI()
        {
            long t = Stopwatch.GetTimestamp();
            for (int b = 0; b < n; b++)
                GradFlow.Kernels.GemmOf<float>.Run(true, false, k, l, m, 1f, w, k, y.AsSpan(b * m * l, m * l), l, 0f, col.AsSpan(b * k * l, k * l), l);
            return Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        }
        double BatchedI()
        {
            long t = Stopwatch.GetTimestamp();
            GradFlow.Kernels.GemmOf<float>.Run(true, false, k, l * n, m, 1f, w, k, y, l * n, 0f, col, l * n);
            return Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        }
        foreach (var (name, a, b) in new (string, Func<double>, Func<double>)[] { ("forward", Per, Batched), ("weight", PerW, BatchedW), ("input", PerI, BatchedI) })
        {
            for (int i = 0; i < 5; i++) { a(); b(); }
            var r = new List<double>();
            double sa = 0, sb = 0;
            for (int i = 0; i < 60; i++) { double x = a(), z = b(); r.Add(z / x); sa += x; sb += z; }
            r.Sort();
            Console.WriteLine($"conv2 {name}: per-image {sa / 60:F2} ms, batched {sb / 60:F2} ms, median batched/per {r[30]:F3}");
        }
    }
}
