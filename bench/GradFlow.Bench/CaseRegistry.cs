using GradFlow.Bench.Cases;

namespace GradFlow.Bench;

/// <summary>Every benchmark case, by name.</summary>
internal static class CaseRegistry
{
    public static IReadOnlyList<IBenchCase> All() =>
    [
        new GemmCase(1024),
        new GemmCase(256),
    ];
}
