using GradFlow.Diagnostics;
using GradFlow.NN;
using GradFlow.Optim;
using static GradFlow.DoctorBench.ScenarioSet;
using K = GradFlow.Diagnostics.FindingKind;

namespace GradFlow.DoctorBench;

/// <summary>
/// The blind set: written from the finding kinds' one-line meanings only, without reading the detectors or their
/// thresholds, to measure the doctor on faults it has never seen. Each fault is reached another way than in the older
/// sets (a schedule, one layer, a data-loader bug, a hand-written loss); the expected kinds are what a practitioner
/// would name, with the reason beside each run. Healthy runs were checked to learn (<c>--rehearse</c>, no doctor).
/// </summary>
public static partial class Scenarios
{
    private static IEnumerable<Scenario> BlindSet() =>
    [
        // Healthy: a pre-activation MLP with LayerNorm and GELU, AdamW (decoupled decay 0.01), linear warm-up then cosine decay.
        new("healthy-layernorm-gelu-adamw-cosine", Blind, [], [], 150,
            s => DigitsRun(s, LayerNormMlp(s), m => new AdamW(m.Parameters(), 2e-3, weightDecay: 1e-2), batch: 32, schedule: o => WarmupCosine(o, 15, 150)), Seed: 91),
        // Healthy: a GRU trained with RMSprop, no clipping, on the whole-sequence sign task.
        new("healthy-gru-rmsprop", Blind, [], [], 200, s => Recurrent(s, new GRU(1, 24), 24, null, m => new RMSprop(m.Parameters(), 2e-3), length: 20, span: 20), Seed: 92),
        // Healthy: a residual CNN with BatchNorm under a one-cycle schedule (peak 0.1, momentum cycled), Nesterov SGD.
        new("healthy-resnet-onecycle", Blind, [], [], 120,
            s => DigitsRun(s, Tasks.Cnn(8, 2, residual: true, batchNorm: true), m => new SGD(m.Parameters(), 0.004, momentum: 0.9, nesterov: true), image: true,
                schedule: o => new OneCycleLR(o, 0.1, 120).Step), Seed: 93),
        // Healthy: a SiLU MLP with Kaiming init, batch 16, label smoothing 0.1 (the loss floor is well above 0), a step decay.
        new("healthy-silu-label-smoothing-b16", Blind, [], [], 200,
            s => DigitsRun(s, Tasks.Mlp([64, 128, 64, 10], () => new SiLU(), Tasks.Kaiming(94)), m => new SGD(m.Parameters(), 0.03, momentum: 0.9), batch: 16,
                schedule: o => new StepLR(o, 80, 0.3).Step, labelSmoothing: 0.1), Seed: 94),
        // Healthy: a pre-norm GELU transformer with AdamW, 20 warm-up steps then cosine decay to zero.
        new("healthy-prenorm-transformer-adamw", Blind, [], [], 200, s => BlindTransformer(s, 1e-3, warmup: 20, steps: 200), Seed: 95),

        // The warm-up lambda forgot its min(1, .): the rate keeps climbing linearly (x40 by step 200). The loss goes
        // down, then up and oscillates once the rate passes what the net tolerates: lr too high; the gradient growth
        // that follows is a consequence. Onset: the rehearsal's first step of rising loss.
        new("lr-warmup-never-caps", Blind, [K.LearningRateTooHigh], [K.ExplodingGradients, K.NonFiniteValues, K.DeadRelu], 200,
            s => DigitsRun(s, Tasks.Mlp([64, 128, 128, 10], () => new ReLU(), Tasks.Kaiming(96)), m => new SGD(m.Parameters(), 0.02, momentum: 0.9),
                schedule: o => new LambdaLR(o, t => (t + 1) / 5.0).Step), Onset: 100, Seed: 96),
        // One layer's init lost its scale (std 1e-4 where Kaiming gives 0.125): the signal and the gradient drop 1000x
        // through it at step 0. Poor initialisation; the earlier layers' small gradient is a vanishing consequence.
        new("init-one-layer-too-small", Blind, [K.PoorInitialisation], [K.VanishingGradients, K.NotLearning], 150,
            s => DigitsRun(s, OneSmallLayer(s), m => new SGD(m.Parameters(), 0.02, momentum: 0.9)), Seed: 97),
        // Raw readings with a large offset and scale (x*100 + 500, never standardised) into a ReLU MLP under Adam.
        new("inputs-offset-and-scale", Blind, [K.InputsNotNormalised],
            [K.LearningRateTooHigh, K.DeadRelu, K.ExplodingGradients, K.NotLearning, K.NonFiniteValues, K.PoorInitialisation], 120,
            s => DigitsRun(s, Tasks.Mlp([64, 128, 10], () => new ReLU()), m => new Adam(m.Parameters(), 1e-3), transform: x => x * 100.0 + 500.0), Seed: 98),
        // A data-loader bug: each batch carries the previous batch's labels, so inputs and targets are unrelated. The loss
        // stays at chance while the gradients are fine: not learning.
        new("labels-lag-one-batch", Blind, [K.NotLearning], [], 150,
            s => LaggedLabels(DigitsRun(s, LayerNormMlp(s), m => new AdamW(m.Parameters(), 1e-3))), Seed: 99),
        // The transformer's head ends in a softmax and the label-smoothed cross entropy applies its own log-softmax.
        new("softmax-into-smoothed-ce-transformer", Blind, [K.ProbabilitiesIntoLogitLoss], [K.NotLearning], 150,
            s => BlindTransformer(s, 1e-3, warmup: 0, steps: 150, softmax: true, labelSmoothing: 0.1), Seed: 100),
        // The LSTM's forget-gate bias set to -4 (sign flipped from the usual +1 trick): the cell forgets at every step, so
        // dL/dh_t dies within a few steps back and the signal at the start of a 40-step sequence is never reached.
        new("lstm-forget-gate-closed", Blind, [K.VanishingGradients], [K.NotLearning, K.PoorInitialisation, K.SaturatedActivations], 150,
            s => ClosedForgetGate(s), Seed: 101),
        // StepLR(10, 0.5) meant per epoch but stepped per batch: after 70 steps the rate is 100x below its start and the
        // loss stalls well above what the model reaches. Lr too low from the onset.
        new("steplr-stepped-per-batch", Blind, [K.LearningRateTooLow], [], 200,
            s => DigitsRun(s, Tasks.Mlp([64, 128, 64, 10], () => new ReLU()), m => new SGD(m.Parameters(), 0.05, momentum: 0.9),
                schedule: o => new StepLR(o, 10, 0.5).Step), Onset: 70, Seed: 102),
        // An L2 penalty added to the loss as 0.05 * sum(w^2) over every weight (meant as a mean): its pull on the weights is
        // far above the data's. Regularisation dominates; the collapse it causes (chance loss, dead units, no gradient) is
        // its consequence.
        new("l2-penalty-summed-into-loss", Blind, [K.RegularisationDominates], [K.NotLearning, K.DeadRelu, K.VanishingGradients, K.ZeroGradient], 150,
            s => L2InLoss(DigitsRun(s, Tasks.Mlp([64, 128, 64, 10], () => new ReLU()), m => new SGD(m.Parameters(), 0.05, momentum: 0.9)), 0.05), Seed: 103),
        // ZeroGrad called on the head only: the conv layers' gradients add up step after step.
        new("zero-grad-head-only", Blind, [K.GradientAccumulation], [K.LearningRateTooHigh, K.ExplodingGradients, K.DeadRelu, K.NonFiniteValues], 150,
            s => HeadOnlyZeroGrad(s), Seed: 104),
        // The batch of step 80 read in the wrong unit (values x1000), no clipping: one huge step pushes most ReLUs of the
        // hidden layers negative for every input, and they stay dead. The spike itself is a single event.
        new("outlier-batch-kills-relus", Blind, [K.DeadRelu], [K.ExplodingGradients, K.LearningRateTooHigh, K.NotLearning, K.NonFiniteValues, K.VanishingGradients], 150,
            s => OutlierAt(DigitsRun(s, Tasks.Mlp([64, 128, 128, 10], () => new ReLU()), m => new SGD(m.Parameters(), 0.05, momentum: 0.9)), 80), Onset: 80, Seed: 105),
        // Weights from N(0, 1) without the 1/sqrt(fan_in) (randn forgot its scale) in a 256-wide tanh MLP: pre-activations of
        // std ~15, tanh pinned at +-1. Both the init (weights against fan-in) and the saturation are what a human names.
        new("tanh-randn-unscaled", Blind, [K.SaturatedActivations, K.PoorInitialisation], [K.VanishingGradients, K.NotLearning], 150,
            s => DigitsRun(s, Tasks.Mlp([64, 256, 256, 10], () => new Tanh(), Tasks.Normal(1.0, seed: 106)), m => new SGD(m.Parameters(), 0.01, momentum: 0.9, nesterov: true)), Seed: 106),
        // A hand-written BCE, -(y log p + (1 - y) log(1 - p)) with p = sigmoid(z): once a logit passes ~17, p rounds to 1 in
        // float32 and 0 * log(0) is NaN. Onset: the rehearsal first shows a NaN loss in steps 31-40.
        new("bce-by-hand-nan", Blind, [K.NonFiniteValues], [], 200,
            s => HandBce(DigitsRun(s, Tasks.Mlp([64, 128, 10], () => new ReLU()), m => new Adam(m.Parameters(), 5e-2))), Onset: 31, Seed: 107),
        // Six sigmoid conv layers, default init: the gradient shrinks ~4x per layer towards the input.
        new("vanishing-sigmoid-cnn-6", Blind, [K.VanishingGradients], [K.PoorInitialisation, K.SaturatedActivations, K.NotLearning], 150,
            s => DigitsRun(s, SigmoidCnn(6, 8), m => new SGD(m.Parameters(), 0.05, momentum: 0.9), image: true), Seed: 108),
    ];

