using GradFlow.Diagnostics;
using GradFlow.NN;
using GradFlow.Optim;
using static GradFlow.DoctorBench.ScenarioSet;
using K = GradFlow.Diagnostics.FindingKind;

namespace GradFlow.DoctorBench;

/// <summary>
/// The third blind set, written under the same rule as the first two: its author read only the bench's own files, the
/// finding kinds' one-line meanings and the library's public API, never the detectors, their thresholds, the doctor's
/// documentation or its results on these runs, and never ran the doctor on them. Each fault is reached through a knob
/// the older sets do not turn (Adam's epsilon, SGD's momentum or maximize flag, a one-cycle peak, a BatchNorm scale
/// before tanh or ReLU, a conv init, an id column left in the features, a second sampler for the labels, a causal mask
/// with a first-token readout, a per-group weight decay, a flipped decay sign, a GRU over 100 steps, a standardisation
/// without epsilon). The expected kinds are what a practitioner would name, with the reason beside each run; healthy
/// runs were checked to learn and the onsets read from <c>--rehearse</c> (no monitor, no doctor).
/// </summary>
public static partial class Scenarios
{
    private static IEnumerable<Scenario> Blind3Set() =>
    [
        // Healthy: six SELU layers with LeCun-normal init (self-normalising), SGD with momentum.
        new("healthy-selu-6-lecun-sgd", Blind3, [], [], 200,
            s => DigitsRun(s, Tasks.Mlp([64, 96, 96, 96, 96, 96, 10], () => new SELU(), LeCun(s)), m => new SGD(m.Parameters(), 0.02, momentum: 0.9)), Seed: 151),
        // Healthy: a two-layer LSTM under AMSGrad, clipped at 1.
        new("healthy-lstm-2-layers-amsgrad", Blind3, [], [], 200,
            s => Recurrent(s, new LSTM(1, 24, numLayers: 2), 24, null, m => new Adam(m.Parameters(), 3e-3, amsgrad: true), clip: 1.0), Seed: 152),
        // Healthy: a post-norm ReLU transformer under Adam with cosine warm restarts every 50 steps.
        new("healthy-postnorm-transformer-restarts", Blind3, [], [], 200, s => RestartsTransformer(s), Seed: 153),
        // Healthy: a CNN with BatchNorm, LeakyReLU and average pooling, RMSprop.
        new("healthy-cnn-bn-leaky-avgpool-rmsprop", Blind3, [], [], 120,
            s => DigitsRun(s, LeakyAvgPoolCnn(s), m => new RMSprop(m.Parameters(), 1e-3), image: true), Seed: 154),
        // Healthy: LayerNorm and PReLU in an MLP, Adam with a little L2, batch 128.
        new("healthy-layernorm-prelu-adam-b128", Blind3, [], [], 150,
            s => DigitsRun(s, LayerNormPReluMlp(s), m => new Adam(m.Parameters(), 1e-3, weightDecay: 1e-4), batch: 128), Seed: 155),

        // Adam with eps = 1 (a config read "1e-8" as "1"): the step is lr * m / (sqrt(v) + 1), about lr * g instead of ~lr,
        // so the weights barely move while the gradients keep their size; the loss stays at chance. Too small updates.
        new("adam-eps-1-cnn", Blind3, [K.LearningRateTooLow], [K.NotLearning, K.ZeroGradient], 120,
            s => DigitsRun(s, Tasks.Cnn(8, 1, residual: false, batchNorm: false, seed: s), m => new Adam(m.Parameters(), 1e-3, eps: 1.0), image: true), Seed: 161),
        // SGD with momentum 0.999 at lr 0.1 (the effective rate lr / (1 - momentum) is 100): the velocity builds up, the
        // loss falls to ~0.8 by step 30, then swings (1.9, 0.7, 2.6) while the weights' norm grows 20x and the ReLUs die.
        // Onset: the rehearsal's first rise of the loss.
        new("sgd-momentum-0.999", Blind3, [K.LearningRateTooHigh], [K.ExplodingGradients, K.NonFiniteValues, K.DeadRelu], 150,
            s => DigitsRun(s, Tasks.Mlp([64, 128, 64, 10], () => new ReLU()), m => new SGD(m.Parameters(), 0.1, momentum: 0.999)), Onset: 30, Seed: 162),
        // BatchNorm before tanh with its scale initialised to 10 (fill_(10) for fill_(1)) in four layers: pre-activations
        // ~N(0, 100), so 85-89% of the tanh outputs sit beyond 0.96 for the whole run, and it learns slowly (90% at step 150).
        new("bn-scale-10-before-tanh", Blind3, [K.SaturatedActivations], [K.PoorInitialisation, K.VanishingGradients, K.NotLearning], 150,
            s => DigitsRun(s, BnTanhMlp(s, 10, 4), m => new SGD(m.Parameters(), 0.05, momentum: 0.9)), Seed: 163),
        // The MLP ends in a sigmoid and cross entropy applies its own log-softmax: the logits are squashed into (0, 1), so
        // the loss cannot fall below 1.46 (it is 1.73 at step 150 with 92% batch accuracy).
        new("sigmoid-into-ce", Blind3, [K.ProbabilitiesIntoLogitLoss], [K.NotLearning, K.SaturatedActivations], 150,
            s => DigitsRun(s, Tasks.Mlp([64, 128, 10], () => new ReLU()).Add(new Sigmoid()), m => new Adam(m.Parameters(), 1e-3)), Seed: 164),
        // Every BatchNorm scale initialised to 0 (the zero-init-residual trick applied to a plain, non-residual net): each
        // BN outputs its shift 0, every ReLU outputs 0 for every sample, and with no gradient through ReLU at 0 nothing recovers.
        new("bn-scale-0-plain-relu", Blind3, [K.DeadRelu], [K.ZeroGradient, K.NotLearning, K.VanishingGradients, K.PoorInitialisation], 150,
            s => DigitsRun(s, ZeroScaleBnMlp(s), m => new SGD(m.Parameters(), 0.05, momentum: 0.9)), Seed: 165),
        // Conv weights from N(0, 1) without the 1/sqrt(fan_in) scale in a plain four-conv ReLU CNN: each 8-channel 3x3 layer
        // multiplies the signal by ~6: the first loss is 192, the second 8800, and the ReLUs then stay dead at chance.
        new("cnn-conv-init-std-1", Blind3, [K.PoorInitialisation],
            [K.ExplodingGradients, K.LearningRateTooHigh, K.NonFiniteValues, K.DeadRelu, K.NotLearning, K.ZeroGradient], 120,
            s => DigitsRun(s, UnscaledConvCnn(s), m => new SGD(m.Parameters(), 0.01, momentum: 0.9), image: true), Seed: 166),
        // The sample id (the row number, 0..1436) left in the features as a 65th column: one input is three orders of
        // magnitude above the pixels in [0, 1]. The first losses are 22 and 106, then the first layer's ReLUs die at chance.
        new("id-column-in-features", Blind3, [K.InputsNotNormalised],
            [K.LearningRateTooHigh, K.ExplodingGradients, K.NonFiniteValues, K.DeadRelu, K.NotLearning, K.PoorInitialisation, K.ZeroGradient], 120,
            s => DigitsRun(s, Tasks.Mlp([65, 128, 64, 10], () => new ReLU()), m => new SGD(m.Parameters(), 0.01, momentum: 0.9), transform: WithIdColumn), Seed: 167),
        // Inputs and labels drawn by two independently seeded samplers (two shuffled loaders zipped): each batch's labels
        // belong to other images, so the loss stays at chance while the gradients are of the usual size.
        new("labels-from-second-sampler", Blind3, [K.NotLearning], [], 150,
            s => SecondSamplerLabels(DigitsRun(s, Tasks.Cnn(8, 1, residual: false, batchNorm: false, seed: s), m => new Adam(m.Parameters(), 1e-3), image: true), s),
            Seed: 168),
        // A transformer with a causal mask that reads its class from the first position (a CLS readout without a CLS
        // token): that position attends only to itself, so the model sees one token of sixteen; the loss stays at 0.65-0.70.
        new("causal-mask-first-token-readout", Blind3, [K.NotLearning], [], 150, s => FirstTokenRun(s), Seed: 169),
        // Per-group options with the norm group's weight decay typed 2 (for 2e-5): SGD shrinks the LayerNorm scales (norm
        // 11 -> 0.1-0.7, held where the decay matches the loss's pull) and the loss stays at 1.8-2.3 for the whole run.
        new("norm-group-decay-2", Blind3, [K.RegularisationDominates], [K.NotLearning, K.VanishingGradients, K.DeadRelu, K.ZeroGradient], 150,
            s => NormGroupDecay(s, 2.0), Seed: 170),
        // SGD with maximize = true (gradient ascent, a copied option): the loss rises from the first step, is 1e34 by step 30
        // and NaN after. Of the kinds, a diverging loss is the rate's.
        new("sgd-maximize", Blind3, [K.LearningRateTooHigh], [K.ExplodingGradients, K.NonFiniteValues, K.DeadRelu, K.ZeroGradient], 150,
            s => DigitsRun(s, Tasks.Mlp([64, 128, 64, 10], () => new ReLU()), m => new SGD(m.Parameters(), 0.05, momentum: 0.9, maximize: true)), Seed: 171),
        // A hand-written decoupled decay with its sign flipped (p *= 1 + lr * wd, lr * wd = 0.03): every parameter grows 3%
        // a step and the gradient's norm with them (0.1 at step 1, 1.6 at 50, 8 at 100, 320 at 150). The loss turns up at
        // step ~50 (to 770 by 150, the batch accuracy still 96%). Onset: that turn.
        new("decay-sign-flipped", Blind3, [K.ExplodingGradients], [K.LearningRateTooHigh, K.NonFiniteValues, K.DeadRelu], 150,
            s => Inflating(DigitsRun(s, Tasks.Mlp([64, 128, 128, 10], () => new ReLU()), m => new Adam(m.Parameters(), 1e-3)), 1.03), Onset: 50, Seed: 172),
        // A one-cycle schedule whose peak was typed 0.5 for 5e-3 under Adam: the loss falls to ~1 by step 20, then rises to
        // 1.8 as the rate climbs 100x too high (step 36) and 90% of the ReLUs die. Onset: the rehearsal's first rise.
        new("onecycle-peak-100x-adam", Blind3, [K.LearningRateTooHigh], [K.ExplodingGradients, K.NonFiniteValues, K.DeadRelu, K.NotLearning, K.ZeroGradient], 120,
            s => DigitsRun(s, Tasks.Cnn(8, 1, residual: false, batchNorm: false, seed: s), m => new Adam(m.Parameters(), 1e-3), image: true,
                schedule: o => new OneCycleLR(o, 0.5, 120).Step), Onset: 20, Seed: 173),
        // A GRU over 100 steps whose label depends on the first 3: with its update gates at ~0.5 the gradient through time
        // shrinks at each step (dL/dx is 3e-3 at the last step, 2e-12 at step 50, 7e-21 at the first) and the loss stays at chance.
        new("gru-100-steps-signal-at-start", Blind3, [K.VanishingGradients], [K.NotLearning], 150,
            s => Recurrent(s, new GRU(1, 16), 16, null, m => new Adam(m.Parameters(), 2e-3), length: 100, span: 3), Seed: 174),
        // Features standardised as (x - mean) / std with no epsilon: the Digits columns that are always 0 give 0 / 0, so every
        // sample carries NaN and the loss is NaN from step 1.
        new("standardise-without-eps", Blind3, [K.NonFiniteValues], [K.InputsNotNormalised], 100,
            s => DigitsRun(s, Tasks.Mlp([64, 128, 64, 10], () => new ReLU()), m => new Adam(m.Parameters(), 1e-3), transform: StandardiseNoEps), Seed: 175),
    ];

