using GradFlow.NN;
using GradFlow.Tests.Kernels;

namespace GradFlow.Tests.NN;

/// <summary>
/// An evaluation forward (eval mode, NoGrad, with or without an inference arena) runs the training forward's kernels:
/// same seed, same bits, at one thread and two, for the bench's cnn and mlp shapes (the cnn's poolings take the
/// 8-output and the 4-output vector paths: rows of 13 and 5 outputs).
/// </summary>
[Collection(ParallelismCollection.Name)]
public class EvalForwardTests
{
    [Theory]
    [InlineData("cnn", 1)]
    [InlineData("cnn", 2)]
    [InlineData("mlp", 1)]
    [InlineData("mlp", 2)]
    public void EvalForwardGivesTheTrainingForwardsBits(string name, int threads)
    {
        ParallelismCollection.WithThreads(threads, () =>
        {
            var (model, x) = Build(name);
            var arena = new TensorArena();
            model.Train();
            float[] training;
            using (arena.Step()) training = model.Call(x).ToArray<float>();
            Assert.Contains(training, v => v != 0);

            model.Eval();
            float[] eval, evalInArena;
            using (Autograd.NoGrad()) eval = model.Call(x).ToArray<float>();
            using (Autograd.NoGrad())
            using (arena.InferenceStep())
                evalInArena = model.Call(x).ToArray<float>();
            float[] evalWithGrad = model.Call(x).ToArray<float>(); // eval mode, graph recorded: the pooling winners kept

            Assert.Equal(Bits(training), Bits(eval));
            Assert.Equal(Bits(training), Bits(evalInArena));
            Assert.Equal(Bits(training), Bits(evalWithGrad));
        });
    }

    [Fact]
    public void SequentialReusesItsEvaluationBuffersAndKeepsEachResult()
    {
        var (model, x) = Build("cnn");
        model.Eval();
        var results = new List<Tensor>();
        var bytes = new List<long>();
        using (Autograd.NoGrad())
        {
            for (int pass = 0; pass < 3; pass++)
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                results.Add(model.Call(x));
                bytes.Add(GC.GetAllocatedBytesForCurrentThread() - before);
            }
        }
        // The first pass allocates every activation (about 1 MB for this batch of 6); later ones reuse them and
        // allocate the result (240 bytes) and bookkeeping only.
        Assert.True(bytes[0] > 500_000, $"first pass {bytes[0]} bytes");
        Assert.True(bytes[2] < bytes[0] / 10, $"third pass {bytes[2]} bytes, first {bytes[0]}");
        foreach (var y in results) Assert.Equal(Bits(results[0].ToArray<float>()), Bits(y.ToArray<float>())); // all still readable
        ((Sequential)model).TrimEvaluationBuffers();
        Assert.Equal(Bits(results[0].ToArray<float>()), Bits(results[2].ToArray<float>()));
    }

    [Fact]
    public void IntermediatesAHookOrAUserModuleCanHoldAreNotRecycled()
    {
        var (model, x) = Build("cnn");
        var chain = (Sequential)model;
        model.Eval();
        var seen = new List<Tensor>();
        using (chain[2].RegisterForwardHook((_, _, outputs) => { seen.Add(outputs[0]); return null; }))
        using (Autograd.NoGrad())
        {
            chain.Call(x);
            chain.Call(x);
        }
        Assert.Equal(seen[0].ToArray<float>(), seen[1].ToArray<float>()); // the first pass's pooled map is still readable

        var stash = new Stash();
        var withUserModule = new Sequential(new Linear(4, 8), stash, new ReLU(), new Linear(8, 2));
        withUserModule.Eval();
        using (Autograd.NoGrad())
        {
            withUserModule.Call(Tensor.Ones([3, 4]));
            var first = stash.Last!;
            var firstValues = first.ToArray<float>();
            withUserModule.Call(Tensor.Zeros([3, 4]));
            Assert.Equal(firstValues, first.ToArray<float>()); // read after the next pass: neither recycled nor overwritten
        }
    }

    // A user's layer that keeps its last input, as some caches do.
    private sealed class Stash : Module
    {
        public Tensor? Last { get; private set; }

        public override Tensor Forward(Tensor input) => Last = input;
    }

    private static (Module Model, Tensor X) Build(string name)
    {
        var g = new Generator(0);
        return name == "cnn"
            ? (new Sequential(new Conv2d(1, 32, 3, generator: g), new ReLU(), new MaxPool2d(2), new Conv2d(32, 64, 3, generator: g), new ReLU(),
                new MaxPool2d(2), new Flatten(), new Linear(1600, 128, generator: g), new ReLU(), new Linear(128, 10, generator: g)),
                Tensor.Randn([6, 1, 28, 28], DType.Float32, new Generator(1)))
            : (new Sequential(new Linear(784, 256, generator: g), new ReLU(), new Linear(256, 256, generator: g), new ReLU(), new Linear(256, 10, generator: g)),
                Tensor.Randn([32, 784], DType.Float32, new Generator(1)));
    }

    private static int[] Bits(float[] values) => Array.ConvertAll(values, BitConverter.SingleToInt32Bits);
}
