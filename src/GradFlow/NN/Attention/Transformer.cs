namespace GradFlow.NN;

/// <summary>The feed-forward nonlinearity of a transformer layer.</summary>
public enum TransformerActivation
{
    /// <summary>ReLU (PyTorch's default).</summary>
    Relu,
    /// <summary>Exact GELU.</summary>
    Gelu,
}

/// <summary>
/// One transformer encoder layer (torch.nn.TransformerEncoderLayer): self-attention then a two-layer feed-forward
/// block, each with a residual connection, layer norm and dropout. Post-norm (x = norm(x + f(x)), the original
/// paper) by default, pre-norm (x = x + f(norm(x))) with <c>normFirst</c>. Parameter names are PyTorch's
/// (self_attn.in_proj_weight, linear1.weight, norm2.bias, ...).
/// </summary>
public sealed class TransformerEncoderLayer : Module
{
    /// <summary>Creates the layer.</summary>
    public TransformerEncoderLayer(int dModel, int nHead, int dimFeedforward = 2048, double dropout = 0.1,
        TransformerActivation activation = TransformerActivation.Relu, double layerNormEps = 1e-5, bool batchFirst = false, bool normFirst = false,
        DType dtype = DType.Float32, Generator? generator = null)
    {
        SelfAttn = RegisterModule("self_attn", new MultiheadAttention(dModel, nHead, dropout, batchFirst: batchFirst, dtype: dtype, generator: generator));
        Linear1 = RegisterModule("linear1", new Linear(dModel, dimFeedforward, dtype: dtype, generator: generator));
        Dropout = RegisterModule("dropout", new Dropout(dropout));
        Linear2 = RegisterModule("linear2", new Linear(dimFeedforward, dModel, dtype: dtype, generator: generator));
        Norm1 = RegisterModule("norm1", new LayerNorm(dModel, layerNormEps, dtype: dtype));
        Norm2 = RegisterModule("norm2", new LayerNorm(dModel, layerNormEps, dtype: dtype));
        Dropout1 = RegisterModule("dropout1", new Dropout(dropout));
        Dropout2 = RegisterModule("dropout2", new Dropout(dropout));
        (Activation, NormFirst) = (activation, normFirst);
    }

    /// <summary>The self-attention block.</summary>
    public MultiheadAttention SelfAttn { get; }

    /// <summary>The first feed-forward layer (d_model to dim_feedforward).</summary>
    public Linear Linear1 { get; }

    /// <summary>Dropout inside the feed-forward block.</summary>
    public Dropout Dropout { get; }

    /// <summary>The second feed-forward layer (dim_feedforward to d_model).</summary>
    public Linear Linear2 { get; }

    /// <summary>The norm around self-attention.</summary>
    public LayerNorm Norm1 { get; }

    /// <summary>The norm around the feed-forward block.</summary>
    public LayerNorm Norm2 { get; }

    /// <summary>Dropout on the self-attention output.</summary>
    public Dropout Dropout1 { get; }

    /// <summary>Dropout on the feed-forward output.</summary>
    public Dropout Dropout2 { get; }

    /// <summary>The feed-forward nonlinearity.</summary>
    public TransformerActivation Activation { get; }

