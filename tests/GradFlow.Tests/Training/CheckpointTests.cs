using GradFlow.Formats;
using GradFlow.Optim;
using GradFlow.Training;

namespace GradFlow.Tests.Training;

public sealed class CheckpointTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "gradflow-ckpt-" + Guid.NewGuid().ToString("N"));

    public CheckpointTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A least-squares model trained on minibatches drawn by a generator, with an optimiser and a schedule.</summary>
    private sealed class Run
    {
        public readonly Tensor X = Tensor.Randn([64, 6], DType.Float32, new Generator(11));
        public readonly Tensor Y = Tensor.Randn([64, 2], DType.Float32, new Generator(12));
        public readonly Dictionary<string, Tensor> Model;
        public readonly Optimizer Opt;
        public readonly ILRScheduler Sched;
        public readonly Generator Sampler = new(99);

        public Run(string kind)
        {
            Model = new()
            {
                ["0.weight"] = Tensor.Randn([6, 2], DType.Float32, new Generator(13), requiresGrad: true),
                ["0.bias"] = Tensor.Zeros([2], DType.Float32, requiresGrad: true),
            };
            Opt = kind == "sgd" ? new SGD(Model.Values, lr: 0.05, momentum: 0.9, nesterov: true) : new Adam(Model.Values, lr: 0.02, amsgrad: true);
            Sched = kind == "sgd" ? new StepLR(Opt, 7, 0.5) : new CosineAnnealingLR(Opt, 10);
        }

        public Dictionary<string, Generator> Generators => new() { ["sampler"] = Sampler };

        public void Steps(int n)
        {
            for (int i = 0; i < n; i++)
            {
                var idx = Tensor.FromArray(Enumerable.Range(0, 8).Select(_ => Sampler.NextInt64(64)).ToArray());
                var r = X.IndexSelect(0, idx).MatMul(Model["0.weight"]) + Model["0.bias"] - Y.IndexSelect(0, idx);
                Opt.ZeroGrad();
                (r * r).Mean().Backward();
                Opt.Step();
                ((LRScheduler)Sched).Step();
            }
        }
    }

    [Theory]
    [InlineData("sgd")]
    [InlineData("adam")]
    public void ResumeIsBitwiseExact(string kind)
    {
        var straight = new Run(kind);
        straight.Steps(30);

        var first = new Run(kind);
        first.Steps(12);
        string path = Path.Combine(_dir, "ckpt.safetensors");
        Checkpoint.Capture(first.Model, first.Opt, first.Sched, first.Generators, step: 12).Save(path);
        first.Steps(5); // training on after saving must not matter

        var resumed = new Run(kind);
        var ckpt = Checkpoint.Load(path);
        Assert.Equal(12, ckpt.Step);
        ckpt.Restore(resumed.Model, resumed.Opt, resumed.Sched, resumed.Generators);
        resumed.Steps(18);

        foreach (var name in straight.Model.Keys)
            Assert.Equal(straight.Model[name].ToArray<float>(), resumed.Model[name].ToArray<float>());
        Assert.Equal(straight.Opt.ParamGroups[0].Lr, resumed.Opt.ParamGroups[0].Lr);
    }

    [Fact]
    public void SaveOverwritesAtomicallyAndKeepsMetadata()
    {
        var run = new Run("adam");
        string path = Path.Combine(_dir, "c.safetensors");
        var c = Checkpoint.Capture(run.Model, run.Opt, step: 1);
        c.Metadata["note"] = "first";
        c.Save(path);
        run.Steps(2);
        var c2 = Checkpoint.Capture(run.Model, run.Opt, step: 2);
        c2.Metadata["note"] = "second";
        c2.Save(path);
        var back = Checkpoint.Load(path);
        Assert.Equal("second", back.Metadata["note"]);
        Assert.Equal(2, back.Step);
        Assert.Single(Directory.GetFiles(_dir));
    }

    [Fact]
    public void RestoreNamesMismatchedKeysAndShapes()
    {
        var run = new Run("sgd");
        var c = Checkpoint.Capture(run.Model);
        var other = new Dictionary<string, Tensor> { ["0.weight"] = Tensor.Zeros([6, 3]), ["0.bias"] = Tensor.Zeros([2]) };
        Assert.Contains("0.weight", Assert.Throws<InvalidOperationException>(() => c.Restore(other)).Message);
        var missing = new Dictionary<string, Tensor> { ["0.weight"] = Tensor.Zeros([6, 2]) };
        Assert.Contains("unexpected: [0.bias]", Assert.Throws<InvalidOperationException>(() => c.Restore(missing)).Message);
    }

    [Fact]
    public void DamagedCheckpointsGiveInvalidData()
    {
        var run = new Run("adam");
        run.Steps(1);
        string path = Path.Combine(_dir, "d.safetensors");
        Checkpoint.Capture(run.Model, run.Opt, run.Sched, run.Generators, 1).Save(path);
        var bytes = File.ReadAllBytes(path);
        string bad = Path.Combine(_dir, "bad.safetensors");
        for (int len = 0; len < bytes.Length; len += 7)
        {
            File.WriteAllBytes(bad, bytes.AsSpan(0, len).ToArray());
            Assert.Throws<InvalidDataException>(() => Checkpoint.Load(bad));
        }
        var plain = Path.Combine(_dir, "plain.safetensors");
        SafeTensors.Save(plain, new Dictionary<string, Tensor> { ["x"] = Tensor.Ones(1) });
        Assert.Contains("not a GradFlow checkpoint", Assert.Throws<InvalidDataException>(() => Checkpoint.Load(plain)).Message);
        // A header whose optimizer JSON is damaged, with the file otherwise valid.
        var content = SafeTensors.Load(path);
        content.Metadata["optimizer"] = "{\"param_groups\": 3}";
        SafeTensors.Save(bad, content.Tensors, content.Metadata);
        Assert.Throws<InvalidDataException>(() => Checkpoint.Load(bad));
    }
}

