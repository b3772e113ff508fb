using System.Globalization;
using System.Text.Json.Nodes;
using GradFlow.Formats;
using GradFlow.NN;
using GradFlow.Optim;

namespace GradFlow.Training;

/// <summary>
/// Everything needed to resume training exactly: model state (name -> tensor, as a state dict), optimiser
/// state, scheduler state, random generators' states and the step. Saved as one safetensors file: model
/// tensors under "model.", optimiser buffers under "optimizer.", and the rest as JSON in the metadata, with a
/// CRC-32C of every tensor and of the metadata, verified on load. Saving is atomic, so a crash leaves the
/// previous checkpoint intact.
/// </summary>
public sealed class Checkpoint
{
    private const string Format = "gradflow.checkpoint/2";

    /// <summary>Model tensors by state-dict name.</summary>
    public Dictionary<string, Tensor> Model { get; init; } = [];

    /// <summary>The optimiser's state, if one was captured.</summary>
    public OptimizerStateDict? Optimizer { get; init; }

    /// <summary>The scheduler's state, if one was captured.</summary>
    public JsonObject? Scheduler { get; init; }

    /// <summary>Generator states by a name the caller chooses ("init", "shuffle", "dropout").</summary>
    public Dictionary<string, ulong[]> Generators { get; init; } = [];

    /// <summary>The training step (or epoch) the checkpoint was taken at.</summary>
    public long Step { get; init; }

    /// <summary>Free-form strings kept with the checkpoint.</summary>
    public Dictionary<string, string> Metadata { get; init; } = [];

    /// <summary>Captures copies of the current state of the given objects (any may be null).</summary>
    public static Checkpoint Capture(IReadOnlyDictionary<string, Tensor> model, Optimizer? optimizer = null, ILRScheduler? scheduler = null,
        IReadOnlyDictionary<string, Generator>? generators = null, long step = 0)
    {
        Guard.NotNull(model, "Checkpoint.Capture", nameof(model));
        return new Checkpoint
        {
            Model = model.ToDictionary(kv => kv.Key, kv => kv.Value.Detach().Clone()),
            Optimizer = optimizer?.StateDict(),
            Scheduler = scheduler?.StateDict(),
            Generators = generators?.ToDictionary(kv => kv.Key, kv => kv.Value.GetState()) ?? [],
            Step = step,
        };
    }

    /// <summary>Captures a module's state dict (parameters and persistent buffers) with the rest.</summary>
    public static Checkpoint Capture(Module model, Optimizer? optimizer = null, ILRScheduler? scheduler = null,
        IReadOnlyDictionary<string, Generator>? generators = null, long step = 0)
    {
        Guard.NotNull(model, "Checkpoint.Capture", nameof(model));
        return Capture(model.StateDict(), optimizer, scheduler, generators, step);
    }

    /// <summary>Restores into a module through <see cref="Module.LoadStateDict"/> (strict), then the rest; see the other overload.</summary>
    public void Restore(Module model, Optimizer? optimizer = null, ILRScheduler? scheduler = null,
        IReadOnlyDictionary<string, Generator>? generators = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        Restore(model.StateDict(), optimizer, scheduler, generators, convertDTypes: true);
    }

    /// <summary>
    /// Restores into live objects: model tensors are copied in place by name (every name and shape must
    /// match), then the optimiser, scheduler and generators, each only if both sides have it. Everything is
    /// checked before anything changes (model names and shapes; the optimiser's hyper-parameters, buffers and
    /// counters with its constructor's rules; generator states; the scheduler's state), so a bad checkpoint
    /// throws naming the key and leaves the model, optimiser, scheduler and generators as they were.
    /// </summary>
    public void Restore(IReadOnlyDictionary<string, Tensor> model, Optimizer? optimizer = null, ILRScheduler? scheduler = null,
        IReadOnlyDictionary<string, Generator>? generators = null) => Restore(model, optimizer, scheduler, generators, convertDTypes: false);

    private void Restore(IReadOnlyDictionary<string, Tensor> target, Optimizer? optimizer, ILRScheduler? scheduler,
        IReadOnlyDictionary<string, Generator>? generators, bool convertDTypes)
    {
        ArgumentNullException.ThrowIfNull(target);
        CheckModel(target, convertDTypes);
        var installOptimizer = optimizer?.PrepareLoad(Optimizer ?? throw new InvalidOperationException("Checkpoint.Restore: the checkpoint has no optimizer state."));
        var states = new List<(Generator, ulong[])>();
        if (generators is not null)
            foreach (var (name, g) in generators)
            {
                var s = Generators.TryGetValue(name, out var found) ? found : throw new InvalidOperationException($"Checkpoint.Restore: the checkpoint has no generator '{name}'.");
                try
                {
                    new Generator(0).SetState(s);
                }
                catch (ArgumentException ex)
                {
                    throw new ArgumentException($"Checkpoint.Restore: generator '{name}': {ex.Message}", name, ex);
                }
                states.Add((g, s));
            }
        if (scheduler is not null) LoadScheduler(scheduler);
        // Nothing below can fail: every part was checked above.
        installOptimizer?.Invoke();
        foreach (var (g, s) in states) g.SetState(s);
        using (Autograd.NoGrad())
            foreach (var (name, t) in target) t.CopyFrom(convertDTypes ? Model[name].To(t.DType) : Model[name]);
    }

