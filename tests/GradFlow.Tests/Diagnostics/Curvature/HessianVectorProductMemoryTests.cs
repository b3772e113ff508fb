using GradFlow.Diagnostics;
using GradFlow.NN;

namespace GradFlow.Tests.Diagnostics.Curvature;

/// <summary>
/// A product reuses its operator's buffers, and a disposed operator hands its graph's buffers to the next: the bytes
/// counted are this thread's allocations (deterministic), bounded by a fraction of one float32 copy of the weights.
/// </summary>
public class HessianVectorProductMemoryTests
{
    private sealed record Mlp(Sequential Model, Func<Tensor> Loss, int Dimension);

    // 64-512-512-10 with ReLU on a batch of 32: 301,066 weights (1.2 MB in float32); a product's tensors are larger than
    // the engine's bookkeeping by far, so a product that allocates its tensors cannot pass the bounds below.
    private static Mlp MakeMlp()
    {
        var g = new Generator(4);
        var model = new Sequential(new Linear(64, 512, generator: g), new ReLU(), new Linear(512, 512, generator: g), new ReLU(), new Linear(512, 10, generator: g));
        var x = Tensor.Randn([32, 64], DType.Float32, g);
        var y = Tensor.FromArray(Enumerable.Range(0, 32).Select(i => (long)(i * 7 % 10)).ToArray(), 32);
        var lossFn = new CrossEntropyLoss();
        return new Mlp(model, () => lossFn.Call(model.Call(x), y), (int)model.Parameters().Sum(p => (long)p.NumEl));
    }

    private static double[] RandomVector(int n, ulong seed)
    {
        var gen = new Generator(seed);
        return [.. Enumerable.Range(0, n).Select(_ => gen.NextNormal())];
    }

    [Fact]
    public void ProductAllocatesFarLessThanTheWeights()
    {
        var mlp = MakeMlp();
        using var op = CurvatureOperator.Hessian(mlp.Loss, mlp.Model);
        var v = RandomVector(op.Dimension, 1);
        var result = new double[op.Dimension];
        long weightBytes = 4L * mlp.Dimension;
        // Before the products ran in the operator's arena one allocated ~15 copies of the weights (vectors converted
        // through float64 tensors, the backward's intermediates); the engine's per-backward bookkeeping stays.
        var (least, seen) = TestUtil.SteadyAllocation(() => op.Apply(v, result), weightBytes / 8);
        Assert.True(least <= weightBytes / 8, $"a product allocated {least:N0} bytes (weights: {weightBytes:N0}); rounds: {string.Join(", ", seen)}");
    }

    [Fact]
    public void DisposedOperatorGivesItsGraphToTheNext()
    {
        var mlp = MakeMlp();
        var v = RandomVector(mlp.Dimension, 2);
        var result = new double[mlp.Dimension];
        long weightBytes = 4L * mlp.Dimension;
        void MakeApplyDispose()
        {
            using var op = CurvatureOperator.Hessian(mlp.Loss, mlp.Model);
            op.Apply(v, result);
        }
        // Forward, createGraph gradient and double backward: without the pool their tensors are ~12 copies of the weights.
        var (least, seen) = TestUtil.SteadyAllocation(MakeApplyDispose, weightBytes / 4);
        Assert.True(least <= weightBytes / 4, $"an operator made, applied and disposed allocated {least:N0} bytes (weights: {weightBytes:N0}); rounds: {string.Join(", ", seen)}");
    }

    [Fact]
    public void DisposedOperatorRefusesProductsButKeepsWhatWasRead()
    {
        var mlp = MakeMlp();
        var op = CurvatureOperator.Hessian(mlp.Loss, mlp.Model);
        var gradient = op.Gradient.ToArray();
        var view = op.Scaled(Enumerable.Repeat(1.0, op.Dimension).ToArray());
        op.Dispose();
        op.Dispose(); // twice is harmless
        Assert.Equal(gradient, op.Gradient);
        var v = RandomVector(op.Dimension, 3);
        var e = Assert.Throws<ObjectDisposedException>(() => op.Apply(v));
        Assert.Contains("disposed", e.Message);
        Assert.Throws<ObjectDisposedException>(() => view.Apply(v));
        var unread = CurvatureOperator.Hessian(mlp.Loss, mlp.Model);
        unread.Dispose();
        Assert.Throws<ObjectDisposedException>(() => unread.Gradient);
    }

    [Theory]
    [MemberData(nameof(CurvatureCases.Names), MemberType = typeof(CurvatureCases))]
    public void ProductsOnReusedBuffersRepeatBitwise(string name)
    {
        var problem = CurvatureCases.All[name](DType.Float32);
        using var op = CurvatureOperator.Hessian(problem.Loss, problem.Parameters);
        double[] v1 = RandomVector(op.Dimension, 4), v2 = RandomVector(op.Dimension, 5);
        var first = op.Apply(v1);
        op.Apply(v2); // the pool's buffers now hold another product's values
        Assert.Equal(first, op.Apply(v1));
    }

    [Fact]
    public void NextOperatorOnRecycledBuffersMatchesAFreshOne()
    {
        var mlp = MakeMlp();
        var v = RandomVector(mlp.Dimension, 6);
        double[] expected, gradient;
        using (var op = CurvatureOperator.Hessian(mlp.Loss, mlp.Model))
            (expected, gradient) = (op.Apply(v), op.Gradient.ToArray());
        using var next = CurvatureOperator.Hessian(mlp.Loss, mlp.Model);
        Assert.Equal(gradient, next.Gradient);
        Assert.Equal(expected, next.Apply(v));
    }
}