    // LeCun normal: N(0, 1 / fan_in), zero bias (SELU's init).
    private static Action<Linear> LeCun(ulong seed)
    {
        var gen = new Generator(seed);
        return l =>
        {
            Init.Normal(l.Weight, 0, 1 / Math.Sqrt(l.Weight.Size(1)), gen);
            if (l.Bias is { } b) Init.Zeros(b);
        };
    }

    private static Setup RestartsTransformer(ulong seed)
    {
        var model = new TokenClassifier(vocab: 12, dModel: 32, heads: 4, layers: 2, classes: 2, seed);
        var optimizer = new Adam(model.Parameters(), 1e-3);
        var schedule = new CosineAnnealingWarmRestarts(optimizer, 50, etaMin: 1e-4);
        return new Setup { Model = model, Optimizer = optimizer, Batch = Tasks.ContainsTask(seed, vocab: 12, length: 8), Classes = 2, AfterStep = _ => schedule.Step() };
    }

    private static Sequential LeakyAvgPoolCnn(ulong seed)
    {
        var gen = new Generator(seed);
        return new Sequential(
            new Conv2d(1, 12, 3, padding: 1), new BatchNorm2d(12), new LeakyReLU(0.05),
            new Conv2d(12, 12, 3, padding: 1), new BatchNorm2d(12), new LeakyReLU(0.05),
            new AvgPool2d(2), new Flatten(), new Linear(12 * 16, 10, generator: gen));
    }

