using GradFlow.NN;
using GradFlow.Optim;

namespace GradFlow.Bench.Cases;

/// <summary>
/// Conv2d(1,32,3) ReLU MaxPool2 Conv2d(32,64,3) ReLU MaxPool2 Flatten Linear(1600,128) ReLU Linear(128,10);
/// batch 64 of 1x28x28, cross entropy, Adam; torch twin "cnn".
/// </summary>
/// <param name="seed">The initialisation's seed (0: the torch twin's).</param>
/// <param name="optimizer">Another optimiser than the twin's (the curvature experiments), or null.</param>
internal sealed class CnnCase(int seed = 0, Func<IEnumerable<Tensor>, Optimizer>? optimizer = null) : TrainingCase
{
    private const int Batch = 64;
    private Sequential _model = null!;
    private readonly CrossEntropyLoss _lossFn = new();
    private Tensor _x = null!, _y = null!;

    public override string Name => "cnn";

    // conv1 26x26x32x9, conv2 11x11x64x(32x9), fc 1600x128 + 128x10; forward + two backward products.
    public override double FlopsPerStep => 3 * 2.0 * Batch * ((26 * 26 * 32 * 9) + (11 * 11 * 64 * 32 * 9) + (1600 * 128) + (128 * 10));

    protected override (Module, Optimizer) Build()
    {
        var g = new Generator((ulong)seed);
        _model = new Sequential(
            new Conv2d(1, 32, 3, generator: g), new ReLU(), new MaxPool2d(2),
            new Conv2d(32, 64, 3, generator: g), new ReLU(), new MaxPool2d(2),
            new Flatten(), new Linear(1600, 128, generator: g), new ReLU(), new Linear(128, 10, generator: g));
        _x = BenchData.Wave(0, Batch, 1, 28, 28);
        _y = BenchData.Labels(Batch, 10);
        return (_model, optimizer?.Invoke(_model.Parameters()) ?? new Adam(_model.Parameters(), lr: 1e-3));
    }

    protected override Tensor Loss() => _lossFn.Call(_model.Call(_x), _y);

    internal override int BatchSize => Batch;

    protected override Tensor Loss(int examples) => _lossFn.Call(_model.Call(_x.Narrow(0, 0, examples)), _y.Narrow(0, 0, examples));
}
