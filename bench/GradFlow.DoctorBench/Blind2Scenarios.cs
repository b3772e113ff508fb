using GradFlow.Diagnostics;
using GradFlow.NN;
using GradFlow.Optim;
using static GradFlow.DoctorBench.ScenarioSet;
using K = GradFlow.Diagnostics.FindingKind;

namespace GradFlow.DoctorBench;

/// <summary>
/// The second blind set: written, like the first, from the finding kinds' one-line meanings only, without reading the
/// detectors, their thresholds or the doctor's results on these runs, and never run with the doctor by its author. Each
/// fault is reached through a knob the older sets do not turn (the clipping threshold, Adam's beta2,
/// the loss's reduction or scale, a normalisation layer's affine init, a schedule's length, one bad sample, a constant
/// init, an accumulation period). The expected kinds are what a practitioner would name, with the reason beside each
/// run; healthy runs were checked to learn and the onsets read from <c>--rehearse</c> (no monitor, no doctor).
/// </summary>
public static partial class Scenarios
{
    private static IEnumerable<Scenario> Blind2Set() =>
    [
        // Healthy: a LeakyReLU MLP with Kaiming init under NAdam, cosine annealing to zero over the run.
        new("healthy-leakyrelu-nadam-cosine", Blind2, [], [], 150,
            s => DigitsRun(s, Tasks.Mlp([64, 128, 128, 10], () => new LeakyReLU(0.1), Tasks.Kaiming(121)), m => new NAdam(m.Parameters(), 2e-3),
                schedule: o => new CosineAnnealingLR(o, 150).Step), Seed: 121),
        // Healthy: a tanh RNN with an orthogonal recurrent matrix (spectral radius 1) under Adam, clipped at 1.
        new("healthy-rnn-tanh-orthogonal-adam", Blind2, [], [], 200, s => OrthogonalRnn(s, 1.0, m => new Adam(m.Parameters(), 2e-3), clip: 1.0), Seed: 122),
        // Healthy: a CNN with GroupNorm and ELU under RAdam.
        new("healthy-cnn-groupnorm-elu-radam", Blind2, [], [], 120,
            s => DigitsRun(s, GroupNormCnn(), m => new RAdam(m.Parameters(), 5e-3), image: true), Seed: 123),
        // Healthy: BatchNorm and dropout 0.2 in a wide MLP, SGD with momentum and a little L2, the rate halved at step 100.
        new("healthy-bn-dropout-sgd-step", Blind2, [], [], 200,
            s => DigitsRun(s, BnDropoutMlp(0.2, s), m => new SGD(m.Parameters(), 0.05, momentum: 0.9, weightDecay: 5e-4), schedule: o => new StepLR(o, 100, 0.5).Step),
            Seed: 124),
        // Healthy: token embeddings through a 1-d convolution and a max over positions, Adagrad.
        new("healthy-conv1d-tokens-adagrad", Blind2, [], [], 150, s => Conv1dTokens(s), Seed: 125),

        // Clipping meant as max_norm 1 typed as 1e-4: every step's gradient (norm ~0.25) is scaled down 2500x, so the weights
        // do not move and the loss stays at chance. The cause is the size of the updates: what a too-low rate looks like.
        new("clip-1e-4-freezes", Blind2, [K.LearningRateTooLow], [K.ZeroGradient, K.NotLearning], 150,
            s => WithClip(DigitsRun(s, Tasks.Mlp([64, 128, 64, 10], () => new ReLU()), m => new SGD(m.Parameters(), 0.05, momentum: 0.9)), 1e-4), Seed: 131),
        // Dropout p = 0.95 after each hidden layer (meant as keep-probability): 5% of the units survive each pass and the
        // loss stays at chance for the whole run, with gradients of the usual size. Not learning, from the model.
        new("dropout-0.95", Blind2, [K.NotLearning], [], 150,
            s => DigitsRun(s, DropoutMlp(0.95, s), m => new SGD(m.Parameters(), 0.05, momentum: 0.9)), Seed: 132),
        // Twelve residual ReLU blocks with Kaiming init and no normalisation or branch scaling: each block about doubles the
        // signal's variance, so the first loss is ~560 and the gradient norm ~2600 at step 1; NaN within ten steps.
        new("residual-12-no-norm", Blind2, [K.PoorInitialisation], [K.ExplodingGradients, K.NonFiniteValues, K.LearningRateTooHigh, K.DeadRelu], 150,
            s => DigitsRun(s, KaimingResidual(s, 12), m => new SGD(m.Parameters(), 0.01, momentum: 0.9)), Seed: 133),
        // Adam with beta2 = 0.5 (beta1 0.9 > sqrt(beta2): the second moment forgets faster than the first): it learns to
        // ~93%, the weights' norm climbing 500x meanwhile, then the loss spikes at steps 95-98 (to 350) and diverges from
        // step ~107. The optimiser's step is too large: the rate-too-high kind. Onset: the first spike.
        new("adam-beta2-0.5", Blind2, [K.LearningRateTooHigh], [K.ExplodingGradients, K.NonFiniteValues, K.DeadRelu], 150,
            s => DigitsRun(s, Tasks.Mlp([64, 128, 64, 10], () => new ReLU()), m => new Adam(m.Parameters(), 1e-2, beta2: 0.5)), Onset: 95, Seed: 134),
        // A MultiStepLR written as a lambda with gamma 0 (t < 40 ? 1 : 0): the rate is 0 from step 40 on and the loss stays at
        // ~0.85 (83% batch accuracy) for the remaining 110 steps. Onset 40.
        new("lr-zeroed-at-step-40", Blind2, [K.LearningRateTooLow], [], 150,
            s => DigitsRun(s, Tasks.Mlp([64, 128, 64, 10], () => new ReLU()), m => new Adam(m.Parameters(), 2e-3), schedule: o => new LambdaLR(o, t => t < 40 ? 1 : 0).Step),
            Onset: 40, Seed: 136),
        // One pixel of one training sample is NaN (a corrupt row): the first batch that draws it makes the loss NaN and
        // the update spreads NaN into every weight. Onset: the rehearsal's first NaN loss (step 9).
        new("nan-pixel-in-one-sample", Blind2, [K.NonFiniteValues], [], 150,
            s => DigitsRun(s, Tasks.Mlp([64, 128, 64, 10], () => new ReLU()), m => new Adam(m.Parameters(), 1e-3), transform: NaNInSample), Onset: 9, Seed: 137),
        // The loss divided by 1e6 (a normalisation by the dataset's pixel count, say) under SGD: gradients ~2e-7, updates
        // ~1e6 too small, the loss never moves. The effective rate is too low.
        new("loss-divided-by-1e6", Blind2, [K.LearningRateTooLow], [K.ZeroGradient], 150,
            s => ScaledLoss(DigitsRun(s, Tasks.Mlp([64, 128, 64, 10], () => new ReLU()), m => new SGD(m.Parameters(), 0.1, momentum: 0.9)), 1e-6), Seed: 138),
        // Every weight 0.01, every bias 0, in a tanh MLP: all units of a layer compute the same thing and get the same
        // gradient forever (one unit's worth of model). The loss sits at chance for 60 steps, then crawls to 30%.
        new("init-constant-symmetric", Blind2, [K.PoorInitialisation], [K.NotLearning], 150,
            s => DigitsRun(s, Tasks.Mlp([64, 128, 64, 10], () => new Tanh(), Constant(0.01)), m => new SGD(m.Parameters(), 0.05, momentum: 0.9)), Seed: 139),
        // BatchNorm's shift (beta) initialised at -5 in a conv-BN-ReLU CNN: pre-activations ~N(-5, 1), so every ReLU is zero for
        // every input and the shift gets no gradient to recover; the loss stays at chance.
        new("bn-beta-minus-5-relu-cnn", Blind2, [K.DeadRelu], [K.PoorInitialisation, K.VanishingGradients, K.NotLearning, K.ZeroGradient], 120,
            s => DigitsRun(s, ShiftedBnCnn(-5), m => new SGD(m.Parameters(), 0.05, momentum: 0.9), image: true), Seed: 141),
        // A gradient-accumulation loop that clears the gradients every 50 steps but steps the optimiser every step: the
        // gradient norm grows 0.3 -> 77 over the first period and the loss blows up at step ~45.
        new("zero-grad-every-50", Blind2, [K.GradientAccumulation], [K.LearningRateTooHigh, K.ExplodingGradients, K.DeadRelu, K.NonFiniteValues], 150,
            s => ZeroGradEvery(DigitsRun(s, Tasks.Mlp([64, 128, 64, 10], () => new ReLU()), m => new SGD(m.Parameters(), 0.01, momentum: 0.9)), 50), Seed: 142),
        // Sequence readings with an offset of +50 never subtracted (the label is the sign of the raw sum): the constant swamps
        // the unit-scale signal and the GRU stays at chance for the whole run.
        new("gru-inputs-offset-50", Blind2, [K.InputsNotNormalised], [K.SaturatedActivations, K.VanishingGradients, K.NotLearning, K.PoorInitialisation], 150,
            s => OffsetInputs(Recurrent(s, new GRU(1, 24), 24, null, m => new Adam(m.Parameters(), 2e-3)), 50), Seed: 143),
        // AdamW with weight_decay 50 (meant 5e-2): decoupled decay takes 5% off every weight each step, the weights' norm
        // falls 8.2 -> 1.3 by step 50 and the loss stays near chance (2.08 at step 150).
        new("adamw-decay-50", Blind2, [K.RegularisationDominates], [K.DeadRelu, K.VanishingGradients, K.NotLearning, K.ZeroGradient], 150,
            s => DigitsRun(s, Tasks.Mlp([64, 128, 64, 10], () => new ReLU()), m => new AdamW(m.Parameters(), 1e-3, weightDecay: 50)), Seed: 144),
        // An IRNN (ReLU RNN, recurrent matrix = identity) scaled 1.05 over 30 steps, no clipping: the gradient norm grows
        // 19 -> 433 -> 2330 over the first three steps, the weights jump 40x and the network then dies at chance. The
        // explosion is the fault; the large start, the dead units and the stalled loss are its consequences.
        new("irnn-identity-1.05", Blind2, [K.ExplodingGradients],
            [K.PoorInitialisation, K.NonFiniteValues, K.LearningRateTooHigh, K.DeadRelu, K.NotLearning, K.ZeroGradient], 150,
            s => ScaledIdentityRnn(s, 1.05, m => new SGD(m.Parameters(), 0.01, momentum: 0.9), length: 30), Seed: 145),
        // Cross entropy summed over a batch of 256 with a rate tuned for the mean: a 256x step. The loss goes 590 -> 6.6e4
        // in three steps and the weights' norm to 1e12.
        new("ce-sum-reduction-b256", Blind2, [K.LearningRateTooHigh], [K.ExplodingGradients, K.NonFiniteValues, K.DeadRelu], 150,
            s => SummedLoss(DigitsRun(s, Tasks.Mlp([64, 128, 64, 10], () => new ReLU()), m => new SGD(m.Parameters(), 0.1, momentum: 0.9), batch: 256)), Seed: 146),
        // A tanh RNN whose recurrent matrix is orthogonal x 3 (spectral radius 3) over 30 steps: the gradient norm is ~2400 at
        // step 1 (through time, the RNN's depth), the first update throws the weights 7x out and the run never leaves chance.
        new("rnn-tanh-radius-3", Blind2, [K.PoorInitialisation],
            [K.ExplodingGradients, K.SaturatedActivations, K.VanishingGradients, K.NotLearning, K.NonFiniteValues, K.LearningRateTooHigh], 150,
            s => OrthogonalRnn(s, 3.0, m => new SGD(m.Parameters(), 0.05, momentum: 0.9), length: 30, span: 30), Seed: 147),
    ];

