using GradFlow.NN;
using GradFlow.Optim;

namespace GradFlow.Bench.Cases;

/// <summary>20 x (Linear to 256, Sigmoid) from 784, then Linear(256, 10); batch 128, cross entropy, SGD; torch twin "deep_sigmoid".</summary>
internal sealed class DeepSigmoidCase : TrainingCase
{
    private const int Batch = 128, Depth = 20, Width = 256;
    private Sequential _model = null!;
    private readonly CrossEntropyLoss _lossFn = new();
    private Tensor _x = null!, _y = null!;

    public override string Name => "deep_sigmoid";

    public override double FlopsPerStep => 3 * 2.0 * Batch * ((784 * Width) + ((Depth - 1) * Width * Width) + (Width * 10));

    protected override (Module, Optimizer) Build()
    {
        var g = new Generator(0);
        _model = new Sequential();
        for (int i = 0; i < Depth; i++)
        {
            _model.Add(new Linear(i == 0 ? 784 : Width, Width, generator: g));
            _model.Add(new Sigmoid());
        }
        _model.Add(new Linear(Width, 10, generator: g));
        _x = BenchData.Wave(0, Batch, 784);
        _y = BenchData.Labels(Batch, 10);
        return (_model, new SGD(_model.Parameters(), lr: 0.01));
    }

    protected override Tensor Loss() => _lossFn.Call(_model.Call(_x), _y);
}
