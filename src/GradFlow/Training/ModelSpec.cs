using System.Globalization;

namespace GradFlow.Training;

/// <summary>What a hidden or output layer of a <see cref="ModelSpec"/> is.</summary>
public enum LayerKind
{
    /// <summary>A fully connected layer of <see cref="LayerSpec.Size"/> units.</summary>
    Linear,
    /// <summary>A 2-d convolution with <see cref="LayerSpec.Size"/> output channels and a square <see cref="LayerSpec.Kernel"/> (padding Kernel/2).</summary>
    Conv,
    /// <summary>Max pooling over <see cref="LayerSpec.Size"/>×<see cref="LayerSpec.Size"/> windows.</summary>
    Pool,
}

/// <summary>
/// One layer of a <see cref="ModelSpec"/>. The nullable settings override the model's for this layer only (the JSON
/// form can set them; the compact form cannot).
/// </summary>
public sealed record LayerSpec(LayerKind Kind, int Size, int Kernel = 3)
{
    /// <summary>This layer's activation, or null for the model's.</summary>
    public string? Activation { get; init; }

    /// <summary>This layer's normalisation, or null for the model's.</summary>
    public string? Norm { get; init; }

    /// <summary>Whether this block gets a skip connection, or null for the model's.</summary>
    public bool? Residual { get; init; }

    /// <summary>This layer's dropout probability, or null for the model's.</summary>
    public double? Dropout { get; init; }

    internal bool HasOverrides => Activation is not null || Norm is not null || Residual is not null || Dropout is not null;

    internal string Token => Kind switch
    {
        LayerKind.Linear => Size.ToString(CultureInfo.InvariantCulture),
        LayerKind.Conv => Kernel == 3 ? $"c{Size}" : $"c{Size}k{Kernel}",
        _ => Size == 2 ? "p" : $"p{Size}",
    };
}

/// <summary>
/// A feed-forward classifier described in one line or a JSON file, built into a <see cref="NN.Module"/>: the grammar
/// of <see cref="Parse"/> and the JSON fields of <see cref="FromJson"/> are in docs/TRAIN.md. Every hidden layer
/// is a block (layer, normalisation, activation, dropout), wrapped in a skip connection when asked for and its
/// input and output shapes match; the last layer is linear with no activation (the class scores).
/// </summary>
/// <example><code>var model = ModelSpec.Parse("mlp:784-256-128-10,relu,he,bn").Build(new Generator(0));</code></example>
public sealed partial record ModelSpec
{
    /// <summary>The activations a spec may name.</summary>
    public static readonly IReadOnlyList<string> Activations = ["relu", "leaky_relu", "tanh", "sigmoid", "gelu", "elu", "selu", "silu"];

    /// <summary>The initialisation schemes: PyTorch's defaults, He (Kaiming normal), Xavier (Glorot uniform), orthogonal.</summary>
    public static readonly IReadOnlyList<string> Inits = ["default", "he", "xavier", "orthogonal"];

    /// <summary>The normalisations: none, batch (BatchNorm1d/2d) and layer (LayerNorm over each example's features).</summary>
    public static readonly IReadOnlyList<string> Norms = ["none", "batch", "layer"];

    /// <summary>The shape of one example: [features] for an MLP, [channels, height, width] for a CNN.</summary>
    public required IReadOnlyList<int> InputShape { get; init; }

    /// <summary>The layers in order; the last is the linear output layer.</summary>
    public required IReadOnlyList<LayerSpec> Layers { get; init; }

    /// <summary>The hidden layers' activation (one of <see cref="Activations"/>).</summary>
    public string Activation { get; init; } = "relu";

    /// <summary>How weights are initialised (one of <see cref="Inits"/>).</summary>
    public string Init { get; init; } = "default";

    /// <summary>The hidden layers' normalisation (one of <see cref="Norms"/>).</summary>
    public string Norm { get; init; } = "none";

    /// <summary>Skip connections around every hidden block whose output has its input's shape.</summary>
    public bool Residual { get; init; }

    /// <summary>Dropout probability after every hidden activation (0: none).</summary>
    public double Dropout { get; init; }

    /// <summary>The number of outputs (classes).</summary>
    public int Outputs => Layers[^1].Size;

    /// <summary>Features per example: the product of <see cref="InputShape"/>.</summary>
    public int InputFeatures => InputShape.Aggregate(1, (a, b) => a * b);

