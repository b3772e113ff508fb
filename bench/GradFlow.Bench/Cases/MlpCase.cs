using GradFlow.NN;
using GradFlow.Optim;

namespace GradFlow.Bench.Cases;

/// <summary>MLP 784-1024-1024-10 with ReLU, batch 128, cross entropy, SGD momentum 0.9; torch twin "mlp".</summary>
/// <param name="seed">The initialisation's seed (0: the torch twin's).</param>
/// <param name="optimizer">Another optimiser than the twin's (the curvature experiments), or null.</param>
internal sealed class MlpCase(int seed = 0, Func<IEnumerable<Tensor>, Optimizer>? optimizer = null) : TrainingCase
{
    private const int Batch = 128;
    private Sequential _model = null!;
    private readonly CrossEntropyLoss _lossFn = new();
    private Tensor _x = null!, _y = null!;

    public override string Name => "mlp";

    public override double FlopsPerStep => 3 * 2.0 * Batch * ((784 * 1024) + (1024 * 1024) + (1024 * 10));

    protected override (Module, Optimizer) Build()
    {
        var g = new Generator((ulong)seed);
        _model = new Sequential(new Linear(784, 1024, generator: g), new ReLU(), new Linear(1024, 1024, generator: g), new ReLU(),
            new Linear(1024, 10, generator: g));
        _x = BenchData.Wave(0, Batch, 784);
        _y = BenchData.Labels(Batch, 10);
        return (_model, optimizer?.Invoke(_model.Parameters()) ?? new SGD(_model.Parameters(), lr: 0.01, momentum: 0.9));
    }

    protected override Tensor Loss() => _lossFn.Call(_model.Call(_x), _y);

    internal override int BatchSize => Batch;

    protected override Tensor Loss(int examples) => _lossFn.Call(_model.Call(_x.Narrow(0, 0, examples)), _y.Narrow(0, 0, examples));
}
