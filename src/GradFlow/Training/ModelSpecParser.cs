using System.Globalization;
using System.Text.RegularExpressions;

namespace GradFlow.Training;

public sealed partial record ModelSpec
{
    /// <summary>
    /// Reads the compact form: <c>KIND:INPUT-LAYER-...-OUTPUTS[,OPTION]...</c>, e.g. <c>mlp:784-256-128-10,relu,he,bn</c>
    /// or <c>cnn:1x28x28-c16-p-c32-p-128-10,relu,he,bn</c>. KIND is mlp (INPUT a feature count) or cnn (INPUT
    /// CxHxW); a LAYER is N (a linear layer of N units), cN or cNkK (a convolution with N channels, kernel K, 3 by
    /// default) or p / pK (K×K max pooling, 2 by default). OPTIONs, in any order: an activation (relu, leaky_relu,
    /// tanh, sigmoid, gelu, elu, selu, silu), an init (he, xavier, orthogonal, default), a norm (bn, ln, none),
    /// res (skip connections) and dropout=P. A malformed spec throws FormatException naming the part and the fix.
    /// </summary>
    public static ModelSpec Parse(string spec)
    {
        Guard.NotNull(spec, "ModelSpec.Parse", nameof(spec));
        string source = $"spec '{spec}'";
        int colon = spec.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0) throw Bad(source, "it must start with mlp: or cnn:, e.g. mlp:64-128-10,relu.");
        string kind = spec[..colon].Trim().ToLowerInvariant();
        if (kind is not ("mlp" or "cnn")) throw Bad(source, $"unknown kind '{kind}'; use mlp (e.g. mlp:64-128-10) or cnn (e.g. cnn:1x28x28-c16-p-10).");
        var parts = spec[(colon + 1)..].Split(',', StringSplitOptions.TrimEntries);
        var tokens = parts[0].Split('-', StringSplitOptions.TrimEntries);
        if (tokens.Length < 2) throw Bad(source, "give the input and at least the output layer, e.g. mlp:64-10.");
        var input = ParseInput(source, kind, tokens[0]);
        var layers = tokens.Skip(1).Select(t => ParseLayer(source, kind, t)).ToList();
        var result = new ModelSpec { InputShape = input, Layers = layers };
        foreach (var option in parts.Skip(1)) result = WithOption(source, result, option.ToLowerInvariant());
        result.Validate(source);
        return result;
    }

    private static int[] ParseInput(string source, string kind, string token)
    {
        var dims = token.Split('x');
        int expected = kind == "mlp" ? 1 : 3;
        if (dims.Length != expected || !dims.All(d => int.TryParse(d, NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v > 0))
            throw Bad(source, kind == "mlp"
                ? $"the input '{token}' must be a feature count, e.g. 784 in mlp:784-256-10."
                : $"the input '{token}' must be CxHxW, e.g. 1x28x28 in cnn:1x28x28-c16-p-10.");
        return dims.Select(d => int.Parse(d, CultureInfo.InvariantCulture)).ToArray();
    }

    private static LayerSpec ParseLayer(string source, string kind, string token)
    {
        var m = LayerToken().Match(token.ToLowerInvariant());
        if (!m.Success)
            throw Bad(source, $"'{token}' is not a layer; use N (linear), cN or cNkK (convolution) or p / pK (max pooling).");
        int Num(Group g, int fallback) => g.Success ? int.Parse(g.Value, CultureInfo.InvariantCulture) : fallback;
        if (m.Groups["linear"].Success) return new LayerSpec(LayerKind.Linear, Num(m.Groups["linear"], 0));
        if (kind == "mlp") throw Bad(source, $"'{token}' is a convolution or pooling layer; an mlp has linear layers only (use cnn:CxHxW-...).");
        return m.Groups["conv"].Success
            ? new LayerSpec(LayerKind.Conv, Num(m.Groups["conv"], 0), Num(m.Groups["kernel"], 3))
            : new LayerSpec(LayerKind.Pool, Num(m.Groups["pool"], 2));
    }

    [GeneratedRegex(@"^(?:(?<linear>\d{1,7})|c(?<conv>\d{1,7})(?:k(?<kernel>\d{1,2}))?|p(?<pool>\d{1,2})?)$")]
    private static partial Regex LayerToken();

    private static ModelSpec WithOption(string source, ModelSpec spec, string option)
    {
        if (Activations.Contains(option)) return spec with { Activation = option };
        switch (option)
        {
            case "he" or "kaiming": return spec with { Init = "he" };
            case "xavier" or "glorot": return spec with { Init = "xavier" };
            case "orthogonal" or "default": return spec with { Init = option };
            case "bn" or "batchnorm": return spec with { Norm = "batch" };
            case "ln" or "layernorm": return spec with { Norm = "layer" };
            case "none": return spec with { Norm = "none" };
            case "res" or "residual": return spec with { Residual = true };
        }
        if (option.StartsWith("dropout=", StringComparison.Ordinal)
            && double.TryParse(option["dropout=".Length..], NumberStyles.Float, CultureInfo.InvariantCulture, out double p))
            return spec with { Dropout = p };
        throw Bad(source, $"unknown option '{option}'; use an activation ({string.Join(", ", Activations)}), " +
                          "an init (he, xavier, orthogonal, default), a norm (bn, ln, none), res, or dropout=P.");
    }
}
