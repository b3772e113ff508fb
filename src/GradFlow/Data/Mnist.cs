namespace GradFlow.Data;

/// <summary>
/// MNIST-format image sets read from IDX files in a directory: train-images-idx3-ubyte, train-labels-idx1-ubyte,
/// t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally gzipped (.gz). Images become
/// [N, 1, 28, 28] float32 in [0, 1], labels int64.
/// </summary>
public static class Mnist
{
    /// <summary>Reads MNIST from <paramref name="directory"/> (there is no download: see the error message when files are missing).</summary>
    public static TensorDataset Load(string directory, bool train = true) =>
        LoadIdxPair(directory, train, "MNIST",
            "Get the four IDX files (train-images-idx3-ubyte.gz, ...) from the MNIST distribution and put them in that directory.");

    internal static TensorDataset LoadIdxPair(string directory, bool train, string name, string howToGet)
    {
        Guard.NotEmpty(directory, $"{name}.Load", nameof(directory));
        string prefix = train ? "train" : "t10k";
        string images = Find(directory, $"{prefix}-images-idx3-ubyte", name, howToGet);
        string labels = Find(directory, $"{prefix}-labels-idx1-ubyte", name, howToGet);
        var x = Idx.Read(images, DType.Float32);
        var y = Idx.Read(labels, DType.Int64);
        if (x.Rank != 3 || y.Rank != 1 || x.Size(0) != y.Size(0))
            throw new InvalidDataException($"{name}: images {Guard.Shape(x)} and labels {Guard.Shape(y)} do not pair up (expected [N, H, W] and [N]).");
        return new TensorDataset(x.DivInPlace(255).Unsqueeze(1), y); // in place: no second copy of the images
    }

    private static string Find(string directory, string baseName, string name, string howToGet)
    {
        foreach (var candidate in new[] { baseName + ".gz", baseName })
        {
            string path = Path.Combine(directory, candidate);
            if (File.Exists(path)) return path;
        }
        throw new FileNotFoundException(
            $"{name}: neither {baseName}.gz nor {baseName} is in '{directory}'. {howToGet}", Path.Combine(directory, baseName + ".gz"));
    }
}

/// <summary>
/// Fashion-MNIST (Xiao, Rasul and Vollgraf 2017): 70,000 28×28 greyscale images of 10 clothing classes,
/// in the MNIST file layout. By default read from /usr/share/datasets/fashion-mnist, where Debian's
/// dataset-fashion-mnist package installs it.
/// </summary>
public static class FashionMnist
{
    /// <summary>Where Debian's dataset-fashion-mnist package puts the files.</summary>
    public const string DefaultDirectory = "/usr/share/datasets/fashion-mnist";

    /// <summary>The class names, by label.</summary>
    public static readonly IReadOnlyList<string> Classes =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>The 60,000 training or 10,000 test images.</summary>
    public static TensorDataset Load(string? directory = null, bool train = true) =>
        Mnist.LoadIdxPair(directory ?? DefaultDirectory, train, "Fashion-MNIST",
            "On Debian or Ubuntu: sudo apt-get install dataset-fashion-mnist (installs to " + DefaultDirectory + "); "
            + "or copy the four IDX files from the zalandoresearch/fashion-mnist repository into that directory and pass it.");
}
