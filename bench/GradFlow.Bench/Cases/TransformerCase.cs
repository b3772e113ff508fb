using GradFlow.NN;
using GradFlow.Optim;

namespace GradFlow.Bench.Cases;

/// <summary>
/// One post-norm TransformerEncoderLayer (d 128, 4 heads, ff 512, ReLU, no dropout), batch 16 x seq 64
/// (batch first), mean over positions, Linear(128, 10), cross entropy, AdamW; torch twin "transformer".
/// </summary>
internal sealed class TransformerCase : TrainingCase
{
    private const int Batch = 16, Seq = 64, Model = 128, Ff = 512;
    private TransformerEncoderLayer _layer = null!;
    private Linear _head = null!;
    private readonly CrossEntropyLoss _lossFn = new();
    private Tensor _x = null!, _y = null!;

    public override string Name => "transformer";

    // in/out projections 4 d^2, feed-forward 2 d ff, attention scores and mix 2 seq d, per token; x3 for backward.
    public override double FlopsPerStep => 3 * 2.0 * Batch * Seq * ((4 * Model * Model) + (2 * Model * Ff) + (2 * Seq * Model));

    protected override (Module, Optimizer) Build()
    {
        var g = new Generator(0);
        _layer = new TransformerEncoderLayer(Model, 4, Ff, dropout: 0, batchFirst: true, generator: g);
        _head = new Linear(Model, 10, generator: g);
        var model = new Sequential(("encoder", (Module)_layer), ("head", _head));
        _x = BenchData.Wave(0, Batch, Seq, Model);
        _y = BenchData.Labels(Batch, 10);
        return (model, new AdamW(model.Parameters(), lr: 1e-3));
    }

    protected override Tensor Loss() => _lossFn.Call(_head.Call(_layer.Call(_x).Mean(1)), _y);
}
