using GradFlow.Data;
using GradFlow.NN;

namespace GradFlow.DoctorBench;

/// <summary>The data the scenarios train on: Digits (embedded) and two synthetic sequence tasks.</summary>
public static class Tasks
{
    private static readonly Lazy<(Tensor X, Tensor Y)> s_digits = new(() =>
    {
        var (train, _) = Digits.Load(testFraction: 0.2, seed: 0);
        return (train.Inputs, train.Targets);
    });

    /// <summary>Digits training inputs [1437, 64] in [0, 1] and labels.</summary>
    public static (Tensor X, Tensor Y) Digits64 => s_digits.Value;

    /// <summary>Random mini-batches of Digits; <paramref name="transform"/> alters the inputs (a fault), <paramref name="image"/> shapes them [B, 1, 8, 8].</summary>
    public static Func<int, (Tensor X, Tensor Y)> DigitsBatches(ulong seed, int batch = 64, Func<Tensor, Tensor>? transform = null, bool image = false,
        bool shuffleLabels = false)
    {
        var (x, y) = Digits64;
        if (transform is not null) x = transform(x);
        if (shuffleLabels) y = y.IndexSelect(0, Tensor.FromArray(Array.ConvertAll(new Generator(seed + 99).Permutation(y.Size(0)), i => (long)i)));
        var gen = new Generator(seed);
        int n = x.Size(0);
        return _ =>
        {
            var idx = new long[batch];
            for (int i = 0; i < batch; i++) idx[i] = gen.NextInt64(n);
            var rows = Tensor.FromArray(idx);
            var xb = x.IndexSelect(0, rows);
            return (image ? xb.Reshape(batch, 1, 8, 8) : xb, y.IndexSelect(0, rows));
        };
    }

    /// <summary>
    /// Sequences [T, B, 1] of standard normal values; the label is 1 when the sum of the first <paramref name="span"/>
    /// values is positive (span = T: the whole sequence; span small: a long-range memory task).
    /// </summary>
    public static Func<int, (Tensor X, Tensor Y)> SignTask(ulong seed, int length, int span, int batch = 32)
    {
        var gen = new Generator(seed);
        return _ =>
        {
            var x = new float[length * batch];
            var y = new long[batch];
            for (int i = 0; i < x.Length; i++) x[i] = (float)gen.NextNormal();
            for (int b = 0; b < batch; b++)
            {
                double sum = 0;
                for (int t = 0; t < span; t++) sum += x[t * batch + b];
                y[b] = sum > 0 ? 1 : 0;
            }
            return (Tensor.FromArray(x, length, batch, 1), Tensor.FromArray(y));
        };
    }

    /// <summary>Token sequences [B, L] over a vocabulary; the label is 1 when token 0 occurs (attention finds it).</summary>
    public static Func<int, (Tensor X, Tensor Y)> ContainsTask(ulong seed, int vocab, int length, int batch = 32)
    {
        var gen = new Generator(seed);
        // P(token 0 absent) = (1 - 1/vocab)^length: about half for length ~ 0.7 vocab.
        return _ =>
        {
            var x = new long[batch * length];
            var y = new long[batch];
            for (int b = 0; b < batch; b++)
                for (int t = 0; t < length; t++)
                {
                    long token = gen.NextInt64(vocab);
                    x[b * length + t] = token;
                    if (token == 0) y[b] = 1;
                }
            return (Tensor.FromArray(x, batch, length), Tensor.FromArray(y));
        };
    }

    /// <summary>An MLP: Linear layers of the given widths with <paramref name="activation"/> between them.</summary>
    public static Sequential Mlp(int[] widths, Func<Module> activation, Action<Linear>? init = null, bool batchNorm = false)
    {
        var model = new Sequential();
        for (int i = 0; i + 1 < widths.Length; i++)
        {
            var linear = new Linear(widths[i], widths[i + 1]);
            init?.Invoke(linear);
            model.Add(linear);
            if (i + 2 < widths.Length)
            {
                if (batchNorm) model.Add(new BatchNorm1d(widths[i + 1]));
                model.Add(activation());
            }
        }
        return model;
    }

    /// <summary>
    /// A deep MLP of <paramref name="blocks"/> hidden blocks (Linear + activation) of one width, each wrapped in a
    /// residual connection when asked: the shape of the CLI's vanishing demo.
    /// </summary>
    public static Sequential Deep(int inputs, int width, int blocks, int classes, Func<Module> activation, bool residual)
    {
        var model = new Sequential(new Linear(inputs, width), activation());
        for (int i = 0; i < blocks; i++)
        {
            var block = new Sequential(new Linear(width, width), activation());
            model.Add(residual ? new Residual(block) : block);
        }
        model.Add(new Linear(width, classes));
        return model;
    }

