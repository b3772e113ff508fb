using GradFlow.NN;
using GradFlow.Optim;
using GradFlow.Tests.Fixtures;

namespace GradFlow.Tests.NN;

public class ModuleRegistrationTests
{
    // The C# twin of Net in tools/fixtures/make_module_fixtures.py: nothing is registered by hand.
    private sealed class Block : Module
    {
        private readonly Linear _lin = new(8, 8);
        private readonly LayerNorm _norm = new(8);

        public override Tensor Forward(Tensor input) => _norm.Call(_lin.Call(input).Relu());
    }

    private sealed class Net : Module
    {
        private readonly Linear stem = new(6, 8);
        private readonly List<Block> blocks = [new(), new()];
        private readonly Dictionary<string, Linear> heads = new() { ["a"] = new(8, 2), ["b"] = new(8, 3) };

        public Net() => Scale = Tensor.Randn([5], requiresGrad: true);

        // A property: registered under its own name. PyTorch assigns it last, yet a module's own parameters come first in both.
        public Tensor Scale { get; }

        public override Tensor Forward(Tensor input)
        {
            var h = stem.Call(input);
            foreach (var b in blocks) h = b.Call(h);
            return Tensor.Cat([heads["a"].Call(h), heads["b"].Call(h)], dim: 1) * Scale;
        }
    }

    [Fact]
    public void StateDictKeysAndValuesMatchPyTorchsForTheSameModel()
    {
        var c = Fixture.Get("modules.json", "net");
        var expected = c.Params.GetProperty("keys").EnumerateArray().Select(k => k.GetString()!).ToArray();
        // PyTorch's key is "scale"; the C# property is "Scale": rename through the one place a user would.
        var model = new Net();
        var keys = model.StateDict().Keys.Select(k => k == "Scale" ? "scale" : k).ToArray();
        Assert.Equal(expected, keys);
        var state = expected.ToDictionary(k => k == "scale" ? "Scale" : k, k => c["param." + k]);
        model.LoadStateDict(state);
        Fixture.AssertClose(c["out.y"], model.Call(c["in.x"]), "net");
    }

    [Fact]
    public void ContainersBecomeModuleListAndModuleDictInTheTree()
    {
        var model = new Net();
        var tree = model.ToString();
        Assert.Contains("(blocks): ModuleList(", tree);
        Assert.Contains("(heads): ModuleDict(", tree);
        Assert.Equal(["", "stem", "blocks", "blocks.0", "blocks.0.lin", "blocks.0.norm", "blocks.1", "blocks.1.lin", "blocks.1.norm", "heads", "heads.a", "heads.b"],
            model.NamedModules().Select(m => m.Name));
        var lin = (Linear)model.NamedModules().First(m => m.Name == "blocks.1.lin").Module;
        Assert.Equal("blocks.1.lin", lin.Path);
    }

    [Fact]
    public void TheFirstCallRegistersSoScopesNameTheLayers()
    {
        var model = new Net();
        var y = model.Call(Tensor.Randn(2, 6));
        Assert.NotNull(y.GradFn);
        Assert.Equal("", model.Path);
        Assert.Equal(15, model.NamedParameters().Count());
    }

    private sealed class Explicit : Module
    {
        private readonly Linear _a;
        private readonly Linear _b = new(2, 2);

        public Explicit() => _a = RegisterModule("first", new Linear(2, 2));

        public Linear A => _a;
        public Linear B => _b;

        public override Tensor Forward(Tensor input) => _b.Call(_a.Call(input));
    }

    [Fact]
    public void ExplicitRegistrationWinsAndNothingIsRegisteredTwice()
    {
        var m = new Explicit();
        Assert.Equal(["first.weight", "first.bias", "b.weight", "b.bias"], m.StateDict().Keys);
        Assert.Equal(["first.weight", "first.bias", "b.weight", "b.bias"], m.StateDict().Keys); // a second scan adds nothing
        Assert.Equal(2, m.Children().Count());
    }

    private sealed class Holder : Module
    {
        public Linear? Late;
        public readonly List<Linear> Growing = [];
        public Tensor Data = Tensor.Ones(3);
        public Tensor[] Weights = [Tensor.Ones([2], DType.Float32, requiresGrad: true), Tensor.Zeros([2], DType.Float32, requiresGrad: true)];
    }

    [Fact]
    public void FieldsAssignedLaterAndItemsAddedLaterAreFoundOnTheNextWalk()
    {
        var m = new Holder();
        Assert.Equal(["Weights.0", "Weights.1"], m.StateDict().Keys);
        m.Late = new Linear(1, 1);
        m.Growing.Add(new Linear(1, 2));
        // The (empty) list was registered in declaration order at the first walk; the late field comes after.
        Assert.Equal(["Growing.0.weight", "Growing.0.bias", "Weights.0", "Weights.1", "Late.weight", "Late.bias"], m.StateDict().Keys);
        m.Growing.Add(new Linear(2, 1));
        Assert.Contains("Growing.1.weight", m.StateDict().Keys);
    }

    [Fact]
    public void TensorsThatDoNotRequireGradAndBackReferencesAreNotRegistered()
    {
        Assert.DoesNotContain(new Holder().StateDict().Keys, k => k.StartsWith("Data", StringComparison.Ordinal));
        // A child that keeps its parent in a field: the parent is not made its own grandchild.
        var p = new Cyclic();
        Assert.Equal(["", "child"], p.NamedModules().Select(x => x.Name));
        Assert.Equal("child", p.Child.Path);
    }

    private sealed class Cyclic : Module
    {
        private readonly Back child;

        public Cyclic() => child = new Back(this);

        public Back Child => child;
    }

    private sealed class Back(Module owner) : Module
    {
        public Module Owner { get; } = owner;
    }

    private sealed class Forgotten : Module
    {
        public int Width = 3;
    }

    [Fact]
    public void AnOptimiserGivenNoParametersNamesTheModel()
    {
        var ex = Assert.Throws<ArgumentException>(() => new Adam(new Forgotten().Parameters()));
        Assert.Contains("Forgotten.Parameters() is empty", ex.Message);
        Assert.Contains("Adam", ex.Message);
        Assert.Throws<ArgumentException>(() => new SGD(Array.Empty<Tensor>(), lr: 0.1));
    }

    [Fact]
    public void TrainingAModelWithAutomaticRegistrationMovesEveryParameter()
    {
        var model = new Net();
        var before = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.ToDoubleArray());
        var opt = new SGD(model.Parameters(), lr: 0.1);
        var loss = model.Call(Tensor.Randn(4, 6)).Pow(2).Sum();
        loss.Backward();
        opt.Step();
        foreach (var (name, p) in model.NamedParameters())
            Assert.False(before[name].SequenceEqual(p.ToDoubleArray()), $"{name} did not move");
    }
}
