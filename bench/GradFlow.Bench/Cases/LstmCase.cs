using GradFlow.NN;
using GradFlow.Optim;

namespace GradFlow.Bench.Cases;

/// <summary>LSTM(128 -> 256) over 35 steps of batch 32, Linear(256, 10) on the last step, cross entropy, Adam; torch twin "lstm".</summary>
internal sealed class LstmCase : TrainingCase
{
    private const int Steps = 35, Batch = 32, Input = 128, Hidden = 256;
    private LSTM _lstm = null!;
    private Linear _head = null!;
    private readonly CrossEntropyLoss _lossFn = new();
    private Tensor _x = null!, _y = null!;

    public override string Name => "lstm";

    public override double FlopsPerStep => 3 * 2.0 * Steps * Batch * 4 * Hidden * (Input + Hidden);

    protected override (Module, Optimizer) Build()
    {
        var g = new Generator(0);
        _lstm = new LSTM(Input, Hidden, generator: g);
        _head = new Linear(Hidden, 10, generator: g);
        var model = new Sequential(("lstm", (Module)_lstm), ("head", _head));
        _x = BenchData.Wave(0, Steps, Batch, Input);
        _y = BenchData.Labels(Batch, 10);
        return (model, new Adam(model.Parameters(), lr: 1e-3));
    }

    protected override Tensor Loss()
    {
        var output = _lstm.Call(_x); // (steps, batch, hidden)
        return _lossFn.Call(_head.Call(output.Select(0, Steps - 1)), _y);
    }
}
