using GradFlow.NN;

namespace GradFlow.Training;

public sealed partial record ModelSpec
{
    /// <summary>
    /// Builds the model: a <see cref="Sequential"/> of named blocks ("input", "conv1", "pool1", "fc1", ..., "out"), each
    /// hidden block a Sequential of "linear"/"conv", "norm", "act" and "dropout" (wrapped in <see cref="NN.Residual"/>
    /// when asked and shape-preserving). Weights are drawn from <paramref name="generator"/>, dropout masks from
    /// <paramref name="dropoutGenerator"/> (both <see cref="Generator.Default"/> when null), so a seed fixes every bit.
    /// </summary>
    public Module Build(Generator? generator = null, Generator? dropoutGenerator = null)
    {
        Validate("spec");
        var g = generator ?? Generator.Default;
        var blocks = new List<(string, Module)> { ("input", new InputReshape([.. InputShape])) };
        var shape = InputShape.ToArray();
        int convs = 0, pools = 0, linears = 0;
        for (int i = 0; i < Layers.Count; i++)
        {
            var l = Layers[i];
            bool last = i == Layers.Count - 1;
            if (l.Kind == LayerKind.Pool)
            {
                blocks.Add(($"pool{++pools}", new MaxPool2d(l.Size)));
                shape = [shape[0], shape[1] / l.Size, shape[2] / l.Size];
                continue;
            }
            if (l.Kind == LayerKind.Linear && shape.Length == 3)
            {
                blocks.Add(("flatten", new Flatten()));
                shape = [shape[0] * shape[1] * shape[2]];
            }
            string act = l.Activation ?? Activation;
            Module layer;
            int[] outShape;
            if (l.Kind == LayerKind.Conv)
            {
                var conv = new Conv2d(shape[0], l.Size, l.Kernel, padding: l.Kernel / 2, generator: g);
                Initialise(conv.Weight, conv.Bias, last ? null : act, g);
                (layer, outShape) = (conv, [l.Size, shape[1], shape[2]]);
            }
            else
            {
                var linear = new Linear(shape[0], l.Size, generator: g);
                Initialise(linear.Weight, linear.Bias, last ? null : act, g);
                (layer, outShape) = (linear, [l.Size]);
            }
            if (last)
            {
                blocks.Add(("out", layer));
                break;
            }
            var parts = new List<(string, Module)> { (l.Kind == LayerKind.Conv ? "conv" : "linear", layer) };
            switch (l.Norm ?? Norm)
            {
                case "batch": parts.Add(("norm", outShape.Length == 3 ? new BatchNorm2d(outShape[0]) : new BatchNorm1d(outShape[0]))); break;
                case "layer": parts.Add(("norm", new LayerNorm(outShape))); break;
            }
            parts.Add(("act", CreateActivation(act)));
            if ((l.Dropout ?? Dropout) is > 0 and var p) parts.Add(("dropout", new Dropout(p, dropoutGenerator)));
            Module block = new Sequential([.. parts]);
            if ((l.Residual ?? Residual) && outShape.SequenceEqual(shape)) block = new Residual(block);
            blocks.Add((l.Kind == LayerKind.Conv ? $"conv{++convs}" : $"fc{++linears}", block));
            shape = outShape;
        }
        return new Sequential([.. blocks]);
    }

    private static Module CreateActivation(string name) => name switch
    {
        "relu" => new ReLU(),
        "leaky_relu" => new LeakyReLU(),
        "tanh" => new Tanh(),
        "sigmoid" => new Sigmoid(),
        "gelu" => new GELU(),
        "elu" => new ELU(),
        "selu" => new SELU(),
        _ => new SiLU(),
    };

    // The gain each scheme scales by is the one for the activation that follows (1 for the output layer).
    private void Initialise(Tensor weight, Tensor? bias, string? activation, Generator g)
    {
        var nonlinearity = activation switch
        {
            "relu" or "gelu" or "elu" or "silu" => Nonlinearity.Relu,
            "leaky_relu" => Nonlinearity.LeakyRelu,
            "tanh" => Nonlinearity.Tanh,
            "selu" => Nonlinearity.Selu,
            "sigmoid" => Nonlinearity.Sigmoid,
            _ => Nonlinearity.Linear,
        };
        switch (Init)
        {
            case "default": return;
            case "he": NN.Init.KaimingNormal(weight, nonlinearity: nonlinearity, generator: g); break;
            case "xavier": NN.Init.XavierUniform(weight, NN.Init.CalculateGain(nonlinearity), g); break;
            case "orthogonal": NN.Init.Orthogonal(weight, NN.Init.CalculateGain(nonlinearity), g); break;
        }
        if (bias is not null) NN.Init.Zeros(bias);
    }

    /// <summary>Gives each example the spec's input shape: a flat row becomes [C, H, W] for a CNN, an image a row for an MLP.</summary>
    private sealed class InputReshape(int[] shape) : Module
    {
        private readonly int[] _shape = shape;

        public override Tensor Forward(Tensor input)
        {
            int features = _shape.Aggregate(1, (a, b) => a * b);
            if (input.Rank < 1 || input.NumEl != input.Size(0) * features)
                Guard.ThrowArg("ModelSpec input", nameof(input), $"the model takes examples of shape [{string.Join(", ", _shape)}] ({features} values), got a batch {Guard.Shape(input)}.");
            return input.Reshape([input.Size(0), .. _shape]);
        }
    }
}
