namespace GradFlow.Diagnostics;

/// <summary>
/// The doctor's live look at the recorded graph over the first few steps (the static checks of UMLAUT, CHI'21): a
/// softmax or sigmoid output fed to a loss that applies its own (CrossEntropy, BinaryCrossEntropyWithLogits), and the
/// scale of the data entering the first layer. It watches only until <see cref="Done"/>; the doctor then detaches it,
/// so later steps pay nothing. Ops are matched by the tensors they pass, not by names of internal node types.
/// </summary>
internal sealed class GraphProbe : IAutogradObserver
{
    internal const double InputScale = 4;      // |mean| or std of the input above this: unnormalised
    internal const double InputTooSmall = 1e-2; // std below this (for data that is not constant)
    private const int MaxLossNodes = 512;       // the ops between a loss and the model's last layer are a handful; bounds a model with no parameters
    private static readonly HashSet<string> s_firstLayers = ["Linear", "Conv2d", "Lstm", "MatMul"];
    private readonly int _steps;
    private int _backwards;
    private bool _inputChecked, _lossReported;
    private Tensor? _sigmoidOut, _softmaxOut, _negOfSigmoid;

    public GraphProbe(int steps) => _steps = steps;

    public bool Done => _backwards >= _steps;

    /// <summary>
    /// Scopes of the Sigmoid/Tanh ops that lie between the loss and the nearest op with a parameter: the model's output
    /// activation or the loss's own (a hand-written BCE), not hidden layers. Learnt from the recorded graph at each backward.
    /// </summary>
    public HashSet<string> OutputActivationScopes { get; } = [];

    /// <summary>Findings made since the last drain (the doctor raises them at the next recorded step).</summary>
    public List<(FindingKind Kind, Func<long, Finding> Make)> Pending { get; } = [];

    void IAutogradObserver.OnForward(string op, ReadOnlySpan<Tensor> inputs, Tensor output, Node? node)
    {
        if (Done || Autograd.IsInBackward || !Autograd.IsGradEnabled) return;
        switch (op)
        {
            case "Sigmoid": _sigmoidOut = output; break;
            case "Softmax": _softmaxOut = output; break;
            case "Neg" when inputs.Length == 1 && ReferenceEquals(inputs[0], _sigmoidOut): _negOfSigmoid = output; break;
            case "CrossEntropy" when inputs.Length > 0 && (ReferenceEquals(inputs[0], _softmaxOut) || ReferenceEquals(inputs[0], _sigmoidOut)):
                LossOnProbabilities(ReferenceEquals(inputs[0], _softmaxOut) ? "Softmax" : "Sigmoid", "CrossEntropy", Autograd.CurrentScope);
                break;
            case "Softplus" when inputs.Length == 1 && ReferenceEquals(inputs[0], _negOfSigmoid):
                LossOnProbabilities("Sigmoid", "BinaryCrossEntropyWithLogits", Autograd.CurrentScope);
                break;
        }
        if (!_inputChecked && s_firstLayers.Contains(op) && inputs.Length > 0)
        {
            _inputChecked = true;
            var x = inputs[0];
            if (!x.RequiresGrad && x.DType.IsFloatingPoint() && x.NumEl > 1) CheckInput(x, Autograd.CurrentScope ?? "");
        }
    }

    void IAutogradObserver.OnBackward(Node node, ReadOnlySpan<Tensor?> gradOutputs, ReadOnlySpan<Tensor?> gradInputs) { }

    void IAutogradObserver.OnBackwardBegin(ReadOnlySpan<Tensor> roots)
    {
        if (Autograd.IsInBackward) return;
        _backwards++;
        _sigmoidOut = _softmaxOut = _negOfSigmoid = null; // references only within a step
        if (roots.Length > 0 && roots[0].GradFn is { } loss) FindOutputActivations(loss);
    }

    // Walks back from the loss and stops at every op with a parameter input (an AccumulateGrad edge): the activations
    // passed on the way feed no layer, so saturating them is a confident prediction, not a hidden layer gone flat.
    private void FindOutputActivations(Node loss)
    {
        var pending = new Stack<Node>();
        var seen = new HashSet<Node>(ReferenceEqualityComparer.Instance);
        pending.Push(loss);
        while (pending.Count > 0 && seen.Count < MaxLossNodes)
        {
            var node = pending.Pop();
            if (!seen.Add(node)) continue;
            var next = node.NextEdges;
            bool parameterised = false;
            foreach (var e in next) parameterised |= e.Function is AccumulateGrad;
            if (parameterised) continue;
            if (node.Name is "SigmoidBackward" or "TanhBackward") OutputActivationScopes.Add(node.Scope ?? "");
            foreach (var e in next) if (e.Function is { } f) pending.Push(f);
        }
    }

    // Every example of the batch equal to the first: the output cannot depend on the input.
    private static bool SameExamples(double[] v, int batch)
    {
        int size = v.Length / batch;
        for (int b = 1; b < batch; b++)
            if (!v.AsSpan(b * size, size).SequenceEqual(v.AsSpan(0, size))) return false;
        return true;
    }