    // A scheduler checks its state as it loads it, so a failure puts its previous state back.
    private void LoadScheduler(ILRScheduler scheduler)
    {
        var state = Scheduler ?? throw new InvalidOperationException("Checkpoint.Restore: the checkpoint has no scheduler state.");
        var before = scheduler.StateDict();
        try
        {
            scheduler.LoadStateDict(state);
        }
        catch
        {
            scheduler.LoadStateDict(before);
            throw;
        }
    }

    private void CheckModel(IReadOnlyDictionary<string, Tensor> target, bool convertDTypes)
    {
        var missing = target.Keys.Where(k => !Model.ContainsKey(k)).ToList();
        var unexpected = Model.Keys.Where(k => !target.ContainsKey(k)).ToList();
        if (missing.Count > 0 || unexpected.Count > 0)
            Guard.ThrowInvalid("Checkpoint.Restore", $"model keys differ. Missing: [{string.Join(", ", missing)}]; unexpected: [{string.Join(", ", unexpected)}].");
        foreach (var (name, t) in target)
        {
            var src = Model[name];
            if (!src.Shape.SequenceEqual(t.Shape) || (src.DType != t.DType && !convertDTypes))
                throw new InvalidOperationException($"Checkpoint.Restore: '{name}' is {src.DType.Name()} {Guard.Shape(src)} in the checkpoint, {t.DType.Name()} {Guard.Shape(t)} in the model.");
        }
    }

    /// <summary>
    /// Writes the checkpoint atomically. The metadata carries a CRC-32C of every tensor (name, dtype, shape and
    /// little-endian data) under "checksums" and one of all other metadata under "state_crc32c", so the file
    /// stays plain safetensors for other tools while <see cref="Load"/> detects any changed byte.
    /// </summary>
    public void Save(string path)
    {
        var tensors = new Dictionary<string, Tensor>();
        foreach (var (k, v) in Model) tensors["model." + k] = v;
        if (Optimizer is not null) foreach (var (k, v) in Optimizer.ToTensors("optimizer.")) tensors[k] = v;
        var meta = new Dictionary<string, string>(Metadata)
        {
            ["format"] = Format,
            ["step"] = Step.ToString(CultureInfo.InvariantCulture),
            ["generators"] = new JsonObject(Generators.Select(kv => new KeyValuePair<string, JsonNode?>(kv.Key,
                new JsonArray(kv.Value.Select(w => (JsonNode?)JsonValue.Create(w.ToString(CultureInfo.InvariantCulture))).ToArray())))).ToJsonString(),
        };
        if (Optimizer is not null) meta["optimizer"] = Optimizer.ToJson().ToJsonString();
        if (Scheduler is not null) meta["scheduler"] = Scheduler.ToJsonString();
        meta[ChecksumsKey] = new JsonObject(tensors.Select(kv => new KeyValuePair<string, JsonNode?>(kv.Key, Hex(TensorChecksum(kv.Key, kv.Value))))).ToJsonString();
        meta[StateChecksumKey] = Hex(StateChecksum(meta));
        SafeTensors.Save(path, tensors, meta);
    }

