using GradFlow.NN;
using GradFlow.Onnx;

namespace GradFlow.Bench.Cases;

/// <summary>
/// ONNX export or import of a 10M-parameter MLP (1024-4096-1024-1024-512-64, 40 MB of float32 weights), in memory:
/// the issue asks for well under a second each. No PyTorch twin (torch.onnx.export traces the model first, which is
/// another task); the figure stands alone in the table.
/// </summary>
internal sealed class OnnxCase(bool import) : IBenchCase
{
    private Sequential _model = null!;
    private byte[] _bytes = null!;

    public string Name => import ? "onnx_import_10m" : "onnx_export_10m";

    public double FlopsPerStep => 0;

    public void Setup()
    {
        var g = new Generator(0);
        _model = new Sequential(new Linear(1024, 4096, generator: g), new ReLU(), new Linear(4096, 1024, generator: g), new ReLU(),
            new Linear(1024, 1024, generator: g), new ReLU(), new Linear(1024, 512, generator: g), new ReLU(), new Linear(512, 64, generator: g));
        _model.Eval();
        _bytes = OnnxExporter.Export(_model, [1, 1024]);
    }

    public void Step()
    {
        if (import) OnnxImporter.Load(_bytes);
        else _bytes = OnnxExporter.Export(_model, [1, 1024]);
    }
}