    private void ConstantInputs(Tensor x, string scope) => Pending.Add((FindingKind.NotLearning, step => new Finding
    {
        Kind = FindingKind.NotLearning, Severity = Severity.Error,
        Title = $"not learning: all {x.Shape[0]} examples of the batch are the same input",
        Layers = scope.Length == 0 ? [] : [scope], FirstStep = step, LastStep = step, Confidence = 1,
        Evidence = [new Evidence("examples of the first batch that differ from its first example", 0, 1, "derivation: identical inputs give identical outputs (DOCTOR.md)")],
        Explanation = "Every example reaching the first layer is identical, so the network gives the same output whatever the label: " +
                      "the best it can do is predict the labels' average, and the loss stays near chance. The data pipeline is feeding " +
                      "a constant (a transform that zeroes or overwrites the input, the wrong tensor, a broadcast of one example).",
        Fixes =
        [
            new Fix(1, "print a few inputs of a batch, and their mean and std per feature, after every transform", "the step that makes them constant shows up"),
            new Fix(2, "check that the batch is built from the examples' inputs, not from one of them or from the labels", "a wrong index or tensor is the usual cause"),
        ],
    }));

    private void LossOnProbabilities(string producer, string loss, string? scope)
    {
        if (_lossReported) return;
        _lossReported = true;
        Pending.Add((FindingKind.ProbabilitiesIntoLogitLoss, step => new Finding
        {
            Kind = FindingKind.ProbabilitiesIntoLogitLoss, Severity = Severity.Error,
            Title = $"{producer} output fed to {loss}, which applies its own {(loss == "CrossEntropy" ? "log-softmax" : "sigmoid")}",
            Layers = scope is null ? [] : [scope], FirstStep = step, LastStep = step, Confidence = 1,
            Evidence = [new Evidence($"{loss}'s input was produced by {producer}", 1, double.NaN, "recorded graph (UMLAUT CHI'21 static check)")],
            Explanation = $"{loss} expects raw scores (logits) and turns them into probabilities itself. Given probabilities instead, it " +
                          $"squashes them a second time: the outputs can only span a narrow range, the loss cannot approach zero and the " +
                          $"gradients are much weaker than they should be.",
            Fixes =
            [
                new Fix(1, $"remove the final {producer} from the model and pass its input (the logits) to {loss}", "the loss then sees the scores it expects"),
                new Fix(2, $"keep {producer} only where probabilities are wanted, at prediction time", "the arg-max is the same with or without it"),
            ],
        }));
    }

    private void CheckInput(Tensor x, string scope)
    {
        var v = x.ToDoubleArray();
        if (x.Rank >= 2 && x.Shape[0] >= 2 && SameExamples(v, (int)x.Shape[0]))
        {
            ConstantInputs(x, scope);
            return;
        }
        double mean = v.Average(), squares = 0, max = 0;
        foreach (double d in v) { squares += (d - mean) * (d - mean); max = Math.Max(max, Math.Abs(d)); }
        double std = Math.Sqrt(squares / v.Length);
        bool large = std > InputScale || Math.Abs(mean) > InputScale;
        bool small = std > 0 && std < InputTooSmall && max < 10 * InputTooSmall;
        if (!large && !small) return;
        Pending.Add((FindingKind.InputsNotNormalised, step => new Finding
        {
            Kind = FindingKind.InputsNotNormalised, Severity = Severity.Warning,
            Title = large ? $"the inputs are not normalised: mean {mean:G3}, std {std:G3}, max |x| {max:G3}" : $"the inputs are scaled down to std {std:G2}",
            Layers = scope.Length == 0 ? [] : [scope], FirstStep = step, LastStep = step, Confidence = large ? 1 : 0.8,
            Evidence =
            [
                new Evidence("std of the first layer's input", std, large ? InputScale : InputTooSmall, "derivation: with default init a unit's pre-activation then exceeds |5| (DeepDiagnosis' saturation bound); UMLAUT CHI'21 range check"),
                new Evidence("|mean| of the first layer's input", Math.Abs(mean), InputScale, "as above"),
            ],
            Explanation = large
                ? "The first layer's weights are initialised for inputs of about unit scale. Inputs this large make its pre-activations " +
                  "huge: sigmoid and tanh units saturate, ReLU units die or explode, and the gradient for the first layer is out of scale with the others."
                : "The inputs are so small that the first layer's output barely depends on them; the network has to grow its first weights a lot before it can use the input.",
            Fixes =
            [
                new Fix(1, $"standardise each input feature: x' = (x - {mean:G3}) / {std:G3} (use the training set's mean and std; the Normalize transform does it)",
                    "inputs of zero mean and unit variance match the initialisation"),
                new Fix(2, "or add a BatchNorm/LayerNorm as the first layer", "it learns the scaling itself"),
            ],
        }));
    }
}