    /// <summary>
    /// The compact form ("mlp:64-128-10,relu,he"), which <see cref="Parse"/> reads back to an equal spec, or the JSON
    /// form when a layer overrides the model's settings (the compact form cannot say that).
    /// </summary>
    public override string ToString()
    {
        if (Layers.Any(l => l.HasOverrides)) return ToJson();
        var parts = new List<string>
        {
            (InputShape.Count == 1 ? "mlp:" : "cnn:") + string.Join("x", InputShape) + "-" + string.Join("-", Layers.Select(l => l.Token)),
            Activation,
        };
        if (Init != "default") parts.Add(Init);
        if (Norm != "none") parts.Add(Norm == "batch" ? "bn" : "ln");
        if (Residual) parts.Add("res");
        if (Dropout > 0) parts.Add("dropout=" + Dropout.ToString("R", CultureInfo.InvariantCulture));
        return string.Join(",", parts);
    }

    /// <summary>Value equality over the layer lists too (a record compares lists by reference).</summary>
    public bool Equals(ModelSpec? other) => other is not null && ToJson() == other.ToJson();

    /// <inheritdoc />
    public override int GetHashCode() => ToJson().GetHashCode(StringComparison.Ordinal);

    /// <summary>Checks the spec as a whole: sizes, names, the order of layers; throws FormatException saying what to change.</summary>
    internal void Validate(string source)
    {
        if (InputShape.Count is not (1 or 3) || InputShape.Any(d => d < 1))
            throw Bad(source, $"the input shape [{string.Join(", ", InputShape)}] must be [features] or [channels, height, width], all positive.");
        if (Layers.Count == 0) throw Bad(source, "there are no layers; give at least the output layer, e.g. mlp:64-10.");
        if (Layers[^1].Kind != LayerKind.Linear) throw Bad(source, "the last layer must be linear (the number of classes), e.g. ...-10.");
        CheckName(source, "activation", Activation, Activations);
        CheckName(source, "init", Init, Inits);
        CheckName(source, "norm", Norm, Norms);
        CheckDropout(source, Dropout);
        bool flat = InputShape.Count == 1;
        int h = flat ? 1 : InputShape[1], w = flat ? 1 : InputShape[2];
        for (int i = 0; i < Layers.Count; i++)
        {
            var l = Layers[i];
            if (l.Size < 1 || l.Size > 1 << 20) throw Bad(source, $"layer {i + 1} ('{l.Token}') has size {l.Size}; sizes run from 1 to {1 << 20}.");
            if (l.Activation is { } a) CheckName(source, $"layer {i + 1} activation", a, Activations);
            if (l.Norm is { } n) CheckName(source, $"layer {i + 1} norm", n, Norms);
            if (l.Dropout is { } d) CheckDropout(source, d);
            if (l.Kind == LayerKind.Linear) { flat = true; continue; }
            if (flat)
                throw Bad(source, $"layer {i + 1} ('{l.Token}') is a convolution or pooling after the input was flattened; " +
                                  "use a cnn spec (cnn:CxHxW-...) and put convolutions and pooling before the linear layers.");
            // Padding Kernel/2 keeps the image size for any odd kernel.
            if (l.Kind == LayerKind.Conv && (l.Kernel < 1 || l.Kernel % 2 == 0 || l.Kernel > 15))
                throw Bad(source, $"layer {i + 1} ('{l.Token}') has kernel {l.Kernel}; use an odd kernel from 1 to 15.");
            if (l.Kind == LayerKind.Pool)
            {
                if (l.Size > h || l.Size > w) throw Bad(source, $"layer {i + 1} ('{l.Token}') pools {l.Size}x{l.Size} windows over a {h}x{w} image; pool less.");
                (h, w) = (h / l.Size, w / l.Size);
            }
        }
    }

    private static void CheckName(string source, string what, string value, IReadOnlyList<string> allowed)
    {
        if (!allowed.Contains(value)) throw Bad(source, $"unknown {what} '{value}'; choose one of {string.Join(", ", allowed)}.");
    }

    private static void CheckDropout(string source, double p)
    {
        if (!(p >= 0 && p < 1)) throw Bad(source, $"dropout {p.ToString(CultureInfo.InvariantCulture)} must be in [0, 1).");
    }

    internal static FormatException Bad(string source, string problem) => new($"model {source}: {problem}");
}