    private static Setup DigitsRun(ulong seed, Module model, Func<Module, Optimizer> optimizer, bool image = false, Func<Tensor, Tensor>? transform = null,
        int batch = 0, Func<Optimizer, Action>? schedule = null, double labelSmoothing = 0)
    {
        var o = optimizer(model);
        var step = schedule?.Invoke(o);
        return new Setup
        {
            Model = model, Optimizer = o, Classes = 10, Batch = Tasks.DigitsBatches(seed, batch > 0 ? batch : image ? 32 : 64, transform, image),
            AfterStep = step is null ? null : _ => step(),
            Loss = (output, target) => Functional.CrossEntropy(output, target, labelSmoothing: labelSmoothing),
        };
    }

    private static Action WarmupCosine(Optimizer o, int warmup, int total) =>
        new LambdaLR(o, t => t < warmup ? (t + 1.0) / warmup : 0.5 * (1 + Math.Cos(Math.PI * (t - warmup) / (total - warmup)))).Step;

    private static Sequential LayerNormMlp(ulong seed)
    {
        var gen = new Generator(seed);
        return new Sequential(new Linear(64, 128, generator: gen), new LayerNorm(128), new GELU(), new Linear(128, 64, generator: gen), new LayerNorm(64), new GELU(),
            new Linear(64, 10, generator: gen));
    }

