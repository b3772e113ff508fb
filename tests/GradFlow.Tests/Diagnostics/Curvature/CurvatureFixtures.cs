using GradFlow.NN;
using GradFlow.Tests.Fixtures;

namespace GradFlow.Tests.Diagnostics.Curvature;

/// <summary>The models of tools/fixtures/make_curvature_fixtures.py with the fixture's weights and batch.</summary>
internal static class CurvatureFixtures
{
    public const string File = "curvature.json";

    public sealed record Model(FixtureCase Case, Sequential Net, Tensor X, Tensor Y)
    {
        public Tensor Loss() => Functional.CrossEntropy(Net.Call(X), Y);

        /// <summary>A vector stored per parameter under a prefix ("v0", "z3"), flattened in parameter order.</summary>
        public double[] Flat(string prefix) => [.. Net.NamedParameters().SelectMany(p => Case[$"{prefix}.{p.Name}"].ToDoubleArray())];

        public double Out(string key) => Case[$"out.{key}"].Item();
    }

    public static Model Load(string name)
    {
        var c = Fixture.Get(File, name);
        Sequential net = name == "mlp"
            ? new(new Linear(4, 8, dtype: DType.Float64), new Tanh(), new Linear(8, 3, dtype: DType.Float64))
            : new(new Conv2d(1, 2, 3, padding: 1), new ReLU(), new MaxPool2d(2), new Flatten(), new Linear(18, 3));
        net.LoadStateDict(net.NamedParameters().Select(p => KeyValuePair.Create(p.Name, c["param." + p.Name])));
        return new Model(c, net, c["in.x"], c["in.y"]);
    }
}
