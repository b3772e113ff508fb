namespace GradFlow.Tests.Tensors;

public class TensorArenaTests
{
    private static (Tensor W1, Tensor W2) Params(Generator g) =>
        (Tensor.Randn([64, 256], DType.Float32, g).Mul(0.1).Detach().RequireGrad(), Tensor.Randn([256, 10], DType.Float32, g).Mul(0.1).Detach().RequireGrad());

    private static Tensor Loss(Tensor x, Tensor w1, Tensor w2) => x.MatMul(w1).Relu().MatMul(w2).LogSoftmax(1).Mean().Neg();

    private static void SgdStep(params Tensor[] ps)
    {
        using var _ = Autograd.NoGrad();
        foreach (var p in ps) p.AddInPlace(p.Grad!, -0.01);
    }

    [Fact]
    public void SteadyStateStepsReuseBuffersAndAllocateLittle()
    {
        var g = new Generator(1);
        var (w1, w2) = Params(g);
        var x = Tensor.Randn([128, 64], DType.Float32, g);
        var arena = new TensorArena();
        void Step()
        {
            using (arena.Step())
            {
                w1.Grad = null; w2.Grad = null;
                Loss(x, w1, w2).Backward();
                SgdStep(w1, w2);
            }
        }
        for (int i = 0; i < 3; i++) Step();
        // The step's tensors hold 128x256 and 128x10 floats several times over (~1 MB); what remains is the
        // small bookkeeping objects (tensors, nodes, shapes) and the two fresh Grad buffers (~66 KB).
        var (steady, seen) = TestUtil.SteadyAllocation(Step, limit: 200_000);
        Assert.True(steady < 200_000, $"steady-state steps allocated {string.Join(", ", seen)} bytes");
        Assert.True(arena.PooledBytes > 500_000, $"pooled {arena.PooledBytes} bytes");
        Assert.NotNull(w1.Grad);
        Assert.True(double.IsFinite(w1.Grad!.Norm().Item()));
    }

    [Fact]
    public void ZeroGradGivesAdoptedGradientsBackToTheArena()
    {
        var g = new Generator(2);
        var (w1, w2) = Params(g);
        var x = Tensor.Randn([128, 64], DType.Float32, g);
        var optimizer = new GradFlow.Optim.SGD([w1, w2], lr: 0.01);
        var arena = new TensorArena();
        void Step()
        {
            using (arena.Step())
            {
                optimizer.ZeroGrad();
                Loss(x, w1, w2).Backward();
                optimizer.Step();
            }
        }
        for (int i = 0; i < 3; i++) Step();
        var dropped = w1.Grad!;
        // The 64x256 and 256x10 gradients (75 KB) come from the arena now, not from the heap.
        var (steady, seen) = TestUtil.SteadyAllocation(Step, limit: 40_000);
        Assert.True(steady < 40_000, $"steady-state steps allocated {string.Join(", ", seen)} bytes");
        Assert.Throws<ObjectDisposedException>(() => dropped.Sum());

        // A gradient the user set is never reclaimed.
        var own = Tensor.OnesLike(w1);
        w1.Grad = own;
        optimizer.ZeroGrad();
        Assert.Equal(64 * 256, own.Sum().Item());
    }

    [Fact]
    public void ReadingARecycledTensorThrowsAndKeptTensorsSurvive()
    {
        var w = Tensor.Randn([4, 4], requiresGrad: true);
        var arena = new TensorArena();
        Tensor y, kept;
        using (arena.Step())
        {
            y = w.Exp();
            kept = TensorArena.Keep(w.Tanh());
        }
        var e = Assert.Throws<ObjectDisposedException>(() => y.Sum());
        Assert.Contains("TensorArena", e.Message);
        Assert.Equal(w.Detach().Tanh().ToArray<float>(), kept.ToArray<float>());
    }

    [Fact]
    public void NoGradWorkAndSuspendedWorkIsNotRented()
    {
        var arena = new TensorArena();
        var x = Tensor.Ones(3);
        Tensor a, b;
        using (arena.Step())
        {
            using (Autograd.NoGrad()) a = x.Exp();
            using (TensorArena.Suspend()) b = x.RequireGrad().Exp();
        }
        Assert.Equal(3, a.NumEl);
        Assert.Equal(Math.E, b.GetFlat(0), 5);
    }

    [Fact]
    public void InferenceStepsRentNoGradWorkAndReuseItNextStep()
    {
        var g = new Generator(3);
        var (w1, w2) = Params(g);
        var x = Tensor.Randn([256, 64], DType.Float32, g);
        var arena = new TensorArena();
        Tensor y, kept, suspended;
        using (Autograd.NoGrad())
        {
            using (arena.InferenceStep())
            {
                y = x.MatMul(w1).Relu();
                kept = TensorArena.Keep(x.MatMul(w1).Relu());
                using (TensorArena.Suspend()) suspended = x.Exp();
            }
            Assert.Throws<ObjectDisposedException>(() => y.Sum());
            Assert.Equal(x.MatMul(w1).Relu().ToArray<float>(), kept.ToArray<float>());
            Assert.Equal(x.Exp().ToArray<float>(), suspended.ToArray<float>());
            // 256x256 floats twice over (the product and its ReLU) would be 512 KB a pass; reused, a pass allocates only
            // the small bookkeeping objects.
            void Pass()
            {
                using (arena.InferenceStep()) Loss(x, w1, w2).Item();
            }
            Pass();
            var (steady, seen) = TestUtil.SteadyAllocation(Pass, limit: 100_000);
            Assert.True(steady < 100_000, $"steady-state evaluation passes allocated {string.Join(", ", seen)} bytes");
        }
        // A training step after it still leaves NoGrad work alone.
        using (arena.Step())
        {
            using (Autograd.NoGrad()) y = x.Exp();
        }
        Assert.Equal(x.NumEl, y.NumEl);
        Assert.Equal(x.Exp().ToArray<float>(), y.ToArray<float>());
    }

    [Fact]
    public void StepsDoNotNest()
    {
        var arena = new TensorArena();
        using (arena.Step())
        {
            Assert.Throws<InvalidOperationException>(() => arena.Step());
            Assert.Throws<InvalidOperationException>(() => arena.InferenceStep());
        }
    }

    [Fact]
    public void OptimizerStateCreatedInsideAStepSurvivesIt()
    {
        var g = new Generator(2);
        var (w1, w2) = Params(g);
        var x = Tensor.Randn([16, 64], DType.Float32, g);
        var sgd = new GradFlow.Optim.SGD([w1, w2], lr: 0.01, momentum: 0.9);
        var arena = new TensorArena();
        for (int i = 0; i < 3; i++)
        {
            using (arena.Step())
            {
                sgd.ZeroGrad();
                Loss(x, w1, w2).Backward();
                sgd.Step(); // the momentum buffer made in step 1 is read in steps 2 and 3
            }
        }
        Assert.Equal(3, sgd.StepCount);
        Assert.NotNull(sgd.GetState(w1)!.Buffers["momentum_buffer"].ToArray<float>());
    }
}
