namespace GradFlow;

/// <summary>
/// The names ops record themselves under (<see cref="IAutogradObserver.OnForward"/>'s <c>op</c>), as constants: the ops,
/// the observers that pick ops by name (the monitor's activation policy), and exporters that map ops to another format
/// share them instead of repeating strings. A name is the Tensor method's (PyTorch's op in .NET casing); fused ops
/// that compute several report the inner ones too (an LSTM's gates as <see cref="Sigmoid"/> and <see cref="Tanh"/>).
/// </summary>
public static class OpNames
{
    /// <summary>a + b (Tensor.Add, operator +).</summary>
    public const string Add = "Add";

    /// <summary>a - b.</summary>
    public const string Sub = "Sub";

    /// <summary>a * b.</summary>
    public const string Mul = "Mul";

    /// <summary>a / b.</summary>
    public const string Div = "Div";

    /// <summary>-x.</summary>
    public const string Neg = "Neg";

    /// <summary>1 / x.</summary>
    public const string Reciprocal = "Reciprocal";

    /// <summary>x^p.</summary>
    public const string Pow = "Pow";

    /// <summary>e^x.</summary>
    public const string Exp = "Exp";

    /// <summary>ln x.</summary>
    public const string Log = "Log";

    /// <summary>sqrt x.</summary>
    public const string Sqrt = "Sqrt";

    /// <summary>|x|.</summary>
    public const string Abs = "Abs";

    /// <summary>sin x.</summary>
    public const string Sin = "Sin";

    /// <summary>cos x.</summary>
    public const string Cos = "Cos";

    /// <summary>tanh x: a saturating activation.</summary>
    public const string Tanh = "Tanh";

    /// <summary>1 / (1 + e^-x): a saturating activation.</summary>
    public const string Sigmoid = "Sigmoid";

    /// <summary>max(x, 0): a rectifier.</summary>
    public const string Relu = "Relu";

    /// <summary>sign x.</summary>
    public const string Sign = "Sign";

    /// <summary>x clamped to [min, max].</summary>
    public const string Clamp = "Clamp";

    /// <summary>the error function.</summary>
    public const string Erf = "Erf";

    /// <summary>log(1 + e^(beta x)) / beta.</summary>
    public const string Softplus = "Softplus";

    /// <summary>x == y (0/1).</summary>
    public const string Eq = "Eq";

    /// <summary>x != y.</summary>
    public const string Ne = "Ne";

    /// <summary>x &lt; y.</summary>
    public const string Lt = "Lt";

    /// <summary>x &lt;= y.</summary>
    public const string Le = "Le";

    /// <summary>x &gt; y.</summary>
    public const string Gt = "Gt";

    /// <summary>x &gt;= y.</summary>
    public const string Ge = "Ge";

    /// <summary>condition ? x : y.</summary>
    public const string Where = "Where";

    /// <summary>a sum over dims.</summary>
    public const string Sum = "Sum";

    /// <summary>a p-norm.</summary>
    public const string Norm = "Norm";

    /// <summary>a maximum (over all or along a dim).</summary>
    public const string Max = "Max";

    /// <summary>a minimum (over all or along a dim).</summary>
    public const string Min = "Min";

    /// <summary>softmax along a dim.</summary>
    public const string Softmax = "Softmax";

    /// <summary>log-softmax along a dim.</summary>
    public const string LogSoftmax = "LogSoftmax";

    /// <summary>fused log-softmax and negative log-likelihood.</summary>
    public const string CrossEntropy = "CrossEntropy";

    /// <summary>matrix product.</summary>
    public const string MatMul = "MatMul";

    /// <summary>x W^T + b, one node.</summary>
    public const string Linear = "Linear";

    /// <summary>layer normalisation, one node.</summary>
    public const string LayerNorm = "LayerNorm";

    /// <summary>softmax(q k^T / sqrt d) v, one node.</summary>
    public const string ScaledDotProductAttention = "ScaledDotProductAttention";

    /// <summary>an LSTM layer direction over a whole sequence, one node.</summary>
    public const string Lstm = "Lstm";

    /// <summary>2-d convolution.</summary>
    public const string Conv2d = "Conv2d";

    /// <summary>a 2-d convolution's input gradient (recorded under createGraph).</summary>
    public const string Conv2dBackwardInput = "Conv2dBackwardInput";

    /// <summary>a 2-d convolution's weight gradient (recorded under createGraph).</summary>
    public const string Conv2dBackwardWeight = "Conv2dBackwardWeight";

    /// <summary>2-d max pooling.</summary>
    public const string MaxPool2d = "MaxPool2d";

    /// <summary>2-d max pooling's input gradient (recorded under createGraph).</summary>
    public const string MaxPool2dBackward = "MaxPool2dBackward";

    /// <summary>ReLU's input gradient, g where the output is positive (recorded under createGraph; PyTorch's threshold_backward).</summary>
    public const string ThresholdBackward = "ThresholdBackward";

    /// <summary>im2col: sliding blocks to columns.</summary>
    public const string Unfold = "Unfold";

    /// <summary>col2im: columns summed back into an image.</summary>
    public const string Fold = "Fold";

    /// <summary>a reshape (a view when it can be).</summary>
    public const string Reshape = "Reshape";

    /// <summary>two dims swapped.</summary>
    public const string Transpose = "Transpose";

    /// <summary>dims reordered.</summary>
    public const string Permute = "Permute";

    /// <summary>broadcast to a shape.</summary>
    public const string Expand = "Expand";

    /// <summary>a range along a dim.</summary>
    public const string Slice = "Slice";

    /// <summary>a copy.</summary>
    public const string Clone = "Clone";

    /// <summary>a dtype conversion.</summary>
    public const string To = "To";

    /// <summary>an embedding lookup's rows.</summary>
    public const string EmbedSlice = "EmbedSlice";

    /// <summary>concatenation.</summary>
    public const string Cat = "Cat";

    /// <summary>a split into chunks, one node.</summary>
    public const string Split = "Split";

    /// <summary>values gathered along a dim.</summary>
    public const string Gather = "Gather";

    /// <summary>values written along a dim.</summary>
    public const string Scatter = "Scatter";

    /// <summary>values added along a dim.</summary>
    public const string ScatterAdd = "ScatterAdd";

    /// <summary>rows selected by index.</summary>
    public const string IndexSelect = "IndexSelect";

    /// <summary>rows added by index.</summary>
    public const string IndexAdd = "IndexAdd";

    /// <summary>the identity a module's full backward hook records around its call.</summary>
    public const string BackwardHook = "BackwardHook";
}