    private static Setup BlindTransformer(ulong seed, double lr, int warmup, int steps, bool softmax = false, double labelSmoothing = 0)
    {
        Module model = new TokenClassifier(vocab: 12, dModel: 32, heads: 4, layers: 2, classes: 2, seed, normFirst: true, activation: TransformerActivation.Gelu);
        if (softmax) model = new Sequential(model, new Softmax(1));
        var optimizer = new AdamW(model.Parameters(), lr);
        Action? step = warmup > 0 ? WarmupCosine(optimizer, warmup, steps) : null;
        return new Setup
        {
            Model = model, Optimizer = optimizer, Batch = Tasks.ContainsTask(seed, vocab: 12, length: 8), Classes = 2, AfterStep = step is null ? null : _ => step(),
            Loss = (output, target) => Functional.CrossEntropy(output, target, labelSmoothing: labelSmoothing),
        };
    }

    private static Sequential OneSmallLayer(ulong seed)
    {
        var model = Tasks.Mlp([64, 128, 128, 128, 10], () => new ReLU(), Tasks.Kaiming(seed));
        Init.Normal(model.Modules().OfType<Linear>().ElementAt(1).Weight, 0, 1e-4, new Generator(seed + 1));
        return model;
    }

    private static Setup LaggedLabels(Setup setup)
    {
        long[]? previous = null;
        return new Setup
        {
            Model = setup.Model, Optimizer = setup.Optimizer, Classes = setup.Classes,
            Batch = s =>
            {
                var (x, y) = setup.Batch(s);
                var labels = previous ?? Array.ConvertAll(y.ToDoubleArray(), v => (long)v);
                previous = Array.ConvertAll(y.ToDoubleArray(), v => (long)v); // an array, not the tensor: the step's arena recycles that
                return (x, Tensor.FromArray(labels));
            },
        };
    }