    private static Sequential GroupNormCnn() => new(
        new Conv2d(1, 16, 3, padding: 1), new GroupNorm(4, 16), new ELU(),
        new Conv2d(16, 16, 3, padding: 1), new GroupNorm(4, 16), new ELU(),
        new MaxPool2d(2), new Flatten(), new Linear(16 * 16, 10));

    private static Sequential BnDropoutMlp(double p, ulong seed)
    {
        var gen = new Generator(seed);
        return new Sequential(new Linear(64, 256, generator: gen), new BatchNorm1d(256), new ReLU(), new Dropout(p, gen),
            new Linear(256, 128, generator: gen), new BatchNorm1d(128), new ReLU(), new Dropout(p, gen), new Linear(128, 10, generator: gen));
    }

    private static Setup Conv1dTokens(ulong seed)
    {
        var gen = new Generator(seed);
        var model = new Sequential(new Embedding(12, 16, generator: gen), new Lambda(e => e.Transpose(1, 2)), new Conv1d(16, 32, 3, padding: 1), new ReLU(),
            new Lambda(h => h.Max(2).Values), new Linear(32, 2, generator: gen));
        return new Setup { Model = model, Optimizer = new Adagrad(model.Parameters(), 0.05), Batch = Tasks.ContainsTask(seed, vocab: 12, length: 8), Classes = 2 };
    }

