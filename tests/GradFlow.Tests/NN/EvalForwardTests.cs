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
