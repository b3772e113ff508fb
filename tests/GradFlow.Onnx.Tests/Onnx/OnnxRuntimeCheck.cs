using GradFlow.NN;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace GradFlow.Onnx.Tests.Onnx;

/// <summary>Runs an ONNX model in ONNX Runtime and compares it with a GradFlow forward.</summary>
internal static class OnnxRuntimeCheck
{
    /// <summary>The model's output in ONNX Runtime for <paramref name="x"/> (float32 or int64).</summary>
    public static float[] Run(InferenceSession session, Tensor x)
    {
        var dims = x.Shape.ToArray();
        string input = session.InputMetadata.Keys.Single();
        NamedOnnxValue value = x.DType == DType.Int64
            ? NamedOnnxValue.CreateFromTensor(input, new DenseTensor<long>(x.ToArray<long>(), dims))
            : NamedOnnxValue.CreateFromTensor(input, new DenseTensor<float>(x.ToArray<float>(), dims));
        using var results = session.Run([value]);
        return [.. results.Single().AsTensor<float>()];
    }

    /// <summary>
    /// Exports <paramref name="model"/> (in eval mode) and checks ONNX Runtime against GradFlow at each batch
    /// size: the relative error ||ort - gradflow|| / ||gradflow|| at most <paramref name="tolerance"/>.
    /// </summary>
    public static byte[] Check(Module model, Func<int, Tensor> makeInput, int[] batches, double tolerance = 1e-5,
        [System.Runtime.CompilerServices.CallerMemberName] string name = "", int dynamicAxis = 0)
    {
        model.Eval();
        var sample = makeInput(batches[0]);
        var bytes = OnnxExporter.Export(model, sample.Shape.ToArray(), sample.DType, dynamicAxis);
        Keep(bytes, name);
        using var session = new InferenceSession(bytes);
        foreach (int batch in batches)
        {
            var x = makeInput(batch);
            Tensor expected;
            using (Autograd.NoGrad()) expected = model.Call(x);
            AssertRelative(expected, Run(session, x), tolerance, $"batch {batch} ({model.TypeName})");
        }
        return bytes;
    }

    /// <summary>Requires ||actual - expected|| / ||expected|| at most <paramref name="tolerance"/>.</summary>
    public static void AssertRelative(Tensor expected, float[] actual, double tolerance, string what)
    {
        var e = expected.ToArray<float>();
        Assert.Equal(e.Length, actual.Length);
        double diff = 0, norm = 0;
        for (int i = 0; i < e.Length; i++)
        {
            diff += (double)(e[i] - actual[i]) * (e[i] - actual[i]);
            norm += (double)e[i] * e[i];
        }
        double rel = Math.Sqrt(diff) / Math.Max(Math.Sqrt(norm), 1e-30);
        Assert.True(rel <= tolerance, $"{what}: relative error {rel:G3} > {tolerance:G3}");
    }

    // tools/onnx/check.sh sets this to collect every exported model for the onnx package's checker.
    private static void Keep(byte[] bytes, string name)
    {
        string? dir = Environment.GetEnvironmentVariable("GRADFLOW_ONNX_EXPORT_DIR");
        if (string.IsNullOrEmpty(dir)) return;
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, name + ".onnx");
        for (int i = 2; File.Exists(path); i++) path = Path.Combine(dir, $"{name}_{i}.onnx");
        File.WriteAllBytes(path, bytes);
    }
}