    /// <summary>True for pre-norm.</summary>
    public bool NormFirst { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Call(input);

    /// <summary>Runs the layer; <paramref name="srcMask"/> is (S, S) or (N*heads, S, S), <paramref name="srcKeyPaddingMask"/> (N, S).</summary>
    public Tensor Call(Tensor src, Tensor? srcMask = null, Tensor? srcKeyPaddingMask = null)
    {
        Guard.NotNull(src, TypeName, nameof(src));
        return Invoke([src], xs =>
        {
            var x = xs[0];
            Tensor SelfAttention(Tensor h) => Dropout1.Call(SelfAttn.Call(h, h, h, srcKeyPaddingMask, needWeights: false, attnMask: srcMask).Output);
            if (NormFirst)
            {
                x = x + SelfAttention(Norm1.Call(x));
                return [x + FeedForward(Norm2.Call(x))];
            }
            x = Norm1.Call(x + SelfAttention(x));
            return [Norm2.Call(x + FeedForward(x))];
        })[0];
    }

    private Tensor FeedForward(Tensor x) =>
        Dropout2.Call(Linear2.Call(Dropout.Call(Activate(Linear1.Call(x), Activation))));

    internal static Tensor Activate(Tensor x, TransformerActivation activation) =>
        activation == TransformerActivation.Gelu ? Functional.Gelu(x) : x.Relu();
}

/// <summary>
/// One transformer decoder layer (torch.nn.TransformerDecoderLayer): masked self-attention, attention over the
/// encoder's memory, and a feed-forward block, each with residual, layer norm (norm1..3) and dropout; post-norm by
/// default, pre-norm with <c>normFirst</c>.
/// </summary>
public sealed class TransformerDecoderLayer : Module
{
    /// <summary>Creates the layer.</summary>
    public TransformerDecoderLayer(int dModel, int nHead, int dimFeedforward = 2048, double dropout = 0.1,
        TransformerActivation activation = TransformerActivation.Relu, double layerNormEps = 1e-5, bool batchFirst = false, bool normFirst = false,
        DType dtype = DType.Float32, Generator? generator = null)
    {
        SelfAttn = RegisterModule("self_attn", new MultiheadAttention(dModel, nHead, dropout, batchFirst: batchFirst, dtype: dtype, generator: generator));
        MultiheadAttn = RegisterModule("multihead_attn", new MultiheadAttention(dModel, nHead, dropout, batchFirst: batchFirst, dtype: dtype, generator: generator));
        Linear1 = RegisterModule("linear1", new Linear(dModel, dimFeedforward, dtype: dtype, generator: generator));
        Dropout = RegisterModule("dropout", new Dropout(dropout));
        Linear2 = RegisterModule("linear2", new Linear(dimFeedforward, dModel, dtype: dtype, generator: generator));
        Norm1 = RegisterModule("norm1", new LayerNorm(dModel, layerNormEps, dtype: dtype));
        Norm2 = RegisterModule("norm2", new LayerNorm(dModel, layerNormEps, dtype: dtype));
        Norm3 = RegisterModule("norm3", new LayerNorm(dModel, layerNormEps, dtype: dtype));
        Dropout1 = RegisterModule("dropout1", new Dropout(dropout));
        Dropout2 = RegisterModule("dropout2", new Dropout(dropout));
        Dropout3 = RegisterModule("dropout3", new Dropout(dropout));
        (Activation, NormFirst) = (activation, normFirst);
    }

    /// <summary>The masked self-attention block.</summary>
    public MultiheadAttention SelfAttn { get; }

    /// <summary>The attention over the memory.</summary>
    public MultiheadAttention MultiheadAttn { get; }

    /// <summary>The first feed-forward layer.</summary>
    public Linear Linear1 { get; }

    /// <summary>Dropout inside the feed-forward block.</summary>
    public Dropout Dropout { get; }

    /// <summary>The second feed-forward layer.</summary>
    public Linear Linear2 { get; }

    /// <summary>The norm around self-attention.</summary>
    public LayerNorm Norm1 { get; }

    /// <summary>The norm around memory attention.</summary>
    public LayerNorm Norm2 { get; }

    /// <summary>The norm around the feed-forward block.</summary>
    public LayerNorm Norm3 { get; }

    /// <summary>Dropout on the self-attention output.</summary>
    public Dropout Dropout1 { get; }

    /// <summary>Dropout on the memory-attention output.</summary>
    public Dropout Dropout2 { get; }

    /// <summary>Dropout on the feed-forward output.</summary>
    public Dropout Dropout3 { get; }

    /// <summary>The feed-forward nonlinearity.</summary>
    public TransformerActivation Activation { get; }

    /// <summary>True for pre-norm.</summary>
    public bool NormFirst { get; }