    private static Sequential LayerNormPReluMlp(ulong seed)
    {
        var gen = new Generator(seed);
        return new Sequential(new Linear(64, 128, generator: gen), new LayerNorm(128), new PReLU(), new Linear(128, 64, generator: gen), new LayerNorm(64), new PReLU(),
            new Linear(64, 10, generator: gen));
    }

    private static Sequential BnTanhMlp(ulong seed, double scale, int layers)
    {
        var gen = new Generator(seed);
        var model = new Sequential(new Linear(64, 64, generator: gen), new BatchNorm1d(64), new Tanh());
        for (int i = 1; i < layers; i++) model.Add(new Linear(64, 64, generator: gen)).Add(new BatchNorm1d(64)).Add(new Tanh());
        model.Add(new Linear(64, 10, generator: gen));
        foreach (var bn in model.Modules().OfType<BatchNorm1d>()) Init.Constant(bn.Weight!, scale);
        return model;
    }

    private static Sequential ZeroScaleBnMlp(ulong seed)
    {
        var model = Tasks.Mlp([64, 128, 128, 10], () => new ReLU(), Tasks.Kaiming(seed), batchNorm: true);
        foreach (var bn in model.Modules().OfType<BatchNorm1d>()) Init.Zeros(bn.Weight!);
        return model;
    }

