using System.Globalization;
using System.Text.Json.Nodes;
using GradFlow.Formats;
using GradFlow.NN;
using GradFlow.Optim;

namespace GradFlow.Training;

/// <summary>
/// Everything needed to resume training exactly: model state (name -> tensor, as a state dict), optimiser
/// state, scheduler state, random generators' states and the step. Saved as one safetensors file: model
/// tensors under "model.", optimiser buffers under "optimizer.", and the rest as JSON in the metadata.
/// Saving is atomic, so a crash leaves the previous checkpoint intact.
/// </summary>
public sealed class Checkpoint
{
    private const string Format = "gradflow.checkpoint/1";

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

    /// <summary>Restores into a module through <see cref="Module.LoadStateDict"/> (strict), then the rest.</summary>
    public void Restore(Module model, Optimizer? optimizer = null, ILRScheduler? scheduler = null,
        IReadOnlyDictionary<string, Generator>? generators = null)
    {
        Guard.NotNull(model, "Checkpoint.Restore", nameof(model));
        model.LoadStateDict(Model, strict: true);
        Restore(new Dictionary<string, Tensor>(), optimizer, scheduler, generators, model: false);
    }

    /// <summary>
    /// Restores into live objects: model tensors are copied in place by name (every name and shape must
    /// match), then the optimiser, scheduler and generators, each only if both sides have it.
    /// </summary>
    public void Restore(IReadOnlyDictionary<string, Tensor> model, Optimizer? optimizer = null, ILRScheduler? scheduler = null,
        IReadOnlyDictionary<string, Generator>? generators = null) => Restore(model, optimizer, scheduler, generators, model: true);

    private void Restore(IReadOnlyDictionary<string, Tensor> target, Optimizer? optimizer, ILRScheduler? scheduler,
        IReadOnlyDictionary<string, Generator>? generators, bool model)
    {
        Guard.NotNull(target, "Checkpoint.Restore", nameof(target));
        if (model) CopyModel(target);
        if (optimizer is not null)
            optimizer.LoadStateDict(Optimizer ?? throw new InvalidOperationException("Checkpoint.Restore: the checkpoint has no optimizer state."));
        if (scheduler is not null)
            scheduler.LoadStateDict(Scheduler ?? throw new InvalidOperationException("Checkpoint.Restore: the checkpoint has no scheduler state."));
        if (generators is not null)
            foreach (var (name, g) in generators)
                g.SetState(Generators.TryGetValue(name, out var s) ? s : throw new InvalidOperationException($"Checkpoint.Restore: the checkpoint has no generator '{name}'."));
    }

    private void CopyModel(IReadOnlyDictionary<string, Tensor> target)
    {
        var missing = target.Keys.Where(k => !Model.ContainsKey(k)).ToList();
        var unexpected = Model.Keys.Where(k => !target.ContainsKey(k)).ToList();
        if (missing.Count > 0 || unexpected.Count > 0)
            Guard.ThrowInvalid("Checkpoint.Restore", $"model keys differ. Missing: [{string.Join(", ", missing)}]; unexpected: [{string.Join(", ", unexpected)}].");
        foreach (var (name, t) in target)
        {
            var src = Model[name];
            if (!src.Shape.SequenceEqual(t.Shape) || src.DType != t.DType)
                Guard.ThrowInvalid("Checkpoint.Restore", $"'{name}' is {src.DType.Name()} {Guard.Shape(src)} in the checkpoint, {t.DType.Name()} {Guard.Shape(t)} in the model.");
            using (Autograd.NoGrad()) t.CopyFrom(src);
        }
    }

    /// <summary>Writes the checkpoint atomically.</summary>
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
        SafeTensors.Save(path, tensors, meta);
    }

    /// <summary>Reads a checkpoint; a damaged file gives InvalidDataException.</summary>
    public static Checkpoint Load(string path)
    {
        var content = SafeTensors.Load(path);
        var meta = content.Metadata;
        if (!meta.TryGetValue("format", out var format) || format != Format)
            throw new InvalidDataException($"Checkpoint: '{path}' is not a GradFlow checkpoint (format '{format ?? "none"}').");
        if (!long.TryParse(Get(meta, "step"), NumberStyles.None, CultureInfo.InvariantCulture, out long step))
            throw new InvalidDataException("Checkpoint: the step is not a non-negative integer.");
        var model = new Dictionary<string, Tensor>();
        foreach (var (k, v) in content.Tensors)
            if (k.StartsWith("model.", StringComparison.Ordinal)) model[k["model.".Length..]] = v;
            else if (!k.StartsWith("optimizer.", StringComparison.Ordinal)) throw new InvalidDataException($"Checkpoint: unexpected tensor '{k}'.");
        var extra = meta.Where(kv => kv.Key is not ("format" or "step" or "generators" or "optimizer" or "scheduler")).ToDictionary();
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

    private static string Get(Dictionary<string, string> meta, string key) =>
        meta.TryGetValue(key, out var v) ? v : throw new InvalidDataException($"Checkpoint: metadata '{key}' is missing.");

    private static JsonObject ParseObject(string json, string what)
    {
        try
        {
            return JsonNode.Parse(json, documentOptions: new System.Text.Json.JsonDocumentOptions { MaxDepth = 16 }) as JsonObject
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
