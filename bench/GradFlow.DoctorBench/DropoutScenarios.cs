using GradFlow.Diagnostics;
using GradFlow.NN;
using GradFlow.Optim;
using K = GradFlow.Diagnostics.FindingKind;

namespace GradFlow.DoctorBench;

/// <summary>
/// The dropout set: written after the heavy-dropout rule was made on blind2's <c>dropout-0.95</c> alone, to judge it on runs
/// it was not made on. Heavy dropout in other architectures, optimisers and dropout types, and healthy runs with the
/// moderate rates Srivastava et al. (JMLR 2014) recommend, which must stay silent. Each run's label was set from its
/// <c>--rehearse</c> (no monitor, no doctor) before the doctor was run on it; the reason is beside each run.
/// </summary>
public static partial class Scenarios
{
    private static IEnumerable<Scenario> DropoutSet() =>
    [
        // Healthy (rehearsals, batch accuracy with the masks on: 89%, 83%, 92% over each run's last ten steps):
        // dropout 0.5 after each hidden layer (Srivastava et al.'s rate for hidden units), Adam.
        new("healthy-dropout-0.5-mlp-adam", ScenarioSet.Dropout, [], [], 150,
            s => DigitsRun(s, DropoutStack([64, 256, 128, 10], 0, 0.5, s), m => new Adam(m.Parameters(), 1e-3)), Seed: 161),
        // Healthy: Srivastava et al.'s own recipe, 0.2 on the inputs and 0.5 on the hidden units, SGD with momentum.
        new("healthy-dropout-0.2-in-0.5-hidden-sgd", ScenarioSet.Dropout, [], [], 200,
            s => DigitsRun(s, DropoutStack([64, 256, 256, 10], 0.2, 0.5, s), m => new SGD(m.Parameters(), 0.05, momentum: 0.9)), Seed: 162),
        // Healthy: a CNN with dropout 0.3 after its first convolution and before its head, SGD with momentum.
        new("healthy-dropout-0.3-cnn-sgd", ScenarioSet.Dropout, [], [], 120,
            s => DigitsRun(s, DropoutCnn(0.3, s), m => new SGD(m.Parameters(), 0.05, momentum: 0.9), image: true), Seed: 163),

        // Dropout 0.9 in a CNN (after the first convolution and before the head) under Adam: the loss falls from 2.54 to chance
        // (2.29 over steps 111-120, 14% batch accuracy) and stays there. The model's own noise: not learning.
        new("dropout-0.9-cnn-adam", ScenarioSet.Dropout, [K.NotLearning], [], 120,
            s => DigitsRun(s, DropoutCnn(0.9, s), m => new Adam(m.Parameters(), 1e-3), image: true), Seed: 164),
        // Dropout 0.9 after each of four narrow (48) hidden layers under RMSprop: the loss sits at chance (2.30-2.32, 10-11%)
        // for the whole run. Not learning.
        new("dropout-0.9-deep-narrow-rmsprop", ScenarioSet.Dropout, [K.NotLearning], [], 150,
            s => DigitsRun(s, DropoutStack([64, 48, 48, 48, 48, 10], 0, 0.9, s), m => new RMSprop(m.Parameters(), 1e-3)), Seed: 165),
        // Heavy but harmless: a two-layer LSTM with dropout 0.9 between its layers (the recurrent layer's own rate, no Dropout
        // module), Adam. Written as a fault; its rehearsal learns (93% batch accuracy over steps 191-200), so it was relabelled
        // healthy before the doctor ran: a heavy rate alone is no finding.
        new("lstm-2-layers-dropout-0.9-learns", ScenarioSet.Dropout, [], [], 200,
            s => Recurrent(s, new LSTM(1, 32, numLayers: 2, dropout: 0.9), 32, null, m => new Adam(m.Parameters(), 3e-3), clip: 1.0), Seed: 166),
    ];

    // Linear layers of the given widths with ReLU, dropout `input` on the inputs (0: none) and `hidden` after each hidden ReLU.
    private static Sequential DropoutStack(int[] widths, double input, double hidden, ulong seed)
    {
        var gen = new Generator(seed);
        var model = new Sequential();
        if (input > 0) model.Add(new NN.Dropout(input, gen));
        for (int i = 0; i + 1 < widths.Length; i++)
        {
            model.Add(new Linear(widths[i], widths[i + 1], generator: gen));
            if (i + 2 < widths.Length) model.Add(new ReLU()).Add(new NN.Dropout(hidden, gen));
        }
        return model;
    }

    private static Sequential DropoutCnn(double p, ulong seed)
    {
        var gen = new Generator(seed);
        return new Sequential(
            new Conv2d(1, 16, 3, padding: 1, generator: gen), new ReLU(), new NN.Dropout(p, gen),
            new Conv2d(16, 32, 3, padding: 1, generator: gen), new ReLU(), new MaxPool2d(2), new Flatten(),
            new NN.Dropout(p, gen), new Linear(32 * 4 * 4, 10, generator: gen));
    }
}
