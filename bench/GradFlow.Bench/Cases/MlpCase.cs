using GradFlow.NN;
using GradFlow.Optim;

namespace GradFlow.Bench.Cases;

/// <summary>MLP 784-1024-1024-10 with ReLU, batch 128, cross entropy, SGD momentum 0.9; torch twin "mlp".</summary>
internal sealed class MlpCase : TrainingCase
{
    private const int Batch = 128;
    private Sequential _model = null!;
    private readonly CrossEntropyLoss _lossFn = new();
    private Tensor _x = null!, _y = null!;

    public override string Name => "mlp";

    public override double FlopsPerStep => 3 * 2.0 * Batch * ((784 * 1024) + (1024 * 1024) + (1024 * 10));

    protected override (Module, Optimizer) Build()
    {
        var g = new Generator(0);
        _model = new Sequential(new Linear(784, 1024, generator: g), new ReLU(), new Linear(1024, 1024, generator: g), new ReLU(),
            new Linear(1024, 10, generator: g));
        _x = BenchData.Wave(0, Batch, 784);
        _y = BenchData.Labels(Batch, 10);
        return (_model, new SGD(_model.Parameters(), lr: 0.01, momentum: 0.9));
    }

    protected override Tensor Loss() => _lossFn.Call(_model.Call(_x), _y);

    internal override int BatchSize => Batch;

    protected override Tensor Loss(int examples) => _lossFn.Call(_model.Call(_x.Narrow(0, 0, examples)), _y.Narrow(0, 0, examples));
}