public sealed class ModuleCheckpointTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "gradflow-mckpt-" + Guid.NewGuid().ToString("N"));

    public ModuleCheckpointTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private sealed class Trainer
    {
        public readonly GradFlow.NN.Sequential Model;
        public readonly AdamW Opt;
        public readonly OneCycleLR Sched;
        public readonly Generator Shuffle = new(3);
        private readonly GradFlow.Data.DataLoader _loader;
        private IEnumerator<(Tensor Input, Tensor Target)>? _epoch;

        public Trainer()
        {
            var g = new Generator(1);
            Model = new GradFlow.NN.Sequential(new GradFlow.NN.Linear(8, 16, generator: g), new GradFlow.NN.ReLU(), new GradFlow.NN.Linear(16, 3, generator: g));
            Opt = new AdamW(Model.Parameters(), lr: 1e-3);
            Sched = new OneCycleLR(Opt, maxLr: 0.01, totalSteps: 40);
            var x = Tensor.Randn([48, 8], DType.Float32, new Generator(2));
            var y = Tensor.RandInt(0, 3, [48], generator: new Generator(4));
            _loader = new GradFlow.Data.DataLoader(new GradFlow.Data.TensorDataset(x, y), batchSize: 16, shuffle: true, generator: Shuffle);
        }

        public void Steps(int n)
        {
            for (int i = 0; i < n; i++)
            {
                // Checkpoints are taken at epoch boundaries (3 batches), where the shuffle generator's state is the whole story.
                if (_epoch is null || !_epoch.MoveNext()) { _epoch = _loader.GetEnumerator(); _epoch.MoveNext(); }
                var (xb, yb) = _epoch.Current;
                Opt.ZeroGrad();
                GradFlow.NN.Functional.CrossEntropy(Model.Call(xb), yb).Backward();
                Opt.Step();
                Sched.Step();
            }
        }
    }

    [Fact]
    public void ModuleResumeIsBitwiseExact()
    {
        var straight = new Trainer();
        straight.Steps(30);
        var first = new Trainer();
        first.Steps(12);
        string path = Path.Combine(_dir, "m.safetensors");
        Checkpoint.Capture(first.Model, first.Opt, first.Sched, new Dictionary<string, Generator> { ["shuffle"] = first.Shuffle }, 12).Save(path);
        var resumed = new Trainer();
        Checkpoint.Load(path).Restore(resumed.Model, resumed.Opt, resumed.Sched, new Dictionary<string, Generator> { ["shuffle"] = resumed.Shuffle });
        resumed.Steps(18);
        var a = straight.Model.StateDict();
        var b = resumed.Model.StateDict();
        Assert.Equal(a.Keys, b.Keys);
        foreach (var k in a.Keys) Assert.Equal(a[k].ToArray<float>(), b[k].ToArray<float>());
        Assert.Contains("0.weight", Checkpoint.Load(path).Model.Keys);
    }
}