    // A tanh RNN whose recurrent matrix is orthogonal times `radius` (every singular value equal to it).
    private static Setup OrthogonalRnn(ulong seed, double radius, Func<Module, Optimizer> optimizer, double? clip = null, int length = 16, int span = 16)
    {
        var rnn = new RNN(1, 32);
        foreach (var (name, p) in rnn.NamedParameters())
            if (name.StartsWith("weight_hh", StringComparison.Ordinal)) Init.Orthogonal(p, radius, new Generator(seed + 3));
        return Recurrent(seed, rnn, 32, null, optimizer, clip, length, span);
    }

    private static Setup WithClip(Setup setup, double clip) => new()
    {
        Model = setup.Model, Optimizer = setup.Optimizer, Batch = setup.Batch, Classes = setup.Classes, AfterStep = setup.AfterStep, Loss = setup.Loss, Clip = clip,
    };

    private static Sequential DropoutMlp(double p, ulong seed)
    {
        var gen = new Generator(seed);
        return new Sequential(new Linear(64, 128, generator: gen), new ReLU(), new Dropout(p, gen), new Linear(128, 64, generator: gen), new ReLU(), new Dropout(p, gen),
            new Linear(64, 10, generator: gen));
    }

    private static Sequential KaimingResidual(ulong seed, int blocks)
    {
        var model = Tasks.Deep(64, 64, blocks, 10, () => new ReLU(), residual: true);
        var init = Tasks.Kaiming(seed);
        foreach (var linear in model.Modules().OfType<Linear>()) init(linear);
        return model;
    }

