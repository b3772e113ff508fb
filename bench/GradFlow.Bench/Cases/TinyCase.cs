using GradFlow.NN;
using GradFlow.Optim;

namespace GradFlow.Bench.Cases;

/// <summary>MLP 2-16-16-1 with Tanh, batch 1, MSE, plain SGD: per-op framework overhead; torch twin "tiny".</summary>
internal sealed class TinyCase : TrainingCase
{
    private Sequential _model = null!;
    private readonly MSELoss _lossFn = new();
    private Tensor _x = null!, _y = null!;

    public override string Name => "tiny";

    protected override (Module, Optimizer) Build()
    {
        var g = new Generator(0);
        _model = new Sequential(new Linear(2, 16, generator: g), new Tanh(), new Linear(16, 16, generator: g), new Tanh(),
            new Linear(16, 1, generator: g));
        _x = BenchData.Wave(0, 1, 2);
        _y = BenchData.Wave(1, 1, 1);
        return (_model, new SGD(_model.Parameters(), lr: 0.01));
    }

    protected override Tensor Loss() => _lossFn.Call(_model.Call(_x), _y);
}