    /// <summary>Re-draws a layer's weight from N(0, std) and sets its bias.</summary>
    public static Action<Linear> Normal(double std, double bias = 0, ulong seed = 7)
    {
        var gen = new Generator(seed);
        return l =>
        {
            Init.Normal(l.Weight, 0, std, gen);
            if (l.Bias is { } b) Init.Constant(b, bias);
        };
    }

    /// <summary>Every weight and bias zero: a symmetric start (a saddle of the loss).</summary>
    public static Action<Linear> Zeros() => l =>
    {
        Init.Zeros(l.Weight);
        if (l.Bias is { } b) Init.Zeros(b);
    };

    /// <summary>Kaiming (He) normal init for ReLU layers, zero bias.</summary>
    public static Action<Linear> Kaiming(ulong seed = 7)
    {
        var gen = new Generator(seed);
        return l =>
        {
            Init.KaimingNormal(l.Weight, generator: gen);
            if (l.Bias is { } b) Init.Zeros(b);
        };
    }

    /// <summary>Xavier normal init (tanh gain), zero bias.</summary>
    public static Action<Linear> Xavier(ulong seed = 7)
    {
        var gen = new Generator(seed);
        return l =>
        {
            Init.XavierNormal(l.Weight, gain: Init.CalculateGain(Nonlinearity.Tanh), generator: gen);
            if (l.Bias is { } b) Init.Zeros(b);
        };
    }

    /// <summary>A small CNN on [B, 1, 8, 8]: conv blocks (optionally residual with BatchNorm), then a linear head.</summary>
    public static Module Cnn(int channels, int blocks, bool residual, bool batchNorm, double? biasInit = null, ulong seed = 7)
    {
        var model = new Sequential(new Conv2d(1, channels, 3, padding: 1));
        if (batchNorm) model.Add(new BatchNorm2d(channels));
        model.Add(new ReLU());
        for (int i = 0; i < blocks; i++)
        {
            var block = new Sequential(new Conv2d(channels, channels, 3, padding: 1));
            if (batchNorm) block.Add(new BatchNorm2d(channels));
            block.Add(new ReLU());
            model.Add(residual ? new Residual(block) : block);
        }
        model.Add(new MaxPool2d(2));
        model.Add(new Flatten());
        model.Add(new Linear(channels * 16, 10));
        if (biasInit is { } b)
            foreach (var conv in model.Modules().OfType<Conv2d>())
                if (conv.Bias is { } bias) Init.Constant(bias, b);
        return model;
    }
}

/// <summary>A recurrent classifier: the RNN/LSTM's last output through a linear head.</summary>
public sealed class SequenceClassifier : Module
{
    public SequenceClassifier(Module recurrent, int hidden, int classes)
    {
        Recurrent = RegisterModule("rnn", recurrent);
        Head = RegisterModule("head", new Linear(hidden, classes));
    }

    public Module Recurrent { get; }
    public Linear Head { get; }

    public override Tensor Forward(Tensor input)
    {
        var output = Recurrent.Call(input); // [T, B, H]
        return Head.Call(output.Select(0, output.Size(0) - 1));
    }
}

/// <summary>A transformer classifier: embedding, encoder layers, mean over positions, a linear head.</summary>
public sealed class TokenClassifier : Module
{
    public TokenClassifier(int vocab, int dModel, int heads, int layers, int classes, ulong seed, bool normFirst = false,
        TransformerActivation activation = TransformerActivation.Relu)
    {
        var gen = new Generator(seed);
        Embed = RegisterModule("embed", new Embedding(vocab, dModel, generator: gen));
        Encoder = RegisterModule("encoder", new TransformerEncoder(
            () => new TransformerEncoderLayer(dModel, heads, dimFeedforward: 2 * dModel, dropout: 0, activation: activation, batchFirst: true,
                normFirst: normFirst, generator: gen), layers));
        Head = RegisterModule("head", new Linear(dModel, classes, generator: gen));
    }

    public Embedding Embed { get; }
    public TransformerEncoder Encoder { get; }
    public Linear Head { get; }

    public override Tensor Forward(Tensor input) => Head.Call(Encoder.Call(Embed.Call(input)).Mean(1));
}

/// <summary>A module from a function (a softmax at the end of a model, a scale).</summary>
public sealed class Lambda(Func<Tensor, Tensor> f) : Module
{
    public override Tensor Forward(Tensor input) => f(input);
}