    private static Module UnscaledConvCnn(ulong seed)
    {
        var model = Tasks.Cnn(8, 3, residual: false, batchNorm: false, seed: seed);
        var gen = new Generator(seed + 1);
        foreach (var conv in model.Modules().OfType<Conv2d>()) Init.Normal(conv.Weight, 0, 1, gen);
        return model;
    }

    private static Tensor WithIdColumn(Tensor x)
    {
        int n = x.Size(0);
        var ids = Tensor.FromArray(Enumerable.Range(0, n).Select(i => (float)i).ToArray(), n, 1).To(x.DType);
        return Tensor.Cat([x, ids], 1);
    }

    private static Setup SecondSamplerLabels(Setup setup, ulong seed)
    {
        var labels = Tasks.DigitsBatches(seed + 1000, 32, image: true);
        return new Setup
        {
            Model = setup.Model, Optimizer = setup.Optimizer, Classes = setup.Classes,
            Batch = s => (setup.Batch(s).X, labels(s).Y),
        };
    }

    private static Setup FirstTokenRun(ulong seed)
    {
        var model = new FirstTokenClassifier(vocab: 24, dModel: 32, heads: 4, layers: 2, classes: 2, length: 16, seed);
        return new Setup { Model = model, Optimizer = new Adam(model.Parameters(), 1e-3), Batch = Tasks.ContainsTask(seed, vocab: 24, length: 16), Classes = 2 };
    }

    private static Setup NormGroupDecay(ulong seed, double decay)
    {
        var gen = new Generator(seed);
        var model = new Sequential(new Linear(64, 128, generator: gen), new LayerNorm(128), new ReLU(), new Linear(128, 64, generator: gen), new LayerNorm(64), new ReLU(),
            new Linear(64, 10, generator: gen));
        var norms = model.Modules().OfType<LayerNorm>().SelectMany(n => n.Parameters()).ToList();
        var rest = model.Parameters().Where(p => !norms.Any(q => ReferenceEquals(p, q))).ToList();
        var optimizer = new SGD([new ParamGroup(rest), new ParamGroup(norms, new Dictionary<string, double> { ["weight_decay"] = decay })], 0.05, momentum: 0.9);
        return new Setup { Model = model, Optimizer = optimizer, Batch = Tasks.DigitsBatches(seed), Classes = 10 };
    }

    // Every parameter multiplied by `factor` after each step (a decoupled decay whose sign was flipped).
    private static Setup Inflating(Setup setup, double factor) => new()
    {
        Model = setup.Model, Optimizer = setup.Optimizer, Batch = setup.Batch, Classes = setup.Classes, Loss = setup.Loss,
        AfterStep = _ =>
        {
            using (Autograd.NoGrad())
                foreach (var p in setup.Model.Parameters()) p.CopyFrom(p * factor);
        },
    };

    private static Tensor StandardiseNoEps(Tensor x) => (x - x.Mean(0, keepDim: true)) / x.Std([0], keepDim: true);
}

/// <summary>A transformer under a causal mask whose class is read from the first position (which sees only itself).</summary>
public sealed class FirstTokenClassifier : Module
{
    private readonly Tensor _mask;

    public FirstTokenClassifier(int vocab, int dModel, int heads, int layers, int classes, int length, ulong seed)
    {
        var gen = new Generator(seed);
        Embed = RegisterModule("embed", new Embedding(vocab, dModel, generator: gen));
        Encoder = RegisterModule("encoder", new TransformerEncoder(
            () => new TransformerEncoderLayer(dModel, heads, dimFeedforward: 2 * dModel, dropout: 0, batchFirst: true, generator: gen), layers));
        Head = RegisterModule("head", new Linear(dModel, classes, generator: gen));
        _mask = Functional.CausalMask(length, length);
    }

    public Embedding Embed { get; }
    public TransformerEncoder Encoder { get; }
    public Linear Head { get; }

    public override Tensor Forward(Tensor input) => Head.Call(Encoder.Call(Embed.Call(input), _mask).Select(1, 0));
}
