namespace GradFlow.NN;

/// <summary>
/// y = x W^T + b (torch.nn.Linear). Parameters "weight" (out, in) and "bias" (out), initialised as
/// PyTorch: W ~ kaiming_uniform(a = sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)), and b ~ U(-1/sqrt(in), 1/sqrt(in)).
/// </summary>
public sealed class Linear : Module
{
    /// <summary>Creates the layer; <paramref name="dtype"/> Float64 gives a layer for gradient checks.</summary>
    public Linear(int inFeatures, int outFeatures, bool bias = true, DType dtype = DType.Float32, Generator? generator = null)
    {
        if (inFeatures < 0 || outFeatures < 0)
            Guard.Throw(nameof(Linear), $"feature counts must be non-negative, got in={inFeatures}, out={outFeatures}.");
        (InFeatures, OutFeatures) = (inFeatures, outFeatures);
        Weight = RegisterParameter("weight", Tensor.Zeros([outFeatures, inFeatures], dtype));
        if (bias) Bias = RegisterParameter("bias", Tensor.Zeros([outFeatures], dtype));
        ResetParameters(generator);
    }

    /// <summary>The number of input features.</summary>
    public int InFeatures { get; }

    /// <summary>The number of output features.</summary>
    public int OutFeatures { get; }

    /// <summary>The weight, (out, in).</summary>
    public Tensor Weight { get; }

    /// <summary>The bias, (out), or null.</summary>
    public Tensor? Bias { get; }

    /// <summary>Re-draws the parameters with PyTorch's default initialisation.</summary>
    public void ResetParameters(Generator? generator = null)
    {
        Init.KaimingUniform(Weight, a: Math.Sqrt(5), generator: generator);
        if (Bias is not null)
        {
            double bound = InFeatures > 0 ? 1 / Math.Sqrt(InFeatures) : 0;
            Init.Uniform(Bias, -bound, bound, generator);
        }
    }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        CheckInput(input, $"[*, {InFeatures}]", input.Rank >= 1 && input.Size(-1) == InFeatures);
        return Functional.Linear(input, Weight, Bias);
    }

    /// <inheritdoc />
    protected override string ExtraRepr() => $"in_features={InFeatures}, out_features={OutFeatures}, bias={Py(Bias is not null)}";
}

/// <summary>Returns its input (torch.nn.Identity).</summary>
public sealed class Identity : Module
{
    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => input;
}

/// <summary>Merges dims startDim..endDim (torch.nn.Flatten: by default all but the batch dim).</summary>
public sealed class Flatten(int startDim = 1, int endDim = -1) : Module
{
    /// <summary>The first merged dim.</summary>
    public int StartDim { get; } = startDim;

    /// <summary>The last merged dim.</summary>
    public int EndDim { get; } = endDim;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => input.Flatten(StartDim, EndDim);

    /// <inheritdoc />
    protected override string ExtraRepr() => $"start_dim={StartDim}, end_dim={EndDim}";
}

/// <summary>Dropout (torch.nn.Dropout): active in training mode only; seed it with a <see cref="Generator"/> for reproducible masks.</summary>
public sealed class Dropout : Module
{
    private readonly Generator? _generator;

    /// <summary>Creates the layer with drop probability <paramref name="p"/>.</summary>
    public Dropout(double p = 0.5, Generator? generator = null)
    {
        if (p < 0 || p > 1 || double.IsNaN(p)) Guard.ThrowArg(nameof(Dropout), nameof(p), $"p must be in [0, 1], got {p}.");
        P = p;
        _generator = generator;
    }

    /// <summary>The probability of zeroing an element.</summary>
    public double P { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.Dropout(input, P, Training, _generator);

    /// <inheritdoc />
    protected override string ExtraRepr() => FormattableString.Invariant($"p={P}, inplace=False");
}

/// <summary>
/// A lookup table of vectors (torch.nn.Embedding): "weight" ~ N(0, 1),
/// with the padding row zero and excluded from gradients.
/// </summary>
public sealed class Embedding : Module
{
    /// <summary>Creates the table.</summary>
    public Embedding(int numEmbeddings, int embeddingDim, int? paddingIdx = null, DType dtype = DType.Float32, Generator? generator = null)
    {
        if (numEmbeddings <= 0 || embeddingDim <= 0)
            Guard.Throw(nameof(Embedding), $"sizes must be positive, got num_embeddings={numEmbeddings}, embedding_dim={embeddingDim}.");
        if (paddingIdx is { } p)
        {
            if (p < -numEmbeddings || p >= numEmbeddings)
                Guard.ThrowArg(nameof(Embedding), nameof(paddingIdx), $"padding index {p} is out of range for {numEmbeddings} embeddings.");
            paddingIdx = p < 0 ? p + numEmbeddings : p;
        }
        (NumEmbeddings, EmbeddingDim, PaddingIdx) = (numEmbeddings, embeddingDim, paddingIdx);
        Weight = RegisterParameter("weight", Tensor.Zeros([numEmbeddings, embeddingDim], dtype));
        Init.Normal(Weight, generator: generator);
        if (PaddingIdx is { } pad) using (Autograd.NoGrad()) Weight.Select(0, pad).Zero();
    }

    /// <summary>The number of vectors.</summary>
    public int NumEmbeddings { get; }

    /// <summary>The vector size.</summary>
    public int EmbeddingDim { get; }

    /// <summary>The row that receives no gradient, if any.</summary>
    public int? PaddingIdx { get; }

    /// <summary>The table, (num_embeddings, embedding_dim).</summary>
    public Tensor Weight { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        CheckInput(input, "int64 indices of any shape", input.DType == DType.Int64);
        return Functional.Embedding(input, Weight, PaddingIdx);
    }

    /// <inheritdoc />
    protected override string ExtraRepr() => $"{NumEmbeddings}, {EmbeddingDim}" + (PaddingIdx is { } p ? $", padding_idx={p}" : "");
}
