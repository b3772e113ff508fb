// Character-level language model: Embedding(V, 64) -> LSTM(64, 256) -> Linear(256, V) on the opening of
// Shakespeare's Coriolanus (coriolanus.txt, 14.6 KB, public domain). The last 10% of the text is held out.
// Training uses truncated back-propagation through time: the text is cut into 16 parallel streams, the
// model reads 32 characters of each per step, and the LSTM state is carried to the next step but detached,
// so gradients flow back at most 32 characters. Adam, gradient norm clipped to 1. At the end, a seeded
// sample continues a prompt. Arguments: [epochs].
using System.Diagnostics;
using System.Text;
using GradFlow;
using GradFlow.NN;
using GradFlow.Optim;

int epochs = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 15;
const int Streams = 16, Bptt = 32;

string text = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "coriolanus.txt"));
char[] vocabulary = [.. text.Distinct().Order()];
var index = vocabulary.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => (long)p.i);
long[] encoded = [.. text.Select(c => index[c])];
int split = encoded.Length * 9 / 10;
var train = Batchify(encoded[..split], Streams);
var valid = Batchify(encoded[split..], 8);

Generator.Default.ManualSeed(42);
var model = new CharModel(vocabulary.Length, embeddingDim: 64, hiddenSize: 256);
var optimizer = new Adam(model.Parameters(), lr: 2e-3);
var arena = new TensorArena();
Console.WriteLine(model);
Console.WriteLine($"{text.Length} characters, {vocabulary.Length} distinct; {split} for training as {Streams} streams of {train.Size(0)}, windows of {Bptt}");

for (int epoch = 1; epoch <= epochs; epoch++)
{
    var clock = Stopwatch.StartNew();
    model.Train();
    (Tensor H, Tensor C)? state = null;
    double total = 0;
    int count = 0;
    for (int t = 0; t + 1 < train.Size(0); t += Bptt)
    {
        int length = Math.Min(Bptt, train.Size(0) - 1 - t);
        var (x, y) = (train.Slice(0, t, t + length), train.Slice(0, t + 1, t + 1 + length));
        using (arena.Step())
        {
            optimizer.ZeroGrad();
            var (logits, next) = model.Call(x, state);
            var loss = Functional.CrossEntropy(logits.Reshape(-1, vocabulary.Length), y.Reshape(-1));
            loss.Backward();
            GradientClipping.ClipGradNorm(model.Parameters(), maxNorm: 1.0);
            optimizer.Step();
            total += loss.Item() * length;
            count += length;
            // Truncation: the next window starts from this state's values, not its history. Keep its memory past the step.
            state = (TensorArena.Keep(next.H.Detach()), TensorArena.Keep(next.C.Detach()));
        }
    }
    double seconds = clock.Elapsed.TotalSeconds;
    double trainLoss = total / count, validLoss = Evaluate(model, valid, vocabulary.Length);
    Console.WriteLine($"epoch {epoch,2}  train loss {trainLoss:F3} (perplexity {Math.Exp(trainLoss),5:F2})  " +
        $"validation loss {validLoss:F3} (perplexity {Math.Exp(validLoss),5:F2})  {seconds:F1} s");
}

Console.WriteLine();
Console.WriteLine(Sample(model, "MENENIUS:\n", 400, temperature: 0.8, new Generator(2024)));
return 0;

// The stream cut into `streams` equal columns: row t holds character t of every column ([T, streams], int64).
static Tensor Batchify(long[] stream, int streams)
{
    int length = stream.Length / streams;
    return Tensor.FromArray(stream[..(length * streams)], streams, length).T.Contiguous();
}

// Mean cross-entropy per character over the whole set, the state carried from window to window.
static double Evaluate(CharModel model, Tensor data, int vocabularySize)
{
    model.Eval();
    using var noGrad = Autograd.NoGrad();
    var (x, y) = (data.Slice(0, 0, data.Size(0) - 1), data.Slice(0, 1, data.Size(0)));
    var (logits, _) = model.Call(x, null);
    return Functional.CrossEntropy(logits.Reshape(-1, vocabularySize), y.Reshape(-1)).Item();
}

// Feeds the prompt, then draws each next character from softmax(logits / temperature).
string Sample(CharModel model, string prompt, int length, double temperature, Generator generator)
{
    model.Eval();
    using var noGrad = Autograd.NoGrad();
    var output = new StringBuilder(prompt);
    var (logits, state) = model.Call(Tensor.FromArray([.. prompt.Select(c => index[c])], prompt.Length, 1), null);
    for (int i = 0; i < length; i++)
    {
        var probabilities = (logits.Select(0, -1).Reshape(-1) / temperature).Softmax(0);
        long next = probabilities.Multinomial(1, generator: generator).Item<long>();
        output.Append(vocabulary[next]);
        (logits, state) = model.Call(Tensor.FromArray([next], 1, 1), state);
    }
    return output.ToString();
}

/// <summary>Embedding -> LSTM -> Linear over [time, batch] character indices, with the LSTM state in and out.</summary>
sealed class CharModel : Module
{
    private readonly Embedding _embedding;
    private readonly LSTM _lstm;
    private readonly Linear _decoder;

    public CharModel(int vocabularySize, int embeddingDim, int hiddenSize)
    {
        _embedding = RegisterModule("embedding", new Embedding(vocabularySize, embeddingDim));
        _lstm = RegisterModule("lstm", new LSTM(embeddingDim, hiddenSize));
        _decoder = RegisterModule("decoder", new Linear(hiddenSize, vocabularySize));
    }

    /// <summary>Logits [time, batch, vocabulary] and the final (h, c).</summary>
    public (Tensor Logits, (Tensor H, Tensor C) State) Call(Tensor input, (Tensor H, Tensor C)? state)
    {
        var (output, next) = _lstm.Call(_embedding.Call(input), state);
        return (_decoder.Call(output), next);
    }

    public override Tensor Forward(Tensor input) => Call(input, null).Logits;
}