    private static Tensor NaNInSample(Tensor x)
    {
        var values = x.ToDoubleArray();
        values[300 * 64 + 27] = double.NaN;
        return Tensor.FromArray(values, x.Shape).To(x.DType);
    }

    private static Setup ScaledLoss(Setup setup, double scale) => new()
    {
        Model = setup.Model, Optimizer = setup.Optimizer, Batch = setup.Batch, Classes = setup.Classes,
        Loss = (output, y) => Functional.CrossEntropy(output, y) * scale,
    };

    private static Setup SummedLoss(Setup setup) => new()
    {
        Model = setup.Model, Optimizer = setup.Optimizer, Batch = setup.Batch, Classes = setup.Classes,
        Loss = (output, y) => Functional.CrossEntropy(output, y, reduction: Reduction.Sum),
    };

    private static Action<Linear> Constant(double value) => l =>
    {
        Init.Constant(l.Weight, value);
        if (l.Bias is { } b) Init.Zeros(b);
    };

    private static Sequential ShiftedBnCnn(double beta)
    {
        var model = (Sequential)Tasks.Cnn(8, 2, residual: false, batchNorm: true);
        foreach (var bn in model.Modules().OfType<BatchNorm2d>()) Init.Constant(bn.Bias!, beta);
        return model;
    }

    private static Setup ZeroGradEvery(Setup setup, int period) => new()
    {
        Model = setup.Model, Optimizer = setup.Optimizer, Classes = setup.Classes, ZeroGrad = false,
        Batch = s =>
        {
            if (s % period == 1) setup.Optimizer.ZeroGrad();
            return setup.Batch(s);
        },
    };

    private static Setup OffsetInputs(Setup setup, double offset) => new()
    {
        Model = setup.Model, Optimizer = setup.Optimizer, Classes = setup.Classes, Clip = setup.Clip,
        Batch = s =>
        {
            var (x, y) = setup.Batch(s);
            return (x + offset, y);
        },
    };

    private static Setup ScaledIdentityRnn(ulong seed, double scale, Func<Module, Optimizer> optimizer, int length)
    {
        var rnn = new RNN(1, 32, relu: true);
        foreach (var (name, p) in rnn.NamedParameters())
        {
            if (!name.StartsWith("weight_hh", StringComparison.Ordinal)) continue;
            var values = new double[32 * 32];
            for (int i = 0; i < 32; i++) values[i * 32 + i] = scale;
            using (Autograd.NoGrad()) p.CopyFrom(Tensor.FromArray(values, p.Shape).To(p.DType));
        }
        return Recurrent(seed, rnn, 32, null, optimizer, null, length, length);
    }
}
