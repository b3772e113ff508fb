using GradFlow.NN;

namespace GradFlow.Tests.NN;

public class ModuleTests
{
    private sealed class Block : Module
    {
        public Block()
        {
            Encoder = RegisterModule("encoder", new Sequential(new Linear(3, 4), new ReLU()));
            Head = RegisterModule("head", new Linear(4, 2));
            Scale = RegisterBuffer("scale", Tensor.Ones(2));
        }

        public Sequential Encoder { get; }
        public Linear Head { get; }
        public Tensor Scale { get; }

        public override Tensor Forward(Tensor input) => Head.Call(Encoder.Call(input)) * Scale;
    }

    [Fact]
    public void NamesAreStateDictKeysInPyTorchOrder()
    {
        var m = new Block();
        Assert.Equal(["encoder.0.weight", "encoder.0.bias", "head.weight", "head.bias"], m.NamedParameters().Select(p => p.Name));
        Assert.Equal(["scale", "encoder.0.weight", "encoder.0.bias", "head.weight", "head.bias"], m.StateDict().Keys);
        Assert.Equal(["", "encoder", "encoder.0", "encoder.1", "head"], m.NamedModules().Select(x => x.Name));
        Assert.Equal("encoder.0", m.Encoder[0].Path);
        Assert.Equal("", m.Path);
        Assert.Equal(4 * 3 + 4 + 2 * 4 + 2, m.ParameterCount());
        Assert.All(m.Parameters(), p => Assert.True(p.RequiresGrad));
    }

    [Fact]
    public void LoadStateDictCopiesInPlaceAndReportsProblems()
    {
        var a = new Block();
        var b = new Block();
        var weight = b.Head.Weight;
        b.LoadStateDict(a.StateDict());
        Assert.Same(weight, b.Head.Weight);
        Assert.Equal(a.Head.Weight.ToDoubleArray(), b.Head.Weight.ToDoubleArray());

        var sd = a.StateDict();
        sd.Remove("head.bias");
        sd["extra.weight"] = Tensor.Zeros(1);
        sd["head.weight"] = Tensor.Zeros(3, 4);
        var ex = Assert.Throws<ArgumentException>(() => b.LoadStateDict(sd));
        Assert.Contains("'head.weight': expected shape [2, 4], got [3, 4]", ex.Message);
        Assert.Contains("Missing keys: head.bias", ex.Message);
        Assert.Contains("Unexpected keys: extra.weight", ex.Message);

        sd["head.weight"] = Tensor.Zeros(2, 4);
        var result = b.LoadStateDict(sd, strict: false);
        Assert.Equal(["head.bias"], result.MissingKeys);
        Assert.Equal(["extra.weight"], result.UnexpectedKeys);
        Assert.All(b.Head.Weight.ToDoubleArray(), v => Assert.Equal(0.0, v));
    }

    [Fact]
    public void TrainEvalApplyAndZeroGrad()
    {
        var m = new Block();
        m.Eval();
        Assert.All(m.Modules(), x => Assert.False(x.Training));
        m.Train();
        Assert.All(m.Modules(), x => Assert.True(x.Training));
        var visited = new List<string>();
        m.Apply(x => visited.Add(x.Path));
        Assert.Equal(["encoder.0", "encoder.1", "encoder", "head", ""], visited);

        m.Call(Tensor.Ones(2, 3)).Sum().Backward();
        Assert.All(m.Parameters(), p => Assert.NotNull(p.Grad));
        m.ZeroGrad(setToNone: false);
        Assert.All(m.Parameters(), p => Assert.All(p.Grad!.ToDoubleArray(), g => Assert.Equal(0.0, g)));
        m.ZeroGrad();
        Assert.All(m.Parameters(), p => Assert.Null(p.Grad));
    }

    [Fact]
    public void OpsRecordTheModulePathAsScope()
    {
        var m = new Block();
        var y = m.Call(Tensor.Ones(2, 3));
        var scopes = new HashSet<string?>();
        var stack = new Stack<Node>([y.GradFn!]);
        while (stack.Count > 0)
        {
            var n = stack.Pop();
            scopes.Add(n.Scope);
            foreach (var e in n.NextEdges) if (e.Function is { } f and not AccumulateGrad) stack.Push(f);
        }
        Assert.Contains("encoder.0", scopes);
        Assert.Contains("encoder.1", scopes);
        Assert.Contains("head", scopes);
        Assert.Contains("", scopes);
    }