    /// <summary>
    /// Runs the layer on the target sequence <paramref name="tgt"/> attending to <paramref name="memory"/>; masks as in
    /// <see cref="MultiheadAttention.Call(Tensor, Tensor, Tensor, Tensor?, bool, Tensor?, bool)"/> (use
    /// <see cref="Functional.CausalMask"/> for <paramref name="tgtMask"/>).
    /// </summary>
    public Tensor Call(Tensor tgt, Tensor memory, Tensor? tgtMask = null, Tensor? memoryMask = null, Tensor? tgtKeyPaddingMask = null,
        Tensor? memoryKeyPaddingMask = null)
    {
        Guard.NotNull(tgt, TypeName, nameof(tgt));
        Guard.NotNull(memory, TypeName, nameof(memory));
        return Invoke([tgt, memory], xs =>
        {
            var (x, mem) = (xs[0], xs[1]);
            Tensor Self(Tensor h) => Dropout1.Call(SelfAttn.Call(h, h, h, tgtKeyPaddingMask, needWeights: false, attnMask: tgtMask).Output);
            Tensor Cross(Tensor h) => Dropout2.Call(MultiheadAttn.Call(h, mem, mem, memoryKeyPaddingMask, needWeights: false, attnMask: memoryMask).Output);
            Tensor Ff(Tensor h) => Dropout3.Call(Linear2.Call(Dropout.Call(TransformerEncoderLayer.Activate(Linear1.Call(h), Activation))));
            if (NormFirst)
            {
                x = x + Self(Norm1.Call(x));
                x = x + Cross(Norm2.Call(x));
                return [x + Ff(Norm3.Call(x))];
            }
            x = Norm1.Call(x + Self(x));
            x = Norm2.Call(x + Cross(x));
            return [Norm3.Call(x + Ff(x))];
        })[0];
    }
}

/// <summary>A stack of encoder layers named "layers.0", "layers.1", ... with an optional final "norm" (torch.nn.TransformerEncoder).</summary>
public sealed class TransformerEncoder : Module
{
    /// <summary>Creates <paramref name="numLayers"/> layers from <paramref name="makeLayer"/> (PyTorch deep-copies one layer; here each is made fresh).</summary>
    public TransformerEncoder(Func<TransformerEncoderLayer> makeLayer, int numLayers, LayerNorm? norm = null)
    {
        Guard.NotNull(makeLayer, nameof(TransformerEncoder), nameof(makeLayer));
        if (numLayers <= 0) Guard.ThrowArg(nameof(TransformerEncoder), nameof(numLayers), $"must be positive, got {numLayers}.");
        Layers = RegisterModule("layers", new ModuleList(Enumerable.Range(0, numLayers).Select(_ => (Module)makeLayer())));
        if (norm is not null) Norm = RegisterModule("norm", norm);
    }

    /// <summary>The layers.</summary>
    public ModuleList Layers { get; }

    /// <summary>The final norm, or null.</summary>
    public LayerNorm? Norm { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Call(input);

    /// <summary>Runs every layer with the same masks, then the final norm.</summary>
    public Tensor Call(Tensor src, Tensor? mask = null, Tensor? srcKeyPaddingMask = null)
    {
        Guard.NotNull(src, TypeName, nameof(src));
        return Invoke([src], xs =>
        {
            var x = xs[0];
            foreach (var layer in Layers) x = ((TransformerEncoderLayer)layer).Call(x, mask, srcKeyPaddingMask);
            return [Norm is null ? x : Norm.Call(x)];
        })[0];
    }
}

/// <summary>A stack of decoder layers named "layers.0", "layers.1", ... with an optional final "norm" (torch.nn.TransformerDecoder).</summary>
public sealed class TransformerDecoder : Module
{
    /// <summary>Creates <paramref name="numLayers"/> layers from <paramref name="makeLayer"/> (PyTorch deep-copies one layer; here each is made fresh).</summary>
    public TransformerDecoder(Func<TransformerDecoderLayer> makeLayer, int numLayers, LayerNorm? norm = null)
    {
        Guard.NotNull(makeLayer, nameof(TransformerDecoder), nameof(makeLayer));
        if (numLayers <= 0) Guard.ThrowArg(nameof(TransformerDecoder), nameof(numLayers), $"must be positive, got {numLayers}.");
        Layers = RegisterModule("layers", new ModuleList(Enumerable.Range(0, numLayers).Select(_ => (Module)makeLayer())));
        if (norm is not null) Norm = RegisterModule("norm", norm);
    }

    /// <summary>The layers.</summary>
    public ModuleList Layers { get; }

    /// <summary>The final norm, or null.</summary>
    public LayerNorm? Norm { get; }

    /// <summary>Runs every layer on the target with the same memory and masks, then the final norm.</summary>
    public Tensor Call(Tensor tgt, Tensor memory, Tensor? tgtMask = null, Tensor? memoryMask = null, Tensor? tgtKeyPaddingMask = null,
        Tensor? memoryKeyPaddingMask = null)
    {
        Guard.NotNull(tgt, TypeName, nameof(tgt));
        Guard.NotNull(memory, TypeName, nameof(memory));
        return Invoke([tgt, memory], xs =>
        {
            var x = xs[0];
            foreach (var layer in Layers)
                x = ((TransformerDecoderLayer)layer).Call(x, xs[1], tgtMask, memoryMask, tgtKeyPaddingMask, memoryKeyPaddingMask);
            return [Norm is null ? x : Norm.Call(x)];
        })[0];
    }
}
