using GradFlow.Bench.Cases;

namespace GradFlow.Bench;

/// <summary>Every benchmark case, by name.</summary>
internal static class CaseRegistry
{
    public static IReadOnlyList<IBenchCase> All() =>
    [
        new GemmCase(1024),
        new GemmCase(256),
        new MlpCase(),
        new TinyCase(),
        new DeepSigmoidCase(),
        new CnnCase(),
        new LstmCase(),
        new TransformerCase(),
        new MonitorCase(new MlpCase()),
        new MonitorCase(new DeepSigmoidCase()),
        new MonitorCase(new CnnCase()),
        new MonitorCase(new LstmCase()),
        new HvpCase(new MlpCase()),
        new HvpCase(new CnnCase()),
        new HvpKeptCase(new MlpCase()),
        new HvpKeptCase(new CnnCase()),
        new OnnxCase(import: false),
        new OnnxCase(import: true),
    ];
}
