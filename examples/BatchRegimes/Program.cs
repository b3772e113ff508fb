// The three batch regimes side by side on one problem: the Digits MLP (64 -> 64 -> 10) from the same
// initial weights, trained with plain SGD for the same number of epochs, with
//   full batch  (batch 1,437: one exact gradient step per epoch),
//   mini-batch  (batch 32: 45 noisy steps per epoch),
//   stochastic  (batch 1: 1,437 very noisy steps per epoch).
// Each regime gets a learning rate suited to its noise. The table shows the classic trade: per epoch,
// smaller batches make far more progress; per update, the full batch is the most accurate; per second,
// the mini-batch wins because it still uses vectorised kernels.
using System.Diagnostics;
using GradFlow;
using GradFlow.Data;
using GradFlow.NN;
using GradFlow.Optim;

int epochs = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 15;
var (train, test) = Digits.Load();
var regimes = new (string Name, int BatchSize, double Lr)[]
{
    ("full batch", train.Count, 0.5),
    ("mini-batch 32", 32, 0.1),
    ("stochastic", 1, 0.01),
};

var results = new List<(string Name, double[] Loss, double[] Accuracy, long Updates, double Seconds)>();
foreach (var (name, batchSize, lr) in regimes)
{
    var init = new Generator(42); // the same initial weights for every regime
    var model = new Sequential(new Linear(64, 64, generator: init), new ReLU(), new Linear(64, 10, generator: init));
    var loader = new DataLoader(train, batchSize, shuffle: true, generator: new Generator(7));
    var optimizer = new SGD(model.Parameters(), lr, momentum: 0.9);
    var loss = new double[epochs];
    var accuracy = new double[epochs];
    long updates = 0;
    var clock = Stopwatch.StartNew();
    for (int epoch = 0; epoch < epochs; epoch++)
    {
        foreach (var (x, y) in loader)
        {
            optimizer.ZeroGrad();
            Functional.CrossEntropy(model.Call(x), y).Backward();
            optimizer.Step();
            updates++;
        }
        (loss[epoch], accuracy[epoch]) = Evaluate(model, train, test);
    }
    results.Add((name, loss, accuracy, updates, clock.Elapsed.TotalSeconds));
}

Console.WriteLine($"Digits MLP, SGD with momentum 0.9, {epochs} epochs: training loss / test accuracy after each epoch");
Console.WriteLine("epoch " + string.Concat(results.Select(r => $"| {r.Name,-22}")));
for (int e = 0; e < epochs; e++)
    Console.WriteLine($"{e + 1,5} " + string.Concat(results.Select(r => $"| {r.Loss[e],8:F4}  {r.Accuracy[e],8:P1}    ")));
Console.WriteLine();
foreach (var r in results)
    Console.WriteLine($"{r.Name,-14} {r.Updates,7} updates  {r.Seconds,6:F2} s  final loss {r.Loss[^1]:F4}  test accuracy {r.Accuracy[^1]:P2}");

static (double Loss, double Accuracy) Evaluate(Module model, TensorDataset train, TensorDataset test)
{
    using var noGrad = Autograd.NoGrad();
    double loss = Functional.CrossEntropy(model.Call(train.Inputs), train.Targets).Item();
    double accuracy = model.Call(test.Inputs).ArgMax(1).Eq(test.Targets).Sum().Item() / test.Count;
    return (loss, accuracy);
}
