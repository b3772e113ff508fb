namespace GradFlow.Tests.AutogradTests;

using Autograd = GradFlow.Autograd;

/// <summary>The engine's contract: what Backward accumulates, when it refuses, and what hooks, observers and scopes see.</summary>
public class AutogradBehaviourTests
{
    private static Tensor X(params float[] v) => Tensor.FromArray(v).RequireGrad();

    [Fact]
    public void BackwardOnScalar()
    {
        var x = X(1, -2, 3);
        (x * x).Sum().Backward();
        Assert.Equal(new float[] { 2, -4, 6 }, x.Grad!.ToArray<float>());
        Assert.False(x.Grad.RequiresGrad, "a plain backward gives a gradient outside the graph");
    }

    [Fact]
    public void NonScalarNeedsAGradient()
    {
        var x = Tensor.Ones([2, 3], DType.Float32, requiresGrad: true);
        var e = Assert.Throws<InvalidOperationException>(() => (x * 2.0).Backward());
        Assert.Contains("[2, 3]", e.Message);
        Assert.Contains("scalar", e.Message);
    }

    [Fact]
    public void ExplicitGradient()
    {
        var x = X(1, 2, 3);
        (x * 2.0).Backward(Tensor.FromArray(new float[] { 1, 10, 100 }));
        Assert.Equal(new float[] { 2, 20, 200 }, x.Grad!.ToArray<float>());
    }

    [Fact]
    public void ExplicitGradientOfWrongShapeIsRefused()
    {
        var x = X(1, 2, 3);
        var e = Assert.Throws<ArgumentException>(() => (x * 2.0).Backward(Tensor.Ones(2)));
        Assert.Contains("[2]", e.Message);
        Assert.Contains("[3]", e.Message);
    }

    [Fact]
    public void GradientsAccumulateOverBackwardCalls()
    {
        var x = X(1, 2);
        var y = (x * x).Sum();
        y.Backward(retainGraph: true);
        y.Backward();
        Assert.Equal(new float[] { 4, 8 }, x.Grad!.ToArray<float>());
    }

    [Fact]
    public void SecondBackwardWithoutRetainGraphIsAClearError()
    {
        var x = X(1, 2);
        var y = (x * x).Sum();
        y.Backward();
        var e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains("second time", e.Message);
        Assert.Contains("retainGraph", e.Message);
    }

    [Fact]
    public void DetachCutsTheGraph()
    {
        var x = X(1, 2, 3);
        var d = x.Detach();
        Assert.False(d.RequiresGrad);
        Assert.True(d.IsLeaf);
        (x * d).Sum().Backward();
        Assert.Equal(new float[] { 1, 2, 3 }, x.Grad!.ToArray<float>()); // not 2x: d is a constant
    }

    [Fact]
    public void NoGradRecordsNothingAndEnableGradNests()
    {
        var x = X(1, 2);
        using (Autograd.NoGrad())
        {
            var y = x * 2.0;
            Assert.Null(y.GradFn);
            Assert.False(y.RequiresGrad);
            Assert.False(Autograd.IsGradEnabled);
            using (Autograd.EnableGrad())
            {
                Assert.NotNull((x * 2.0).GradFn);
            }
            Assert.False(Autograd.IsGradEnabled);
        }
        Assert.True(Autograd.IsGradEnabled);
        Assert.NotNull((x * 2.0).GradFn);
    }

    [Fact]
    public void LeafAndNonLeaf()
    {
        var x = X(1, 2);
        var y = x * 2.0;
        Assert.True(x.IsLeaf);
        Assert.False(y.IsLeaf);
        Assert.True(y.RequiresGrad);
        Assert.Equal("ScaleBackward", y.GradFn!.Name);
        var e = Assert.Throws<InvalidOperationException>(() => y.RequiresGrad = false);
        Assert.Contains("leaf", e.Message);
        Assert.Throws<InvalidOperationException>(() => Tensor.FromArray(new long[] { 1 }).RequireGrad());
    }

