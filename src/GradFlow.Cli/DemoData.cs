using GradFlow.Data;

namespace GradFlow.Cli;

/// <summary>The demo's data: the embedded Digits (the default, seconds to train) or the real Fashion-MNIST, as flat rows.</summary>
internal sealed record DemoData(TensorDataset Train, TensorDataset Test, string Title)
{
    public static readonly string[] Names = ["digits", "fashion-mnist"];

    /// <summary>Digits split by the seed, or Fashion-MNIST's own 60,000/10,000 split from <paramref name="directory"/> (Debian's by default).</summary>
    public static DemoData Load(string name, string? directory, int seed)
    {
        if (name == "digits")
        {
            var (train, test) = Digits.Load(testFraction: 0.2, seed: (ulong)seed);
            return new DemoData(train, test, "Digits");
        }
        return new DemoData(Flat(FashionMnist.Load(directory)), Flat(FashionMnist.Load(directory, train: false)), "Fashion-MNIST");
    }

    // The demo's models are MLPs and row readers over flat rows: [N, 1, 28, 28] becomes [N, 784].
    private static TensorDataset Flat(TensorDataset d) => new(d.Inputs.Reshape(d.Count, d.Inputs.NumEl / Math.Max(d.Count, 1)), d.Targets);

    public int Features => Train.Inputs.NumEl / Math.Max(Train.Count, 1);
}