    /// <summary>Reads a checkpoint; a damaged file gives InvalidDataException naming the file.</summary>
    public static Checkpoint Load(string path)
    {
        var content = SafeTensors.Load(path);
        try
        {
            return FromContent(content, path);
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"{path}: {ex.Message}", ex);
        }
    }

    private static Checkpoint FromContent(SafeTensorsContent content, string path)
    {
        var meta = content.Metadata;
        if (!meta.TryGetValue("format", out var format) || format != Format)
            throw new InvalidDataException($"Checkpoint: '{path}' is not a GradFlow checkpoint (format '{format ?? "none"}').");
        VerifyChecksums(content);
        if (!long.TryParse(Get(meta, "step"), NumberStyles.None, CultureInfo.InvariantCulture, out long step))
            throw new InvalidDataException("Checkpoint: the step is not a non-negative integer.");
        var model = new Dictionary<string, Tensor>();
        foreach (var (k, v) in content.Tensors)
            if (k.StartsWith("model.", StringComparison.Ordinal)) model[k["model.".Length..]] = v;
            else if (!k.StartsWith("optimizer.", StringComparison.Ordinal)) throw new InvalidDataException($"Checkpoint: unexpected tensor '{k}'.");
        var extra = meta.Where(kv => kv.Key is not ("format" or "step" or "generators" or "optimizer" or "scheduler" or ChecksumsKey or StateChecksumKey)).ToDictionary();
        return new Checkpoint
        {
            Model = model,
            Optimizer = meta.TryGetValue("optimizer", out var o) ? OptimizerStateDict.FromParts(ParseObject(o, "optimizer"), content.Tensors, "optimizer.") : null,
            Scheduler = meta.TryGetValue("scheduler", out var s) ? ParseObject(s, "scheduler") : null,
            Generators = ParseGenerators(Get(meta, "generators")),
            Step = step,
            Metadata = extra,
        };
    }

    private const string ChecksumsKey = "checksums";
    private const string StateChecksumKey = "state_crc32c";

    private static void VerifyChecksums(SafeTensorsContent content)
    {
        var meta = content.Metadata;
        string stored = Get(meta, StateChecksumKey);
        if (stored != Hex(StateChecksum(meta)))
            throw new InvalidDataException($"Checkpoint: the state's CRC-32C is {Hex(StateChecksum(meta))}, the file says {stored}: the metadata is damaged.");
        var sums = ParseObject(Get(meta, ChecksumsKey), ChecksumsKey);
        if (sums.Count != content.Tensors.Count)
            throw new InvalidDataException($"Checkpoint: the file lists {sums.Count} checksums for {content.Tensors.Count} tensors.");
        foreach (var (name, t) in content.Tensors)
        {
            string? expected = sums[name] is JsonValue v && v.TryGetValue(out string? h) ? h : null;
            if (expected is null) throw new InvalidDataException($"Checkpoint: tensor '{name}' has no checksum.");
            if (expected != Hex(TensorChecksum(name, t)))
                throw new InvalidDataException($"Checkpoint: tensor '{name}' fails its CRC-32C check ({Hex(TensorChecksum(name, t))}, the file says {expected}): its data is damaged.");
        }
    }

    // Over every metadata entry but this checksum itself, in ordinal key order: "key\0value\0".
    internal static uint StateChecksum(Dictionary<string, string> meta)
    {
        uint crc = 0;
        foreach (var key in meta.Keys.Where(k => k != StateChecksumKey).Order(StringComparer.Ordinal))
            crc = Crc32C.Append(crc, System.Text.Encoding.UTF8.GetBytes($"{key}\0{meta[key]}\0"));
        return crc;
    }

    // Name, dtype and shape are covered too: a header edit that keeps the byte count must not pass.
    private static uint TensorChecksum(string name, Tensor t)
    {
        uint crc = Crc32C.Compute(System.Text.Encoding.UTF8.GetBytes($"{name}\0{t.DType.Name()}\0{string.Join(",", t.Shape.ToArray())}\0"));
        var c = t.Contiguous();
        return t.DType switch
        {
            DType.Float32 => Crc32C.AppendLittleEndian<float>(crc, c.Span<float>()),
            DType.Float64 => Crc32C.AppendLittleEndian<double>(crc, c.Span<double>()),
            _ => Crc32C.AppendLittleEndian<long>(crc, c.Span<long>()),
        };
    }

    private static string Hex(uint crc) => crc.ToString("x8", CultureInfo.InvariantCulture);

    private static string Get(Dictionary<string, string> meta, string key) =>
        meta.TryGetValue(key, out var v) ? v : throw new InvalidDataException($"Checkpoint: metadata '{key}' is missing.");

    private static JsonObject ParseObject(string json, string what)
    {
        try
        {
            return JsonNode.Parse(json, documentOptions: new System.Text.Json.JsonDocumentOptions { MaxDepth = 16, AllowDuplicateProperties = false }) as JsonObject
                ?? throw new InvalidDataException($"Checkpoint: the {what} state is not a JSON object.");
        }
        catch (System.Text.Json.JsonException ex)
        {
            throw new InvalidDataException($"Checkpoint: the {what} state is not valid JSON ({ex.Message}).", ex);
        }
    }

    private static Dictionary<string, ulong[]> ParseGenerators(string json)
    {
        var d = new Dictionary<string, ulong[]>();
        foreach (var (name, node) in ParseObject(json, "generators"))
        {
            var arr = node as JsonArray ?? throw new InvalidDataException($"Checkpoint: generator '{name}' is not an array.");
            d[name] = arr.Select(w => w is JsonValue v && v.TryGetValue(out string? s) && ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out ulong u)
                ? u : throw new InvalidDataException($"Checkpoint: generator '{name}' holds a non-integer word.")).ToArray();
        }
        return d;
    }
}