    [Fact]
    public void RetainGradKeepsANonLeafGradient()
    {
        var x = X(1, 2);
        var h = x * 3.0;
        var k = x * 4.0;
        h.RetainGrad();
        Assert.True(h.RetainsGrad);
        (h * h + k).Sum().Backward();
        Assert.Equal(new float[] { 6, 12 }, h.Grad!.ToArray<float>());
        Assert.Null(k.Grad);
    }

    [Fact]
    public void HookOnLeafSeesAndReplacesTheGradient()
    {
        var x = X(1, 2);
        Tensor? seen = null;
        using (x.RegisterHook(g => { seen = g; return g * 10.0; }))
        {
            (x * x).Sum().Backward();
        }
        Assert.Equal(new float[] { 2, 4 }, seen!.ToArray<float>());
        Assert.Equal(new float[] { 20, 40 }, x.Grad!.ToArray<float>());
        x.Grad = null;
        seen = null;
        (x * x).Sum().Backward();
        Assert.Null(seen);
        Assert.Equal(new float[] { 2, 4 }, x.Grad!.ToArray<float>());
    }

    [Fact]
    public void HookOnNonLeafChangesWhatFlowsOn()
    {
        var x = X(1, 2);
        var h = x * 3.0;
        var handle = h.RegisterHook(g => Tensor.OnesLike(g));
        (h * h).Sum().Backward(retainGraph: true);
        Assert.Equal(new float[] { 3, 3 }, x.Grad!.ToArray<float>());
        handle.Dispose();
        x.Grad = null;
        var y = (h * h).Sum();
        y.Backward();
        Assert.Equal(new float[] { 18, 36 }, x.Grad!.ToArray<float>());
    }

    [Fact]
    public void HookReturningNullKeepsTheGradient()
    {
        var x = X(1, 2);
        int calls = 0;
        using var _ = x.RegisterHook(g => { calls++; return null; });
        (x * 5.0).Sum().Backward();
        Assert.Equal(1, calls);
        Assert.Equal(new float[] { 5, 5 }, x.Grad!.ToArray<float>());
    }

    private sealed class Recorder : IAutogradObserver
    {
        private readonly int _thread = Environment.CurrentManagedThreadId; // observers are global; tests run in parallel
        public readonly List<string> Forward = [];
        public readonly List<(string Node, int Grads)> Backward = [];

        public void OnForward(string op, ReadOnlySpan<Tensor> inputs, Tensor output, Node? node)
        {
            if (Environment.CurrentManagedThreadId == _thread) Forward.Add(op + (node is null ? "" : ":" + node.Name));
        }

        public void OnBackward(Node node, ReadOnlySpan<Tensor?> gradOutputs, ReadOnlySpan<Tensor?> gradInputs)
        {
            if (Environment.CurrentManagedThreadId != _thread) return;
            Assert.True(gradOutputs[0] is not null, $"{node.Name} ran with no gradient");
            Backward.Add((node.Name, gradInputs.Length));
        }
    }

    [Fact]
    public void ObserverSeesEveryOpAndEveryBackwardNode()
    {
        var r = new Recorder();
        var x = X(1, 2);
        List<string> forward;
        using (Autograd.AddObserver(r))
        {
            var y = (x * x).Exp().Sum();
            using (Autograd.NoGrad()) _ = x + 1.0;
            forward = [.. r.Forward]; // backward formulas are tensor ops too, and observers see them (with no node)
            y.Backward();
        }
        int seen = r.Forward.Count;
        _ = x * 2.0;
        Assert.Equal(seen, r.Forward.Count);
        Assert.Equal(["Mul:MulBackward", "Exp:ExpBackward", "Sum:SumBackward", "Add"], forward);
        Assert.Equal(["SumBackward", "ExpBackward", "MulBackward", "AccumulateGrad"], r.Backward.Select(b => b.Node));
        Assert.Equal(2, r.Backward.Single(b => b.Node == "MulBackward").Grads);
    }