    private static Setup ClosedForgetGate(ulong seed)
    {
        var lstm = new LSTM(1, 24);
        foreach (var (name, p) in lstm.NamedParameters())
        {
            if (!name.StartsWith("bias_", StringComparison.Ordinal)) continue;
            var values = p.ToDoubleArray();
            for (int i = 24; i < 48; i++) values[i] = -4; // gates in PyTorch's order i, f, g, o: the second quarter is the forget gate
            using (Autograd.NoGrad()) p.CopyFrom(Tensor.FromArray(values, p.Shape).To(p.DType));
        }
        return Recurrent(seed, lstm, 24, null, m => new Adam(m.Parameters(), 3e-3), length: 40, span: 4);
    }

    private static Setup L2InLoss(Setup setup, double lambda) => new()
    {
        Model = setup.Model, Optimizer = setup.Optimizer, Batch = setup.Batch, Classes = setup.Classes,
        Loss = (output, y) =>
        {
            var penalty = setup.Model.NamedParameters().Where(p => p.Name.EndsWith("weight", StringComparison.Ordinal))
                .Select(p => (p.Parameter * p.Parameter).Sum()).Aggregate((a, b) => a + b);
            return Functional.CrossEntropy(output, y) + penalty * lambda;
        },
    };

    private static Setup HeadOnlyZeroGrad(ulong seed)
    {
        var model = (Sequential)Tasks.Cnn(8, 1, residual: false, batchNorm: false, seed: seed);
        var head = model.Modules().OfType<Linear>().Last();
        var batches = Tasks.DigitsBatches(seed, 32, image: true);
        return new Setup
        {
            Model = model, Optimizer = new Adam(model.Parameters(), 1e-3), Classes = 10, ZeroGrad = false,
            Batch = s =>
            {
                head.ZeroGrad();
                return batches(s);
            },
        };
    }

    private static Setup OutlierAt(Setup setup, int at) => new()
    {
        Model = setup.Model, Optimizer = setup.Optimizer, Classes = setup.Classes,
        Batch = s =>
        {
            var (x, y) = setup.Batch(s);
            if (s != at) return (x, y);
            var values = x.ToDoubleArray();
            for (int i = 0; i < values.Length; i++) values[i] *= 1e3; // the whole batch read in the wrong unit
            return (Tensor.FromArray(values, x.Shape).To(x.DType), y);
        },
    };

    private static Setup HandBce(Setup setup) => new()
    {
        Model = setup.Model, Optimizer = setup.Optimizer, Batch = setup.Batch, Classes = setup.Classes,
        Loss = (output, y) =>
        {
            var labels = y.ToDoubleArray();
            var hot = new float[labels.Length * 10];
            for (int i = 0; i < labels.Length; i++) hot[i * 10 + (int)labels[i]] = 1;
            var t = Tensor.FromArray(hot, labels.Length, 10);
            var p = output.Sigmoid();
            return -(t * p.Log() + (1.0 - t) * (1.0 - p).Log()).Mean();
        },
    };

    private static Sequential SigmoidCnn(int layers, int channels)
    {
        var model = new Sequential(new Conv2d(1, channels, 3, padding: 1), new Sigmoid());
        for (int i = 1; i < layers; i++)
        {
            model.Add(new Conv2d(channels, channels, 3, padding: 1));
            model.Add(new Sigmoid());
        }
        model.Add(new MaxPool2d(2));
        model.Add(new Flatten());
        model.Add(new Linear(channels * 16, 10));
        return model;
    }
}
