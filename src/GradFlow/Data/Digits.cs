namespace GradFlow.Data;

/// <summary>
/// The UCI optical handwritten digits as shipped with scikit-learn (load_digits): 1,797 8×8 images with
/// pixel values 0..16 and labels 0..9, embedded in the library. Inputs are [64] float32 scaled to [0, 1].
/// </summary>
public static class Digits
{
    /// <summary>The number of examples.</summary>
    public const int Count = 1797;

    /// <summary>All examples in file order: inputs [1797, 64] in [0, 1], labels int64 [1797].</summary>
    public static TensorDataset LoadAll()
    {
        using var s = typeof(Digits).Assembly.GetManifestResourceStream("GradFlow.Data.digits.csv.gz")
            ?? throw new InvalidOperationException("Digits: the embedded resource GradFlow.Data.digits.csv.gz is missing from the assembly.");
        using var gz = new System.IO.Compression.GZipStream(s, System.IO.Compression.CompressionMode.Decompress);
        using var reader = new StreamReader(gz);
        var raw = Csv.Read(reader);
        return new TensorDataset(raw.Inputs / 16.0, raw.Targets);
    }

    /// <summary>
    /// A fixed random split (a seeded permutation, the same on every machine): by default 1,437 training
    /// and 360 test examples. Returned as tensors, ready for full-batch or mini-batch training.
    /// </summary>
    public static (TensorDataset Train, TensorDataset Test) Load(double testFraction = 0.2, ulong seed = 0)
    {
        if (!(testFraction > 0 && testFraction < 1)) Guard.ThrowArg(nameof(Load), nameof(testFraction), $"test fraction must be in (0, 1), got {testFraction}.");
        var all = LoadAll();
        var perm = new Generator(seed).Permutation(all.Count);
        int test = (int)Math.Ceiling(all.Count * testFraction); // as scikit-learn rounds the test size
        var testIdx = Tensor.FromArray(perm.Take(test).Select(i => (long)i).ToArray());
        var trainIdx = Tensor.FromArray(perm.Skip(test).Select(i => (long)i).ToArray());
        return (new TensorDataset(all.Inputs.IndexSelect(0, trainIdx), all.Targets.IndexSelect(0, trainIdx)),
                new TensorDataset(all.Inputs.IndexSelect(0, testIdx), all.Targets.IndexSelect(0, testIdx)));
    }
}
