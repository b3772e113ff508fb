using System.Diagnostics;
using System.IO.Compression;

namespace GradFlow.Cli;

/// <summary>
/// `gradflow demo`: a 64-128-64-10 ReLU network on the embedded Digits data set, trained with
/// mini-batch SGD with momentum, reporting per epoch the loss, accuracy and each layer's gradient norm.
/// </summary>
internal static class DemoCommand
{
    public static int Run(Options options, TextWriter output)
    {
        int epochs = options.Int("epochs", 15, 1, 10_000);
        int batchSize = options.Int("batch-size", 64, 1, 100_000);
        double lr = options.Double("lr", 0.05, 1e-9, 100);
        int seed = options.Int("seed", 0, 0, int.MaxValue);

        var (x, y) = LoadDigits();
        var gen = new Generator((ulong)seed);
        var perm = gen.Permutation(x.Size(0));
        int nTest = x.Size(0) / 5;
        var testIdx = Tensor.FromArray(perm[..nTest].Select(i => (long)i).ToArray());
        var trainIdx = Tensor.FromArray(perm[nTest..].Select(i => (long)i).ToArray());
        var (xTrain, yTrain) = (x.IndexSelect(0, trainIdx), y.IndexSelect(0, trainIdx));
        var (xTest, yTest) = (x.IndexSelect(0, testIdx), y.IndexSelect(0, testIdx));

        var layers = new[] { Dense(64, 128, gen), Dense(128, 64, gen), Dense(64, 10, gen) };
        var velocity = layers.SelectMany(l => new[] { Tensor.ZerosLike(l.W), Tensor.ZerosLike(l.B) }).ToArray();
        output.WriteLine($"GradFlow demo: MLP 64-128-64-10 on Digits ({xTrain.Size(0)} train, {xTest.Size(0)} test), " +
                         $"SGD lr={lr} momentum=0.9, batch {batchSize}, seed {seed}");
        output.WriteLine($"{"epoch",5} {"loss",8} {"train",7} {"test",7}   gradient L2 norm (weight) per layer");

        var clock = Stopwatch.StartNew();
        for (int epoch = 1; epoch <= epochs; epoch++)
        {
            var order = gen.Permutation(xTrain.Size(0));
            double lossSum = 0;
            int batches = 0;
            var gradNormSum = new double[layers.Length];
            for (int start = 0; start < order.Length; start += batchSize)
            {
                var idx = Tensor.FromArray(order[start..Math.Min(order.Length, start + batchSize)].Select(i => (long)i).ToArray());
                var logits = Forward(layers, xTrain.IndexSelect(0, idx));
                var loss = CrossEntropy(logits, yTrain.IndexSelect(0, idx));
                foreach (var l in layers) { l.W.Grad = null; l.B.Grad = null; }
                loss.Backward();
                for (int i = 0; i < layers.Length; i++) gradNormSum[i] += layers[i].W.Grad!.Norm().Item();
                SgdStep(layers, velocity, lr);
                lossSum += loss.Item();
                batches++;
            }
            var norms = string.Join("  ", gradNormSum.Select((s, i) => $"fc{i + 1} {s / batches:0.0000}"));
            output.WriteLine($"{epoch,5} {lossSum / batches,8:0.0000} {Accuracy(layers, xTrain, yTrain),6:P1} {Accuracy(layers, xTest, yTest),6:P1}   {norms}");
        }
        output.WriteLine($"done in {clock.Elapsed.TotalSeconds:0.00} s; test accuracy {Accuracy(layers, xTest, yTest):P2}");
        return 0;
    }

    private sealed record Layer(Tensor W, Tensor B);

    // PyTorch's default Linear initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.
    private static Layer Dense(int fanIn, int fanOut, Generator gen)
    {
        double bound = 1 / Math.Sqrt(fanIn);
        var w = (Tensor.Rand([fanIn, fanOut], DType.Float32, gen) * (2 * bound) - bound).Detach().RequireGrad();
        var b = (Tensor.Rand([fanOut], DType.Float32, gen) * (2 * bound) - bound).Detach().RequireGrad();
        return new Layer(w, b);
    }

    private static Tensor Forward(Layer[] layers, Tensor x)
    {
        for (int i = 0; i < layers.Length; i++)
        {
            x = x.MatMul(layers[i].W) + layers[i].B;
            if (i < layers.Length - 1) x = x.Relu();
        }
        return x;
    }

    private static Tensor CrossEntropy(Tensor logits, Tensor labels) =>
        -logits.LogSoftmax(1).Gather(1, labels.Unsqueeze(1)).Mean();

    private static void SgdStep(Layer[] layers, Tensor[] velocity, double lr)
    {
        using var _ = Autograd.NoGrad();
        int k = 0;
        foreach (var p in layers.SelectMany(l => new[] { l.W, l.B }))
        {
            var v = velocity[k++];
            v.MulInPlace(0.9).AddInPlace(p.Grad!);
            p.AddInPlace(v, -lr);
        }
    }

    private static double Accuracy(Layer[] layers, Tensor x, Tensor y)
    {
        using var _ = Autograd.NoGrad();
        return Forward(layers, x).ArgMax(1).Eq(y).Sum().Item() / x.Size(0);
    }

    /// <summary>The embedded Digits set: 1,797 rows of 64 grey levels 0..16 and a label; pixels scaled to [0, 1].</summary>
    private static (Tensor X, Tensor Y) LoadDigits()
    {
        using var stream = typeof(Tensor).Assembly.GetManifestResourceStream("GradFlow.Data.digits.csv.gz")
            ?? throw new InvalidOperationException("The Digits resource is missing from the GradFlow assembly.");
        using var reader = new StreamReader(new GZipStream(stream, CompressionMode.Decompress));
        var pixels = new List<float>();
        var labels = new List<long>();
        while (reader.ReadLine() is { } line)
        {
            var cells = line.Split(',');
            for (int i = 0; i < 64; i++) pixels.Add(float.Parse(cells[i]) / 16f);
            labels.Add(long.Parse(cells[64]));
        }
        return (Tensor.FromArray(pixels.ToArray(), labels.Count, 64), Tensor.FromArray(labels.ToArray()));
    }
}