    [Fact]
    public void InPlaceChangeOfASavedTensorIsReportedAtBackward()
    {
        var w = X(1, 2);
        var x = Tensor.FromArray(new float[] { 3, 4 });
        var y = (w * x).Sum();
        x.MulInPlace(2);
        var e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains("in-place", e.Message);
        Assert.Contains("version", e.Message);
        Assert.Contains("MulBackward", e.Message);
    }

    [Fact]
    public void InPlaceOnALeafThatRequiresGradIsRefusedInGradMode()
    {
        var w = X(1, 2);
        var e = Assert.Throws<InvalidOperationException>(() => w.AddInPlace(1.0));
        Assert.Contains("requires grad", e.Message);
        using (Autograd.NoGrad()) w.AddInPlace(1.0);
        Assert.Equal(new float[] { 2, 3 }, w.ToArray<float>());
    }

    [Fact]
    public void GradLeavesGradUntouchedAndReportsUnused()
    {
        var x = X(1, 2);
        var u = X(5);
        var y = (x * x).Sum();
        var g = Autograd.Grad([y], [x, u], allowUnused: true, retainGraph: true);
        Assert.Equal(new float[] { 2, 4 }, g[0]!.ToArray<float>());
        Assert.Null(g[1]);
        Assert.Null(x.Grad);
        var e = Assert.Throws<InvalidOperationException>(() => Autograd.Grad([y], [x, u]));
        Assert.Contains("allowUnused", e.Message);
    }

    [Fact]
    public void HessianVectorProductOfCubeSum()
    {
        var x = Tensor.FromArray(new double[] { 1, -2, 0.5 }).RequireGrad();
        var v = Tensor.FromArray(new double[] { 0.3, 1, -2 });
        var g = Autograd.Grad(x.Pow(3).Sum(), x, createGraph: true);
        Assert.True(g.RequiresGrad, "createGraph records the backward");
        var hv = Autograd.Grad((g * v).Sum(), x);
        TestUtil.Close([6 * 1 * 0.3, 6 * -2 * 1.0, 6 * 0.5 * -2], hv.ToArray<double>(), 1e-12, 1e-12);
    }

    [Fact]
    public void DeepChainDoesNotOverflowTheStack()
    {
        // A small stack makes any recursion over the graph (discovery, backward, release) fail loudly.
        Exception? error = null;
        float[]? grad = null;
        var thread = new Thread(() =>
        {
            try
            {
                var x = X(0.5f);
                var y = x;
                for (int i = 0; i < 10_000; i++) y = y * 1.0001 + 0.0;
                y.Sum().Backward();
                grad = x.Grad!.ToArray<float>();
            }
            catch (Exception e) { error = e; }
        }, maxStackSize: 256 * 1024);
        thread.Start();
        thread.Join();
        Assert.Null(error);
        Assert.Equal(Math.Pow(1.0001, 10_000), grad![0], 1e-2);
    }

    [Fact]
    public void ScopeNamesAreRecordedInNodes()
    {
        var x = X(1, 2);
        Tensor inner, outer;
        using (Autograd.Scope("encoder.layers.0"))
        {
            inner = x * 2.0;
            using (Autograd.Scope("encoder.layers.0.linear1")) outer = inner.Exp();
            Assert.Equal("encoder.layers.0", Autograd.CurrentScope);
        }
        Assert.Null(Autograd.CurrentScope);
        Assert.Equal("encoder.layers.0", inner.GradFn!.Scope);
        Assert.Equal("encoder.layers.0.linear1", outer.GradFn!.Scope);
        Assert.Null((x * 2.0).GradFn!.Scope);
    }

    [Fact]
    public void AccumulatingAfterACreateGraphBackward()
    {
        // createGraph stores the incoming gradient itself (here a stride-0 view from Sum's backward); a later
        // backward must not add into that view in place.
        var x = X(1, 2, 3);
        var y = x.Sum();
        y.Backward(retainGraph: true, createGraph: true);
        y.Backward();
        Assert.Equal(new float[] { 2, 2, 2 }, x.Grad!.ToArray<float>());
    }
}
