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

    private string SavedAdam(out Run run)
    {
        run = new Run("adam");
        run.Steps(2);
        string path = Path.Combine(_dir, "saved.safetensors");
        Checkpoint.Capture(run.Model, run.Opt, run.Sched, run.Generators, 2).Save(path);
        return path;
    }

    [Fact]
    public void EveryChangedDataByteFailsItsChecksumAndTheFileStaysPlainSafeTensors()
    {
        string path = SavedAdam(out _);
        var bytes = File.ReadAllBytes(path);
        long dataStart = 8 + BitConverter.ToInt64(bytes, 0);
        var plain = SafeTensors.Load(path);
        Assert.Contains("checksums", plain.Metadata.Keys);
        string bad = Path.Combine(_dir, "flipped.safetensors");
        for (long at = dataStart; at < bytes.Length; at += 3)
        {
            var copy = (byte[])bytes.Clone();
            copy[at] ^= 0x10; // a low mantissa bit: the value stays finite and plausible
            File.WriteAllBytes(bad, copy);
            var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(bad));
            Assert.Contains("CRC-32C", e.Message);
            Assert.Contains(bad, e.Message);
        }
    }

    [Fact]
    public void ChangedStateJsonFailsTheStateChecksum()
    {
        string path = SavedAdam(out _);
        var content = SafeTensors.Load(path);
        string edited = content.Metadata["optimizer"].Replace("\"beta1\":0.9", "\"beta1\":0.8");
        Assert.NotEqual(content.Metadata["optimizer"], edited);
        content.Metadata["optimizer"] = edited;
        string bad = Path.Combine(_dir, "edited.safetensors");
        SafeTensors.Save(bad, content.Tensors, content.Metadata);
        Assert.Contains("metadata is damaged", Assert.Throws<InvalidDataException>(() => Checkpoint.Load(bad)).Message);
    }

    [Fact]
    public void DuplicateKeysInTheEmbeddedJsonAreInvalidData()
    {
        var run = new Run("adam");
        run.Steps(1);
        var c = Checkpoint.Capture(run.Model, run.Opt, run.Sched, run.Generators, 1);
        string path = Path.Combine(_dir, "dup.safetensors");
        c.Save(path);
        // Rewrite the optimizer JSON with a duplicate key and a matching state checksum (as a careless tool would).
        var content = SafeTensors.Load(path);
        content.Metadata["optimizer"] = content.Metadata["optimizer"].Replace("{\"param_groups\"", "{\"state\":{},\"param_groups\"");
        content.Metadata["state_crc32c"] = Checkpoint.StateChecksum(content.Metadata).ToString("x8");
        string bad = Path.Combine(_dir, "dup2.safetensors");
        SafeTensors.Save(bad, content.Tensors, content.Metadata);
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(bad));
        Assert.Contains(bad, e.Message);
        Assert.Contains("Duplicate", e.Message);
    }

    public static TheoryData<string, string> BadOptimizerStates => new()
    {
        { "nan lr", "lr" },
        { "beta1 one", "beta1" },
        { "no beta2", "beta2" },
        { "no exp_avg_sq", "exp_avg_sq" },
        { "huge step", "step" },
        { "nan scalar", "mu" },
    };

    [Theory]
    [MemberData(nameof(BadOptimizerStates))]
    public void RestoreChecksEveryHyperParameterBufferAndCounterBeforeTouchingAnything(string what, string key)
    {
        var run = new Run("adam");
        run.Steps(2);
        var good = run.Opt.StateDict();
        var groups = good.ParamGroups.Select(g => new Dictionary<string, double>(g.Options)).ToList();
        var state = good.State.ToDictionary(kv => kv.Key, kv => kv.Value);
        var p0 = new ParamState { Step = state[0].Step };
        foreach (var (k, v) in state[0].Buffers) p0.Buffers[k] = v;
        switch (what)
        {
            case "nan lr": groups[0]["lr"] = double.NaN; break;
            case "beta1 one": groups[0]["beta1"] = 1; break;
            case "no beta2": groups[0].Remove("beta2"); break;
            case "no exp_avg_sq": p0.Buffers.Remove("exp_avg_sq"); break;
            case "huge step": p0.Step = long.MaxValue; break;
            default: p0.Scalars["mu"] = double.NaN; break;
        }
        state[0] = p0;
        var bad = new OptimizerStateDict { ParamGroups = groups.Select((g, i) => new ParamGroupState(g, good.ParamGroups[i].Params)).ToList(), State = state };
        var c = Checkpoint.Capture(run.Model, step: 2);
        c = new Checkpoint { Model = c.Model, Optimizer = bad, Scheduler = run.Sched.StateDict(), Generators = run.Generators.ToDictionary(kv => kv.Key, kv => kv.Value.GetState()), Step = 2 };
        string path = Path.Combine(_dir, "bad-state.safetensors");
        c.Save(path);

        var target = new Run("adam");
        target.Steps(1);
        var weightBefore = target.Model["0.weight"].ToDoubleArray();
        var lrBefore = target.Opt.ParamGroups[0].Lr;
        var samplerBefore = target.Sampler.GetState();
        var e = Assert.Throws<ArgumentException>(() => Checkpoint.Load(path).Restore(target.Model, target.Opt, target.Sched, target.Generators));
        Assert.True(e.Message.Contains(key) || e.ParamName == key, $"{what}: {e.Message}");
        Assert.Equal(weightBefore, target.Model["0.weight"].ToDoubleArray());
        Assert.Equal(lrBefore, target.Opt.ParamGroups[0].Lr);
        Assert.Equal(samplerBefore, target.Sampler.GetState());
        target.Steps(1); // the optimiser still works with its own state
        Assert.All(target.Model["0.weight"].ToDoubleArray(), v => Assert.True(double.IsFinite(v)));
    }

    [Fact]
    public void SgdStateWithoutItsMomentumBufferIsRefused()
    {
        var run = new Run("sgd");
        run.Steps(2);
        var good = run.Opt.StateDict();
        var state = good.State.ToDictionary(kv => kv.Key, kv => new ParamState { Step = kv.Value.Step });
        var bad = new OptimizerStateDict { ParamGroups = good.ParamGroups, State = state };
        var e = Assert.Throws<ArgumentException>(() => new Run("sgd").Opt.LoadStateDict(bad));
        Assert.Contains("momentum_buffer", e.Message);
    }

    [Fact]
    public void BadSchedulerStateLeavesTheSchedulerAsItWas()
    {
        var run = new Run("adam");
        run.Steps(3);
        var c = Checkpoint.Capture(run.Model, run.Opt, run.Sched, run.Generators, 3);
        var sched = c.Scheduler!.DeepClone().AsObject();
        sched["_step_count"] = 1e12;
        var bad = new Checkpoint { Model = c.Model, Optimizer = c.Optimizer, Scheduler = sched, Generators = c.Generators, Step = 3 };
        var target = new Run("adam");
        var before = target.Sched.StateDict().ToJsonString();
        Assert.Throws<InvalidDataException>(() => bad.Restore(target.Model, target.Opt, target.Sched, target.Generators));
        Assert.Equal(before, target.Sched.StateDict().ToJsonString());
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
