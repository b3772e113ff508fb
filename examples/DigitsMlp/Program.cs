// Digits MLP: 64 -> 128 -> 10 on scikit-learn's 8x8 digits (embedded in GradFlow), 1,437 training and
// 360 test images. Mini-batches of 32, AdamW with a one-cycle schedule, gradient clipping, a checkpoint
// at the end that is loaded back to check it reproduces the test accuracy.
using System.Diagnostics;
using GradFlow;
using GradFlow.Data;
using GradFlow.NN;
using GradFlow.Optim;
using GradFlow.Training;

int epochs = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 40;
var (train, test) = Digits.Load();
var init = new Generator(42);
var shuffle = new Generator(7);
var model = new Sequential(new Linear(64, 128, generator: init), new ReLU(), new Linear(128, 10, generator: init));
var loader = new DataLoader(train, batchSize: 32, shuffle: true, generator: shuffle);
var optimizer = new AdamW(model.Parameters(), lr: 1e-3, weightDecay: 1e-4);
var schedule = new OneCycleLR(optimizer, maxLr: 1e-2, totalSteps: epochs * loader.Count);

Console.WriteLine(model);
Console.WriteLine($"{train.Count} training and {test.Count} test examples, {loader.Count} batches per epoch, {epochs} epochs");
var clock = Stopwatch.StartNew();
for (int epoch = 1; epoch <= epochs; epoch++)
{
    model.Train();
    double total = 0;
    foreach (var (x, y) in loader)
    {
        optimizer.ZeroGrad();
        var loss = Functional.CrossEntropy(model.Call(x), y);
        loss.Backward();
        GradientClipping.ClipGradNorm(model.Parameters(), maxNorm: 5);
        optimizer.Step();
        schedule.Step();
        total += loss.Item() * x.Size(0);
    }
    if (epoch % 5 == 0 || epoch == 1)
        Console.WriteLine($"epoch {epoch,3}  train loss {total / train.Count:F4}  test accuracy {Accuracy(model, test):P2}  lr {schedule.LastLr[0]:G3}");
}
double accuracy = Accuracy(model, test);
Console.WriteLine($"test accuracy {accuracy:P2} after {clock.Elapsed.TotalSeconds:F1} s");

string path = Path.Combine(Path.GetTempPath(), "digits-mlp.safetensors");
Checkpoint.Capture(model, optimizer, schedule, new Dictionary<string, Generator> { ["shuffle"] = shuffle }, step: epochs).Save(path);
var reloaded = new Sequential(new Linear(64, 128), new ReLU(), new Linear(128, 10));
reloaded.LoadStateDict(Checkpoint.Load(path).Model);
Console.WriteLine($"checkpoint {path}: reloaded model's test accuracy {Accuracy(reloaded, test):P2}");
return accuracy >= 0.95 ? 0 : 1;

static double Accuracy(Module model, TensorDataset data)
{
    model.Eval();
    using var noGrad = Autograd.NoGrad();
    var predicted = model.Call(data.Inputs).ArgMax(1);
    return predicted.Eq(data.Targets).Sum().Item() / data.Count;
}