    [Fact]
    public void ForwardHooksSeeAndReplace()
    {
        var lin = new Linear(3, 2, generator: new Generator(3));
        Tensor[]? seenIn = null, seenOut = null;
        using (lin.RegisterForwardPreHook((_, xs) => [xs[0] * 2.0]))
        using (lin.RegisterForwardHook((_, xs, ys) => { seenIn = xs; seenOut = ys; return [ys[0] + 1.0]; }))
        {
            var x = Tensor.Ones(1, 3);
            var y = lin.Call(x);
            Assert.Equal(2.0, seenIn![0].GetFlat(0));
            Assert.Equal(seenOut![0].GetFlat(0) + 1, y.GetFlat(0), 6);
            Fixtures.Fixture.AssertClose(Functional.Linear(x * 2.0, lin.Weight, lin.Bias) + 1.0, y, "hooked");
        }
        var plain = lin.Call(Tensor.Ones(1, 3));
        Fixtures.Fixture.AssertClose(Functional.Linear(Tensor.Ones(1, 3), lin.Weight, lin.Bias), plain, "hooks removed");
    }

    [Fact]
    public void FullBackwardHookSeesInputAndOutputGradientsAndMayReplace()
    {
        var lin = new Linear(3, 2, dtype: DType.Float64);
        var x = Tensor.Randn([4, 3], DType.Float64, new Generator(1), requiresGrad: true);
        Tensor?[]? gin = null, gout = null;
        using (lin.RegisterFullBackwardHook((_, gi, go) => { gin = gi; gout = go; return [gi[0]! * 0.0]; }))
        {
            var y = lin.Call(x);
            var gy = Tensor.Randn([4, 2], DType.Float64, new Generator(2));
            y.Backward(gy);
            Fixtures.Fixture.AssertClose(gy, gout![0]!, "grad output");
            Fixtures.Fixture.AssertClose(gy.MatMul(lin.Weight.Detach()), gin![0]!, "grad input");
            Assert.All(x.Grad!.ToDoubleArray(), g => Assert.Equal(0.0, g)); // replaced by the hook
            Assert.NotNull(lin.Weight.Grad);
        }
        // With a data input that needs no gradient the hook still runs, with a null input gradient.
        bool called = false;
        using (lin.RegisterFullBackwardHook((_, gi, go) => { called = gi[0] is null && go[0] is not null; return null; }))
            lin.Call(Tensor.Ones([1, 3], DType.Float64)).Sum().Backward();
        Assert.True(called);
    }

    [Fact]
    public void ToStringIsPyTorchLikeTreeWithCounts()
    {
        var s = new Block().ToString();
        Assert.Contains("Block(  # 26 params", s);
        Assert.Contains("  (encoder): Sequential(  # 16 params", s);
        Assert.Contains("    (0): Linear(in_features=3, out_features=4, bias=True)  # 16 params", s);
        Assert.Contains("    (1): ReLU()", s);
        Assert.Contains("  (head): Linear(in_features=4, out_features=2, bias=True)  # 10 params", s);
    }

    [Fact]
    public void ContainersIndexAndName()
    {
        var list = new ModuleList(new Linear(2, 2), new ReLU());
        Assert.Equal(2, list.Count);
        Assert.IsType<ReLU>(list[-1]);
        Assert.Throws<NotSupportedException>(() => list.Call(Tensor.Zeros(1, 2)));
        var dict = new ModuleDict { { "proj", new Linear(2, 3) }, { "act", new GELU() } };
        Assert.Equal(["proj.weight", "proj.bias"], dict.StateDict().Keys);
        Assert.IsType<GELU>(dict["act"]);
        var res = new Residual(new Linear(3, 3));
        Assert.Equal(["inner.weight", "inner.bias"], res.StateDict().Keys);
        var x = Tensor.Ones(2, 3);
        Fixtures.Fixture.AssertClose(x + res.Inner.Call(x), res.Call(x), "residual");
        Assert.Throws<ArgumentException>(() => new Residual(new Linear(3, 2)).Call(x));
        Assert.Throws<ArgumentException>(() => new Sequential().RegisterModule("a.b", new ReLU()));
    }

    [Fact]
    public void MlpTrainsOnATinyProblem()
    {
        var gen = new Generator(3);
        var net = new Sequential(new Linear(2, 16, generator: gen), new Tanh(), new Linear(16, 2, generator: gen));
        var x = Tensor.Randn([64, 2], DType.Float32, gen);
        var labels = x.Select(1, 0).Mul(x.Select(1, 1)).Gt(0.0).To(DType.Int64);
        var lossFn = new CrossEntropyLoss();
        double first = 0, last = 0;
        for (int step = 0; step < 300; step++)
        {
            net.ZeroGrad();
            var loss = lossFn.Call(net.Call(x), labels);
            loss.Backward();
            using (global::GradFlow.Autograd.NoGrad())
                foreach (var p in net.Parameters()) p.SubInPlace(p.Grad! * 0.5);
            if (step == 0) first = loss.Item();
            last = loss.Item();
        }
        Assert.True(last < first * 0.5, $"loss went from {first} to {last}");
    }
}
