using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using GradFlow.Diagnostics;

namespace GradFlow.Reporting;

/// <summary>
/// The run log's JSON, written and read by hand so that the field names in docs/RUNLOG.md are the code's.
/// Optional values are left out when null; non-finite doubles are the strings "NaN", "Infinity" and
/// "-Infinity" (JSON has no literal for them). Readers ignore fields they do not know.
/// </summary>
internal static partial class RunLogJson
{
    /// <summary>Compact, and escaping only what JSON requires (control characters stay escaped, so a line never breaks).</summary>
    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = false };

    public static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = 64, AllowDuplicateProperties = false };

    public static void WriteHeader(Utf8JsonWriter w, RunLogHeader header)
    {
        w.WriteStartObject();
        w.WriteString("schema", RunLog.Schema);
        w.WriteString("type", "header");
        w.WriteString("startTime", header.StartTime.ToUniversalTime());
        w.WriteString("gradflowVersion", header.GradFlowVersion);
        w.WritePropertyName("metadata");
        header.Metadata.WriteTo(w);
        w.WriteEndObject();
    }

    public static void WriteStep(Utf8JsonWriter w, StepRecord r, DateTimeOffset time)
    {
        w.WriteStartObject();
        w.WriteString("schema", RunLog.Schema);
        w.WriteString("type", "step");
        w.WriteString("time", time.ToUniversalTime());
        w.WriteNumber("step", r.Step);
        Optional(w, "loss", r.Loss);
        Optional(w, "learningRate", r.LearningRate);
        Number(w, "globalGradNorm", r.GlobalGradNorm);
        Optional(w, "clippedGradNorm", r.ClippedGradNorm);
        if (r.GradientsCarriedOver > 0) w.WriteNumber("gradientsCarriedOver", r.GradientsCarriedOver);
        WriteArray(w, "parameters", r.Parameters, Parameter);
        WriteArray(w, "layers", r.Layers, Layer);
        WriteArray(w, "flow", r.Flow, Flow);
        WriteArray(w, "activations", r.Activations, Activation);
        RecurrentSteps(w, r.RecurrentSteps);
        if (r.Curvature is { } c)
        {
            w.WriteStartObject("curvature");
            Curvature(w, c);
            w.WriteEndObject();
        }
        if (r.Setup is { } setup)
        {
            w.WriteStartObject("setup");
            Setup(w, setup);
            w.WriteEndObject();
        }
        if (r.Distributed is { } d) Distributed(w, d);
        w.WriteEndObject();
    }

    private static void Setup(Utf8JsonWriter w, RunSetup s)
    {
        WriteArray(w, "parameters", s.Parameters, (w, p) =>
        {
            w.WriteString("name", p.Name);
            w.WriteStartArray("shape");
            foreach (int d in p.Shape) w.WriteNumberValue(d);
            w.WriteEndArray();
            w.WriteNumber("fanIn", p.FanIn);
            w.WriteNumber("fanOut", p.FanOut);
            if (p.LayerType is { } t) w.WriteString("layerType", t);
            if (p.WeightDecay is { } wd) w.WriteNumber("weightDecay", wd);
        });
        if (s.Dropouts is { } dropouts)
            WriteArray(w, "dropouts", dropouts, (w, d) =>
            {
                w.WriteString("name", d.Name);
                w.WriteString("layerType", d.LayerType);
                Number(w, "p", d.P);
                w.WriteBoolean("training", d.Training);
                if (d.After is { } after) w.WriteString("after", after);
            });
        if (s.Optimizer is not { } o) return;
        w.WriteStartObject("optimizer");
        w.WriteString("name", o.Name);
        Number(w, "learningRate", o.LearningRate);
        Number(w, "weightDecay", o.WeightDecay);
        Optional(w, "momentum", o.Momentum);
        Optional(w, "beta1", o.Beta1);
        Optional(w, "beta2", o.Beta2);
        w.WriteBoolean("decoupledWeightDecay", o.DecoupledWeightDecay);
        w.WriteEndObject();
    }

    private static void Curvature(Utf8JsonWriter w, SharpnessProbeResult c)
    {
        w.WriteString("optimizer", c.Optimizer);
        Number(w, "learningRate", c.LearningRate);
        Number(w, "loss", c.Loss);
        Optional(w, "sharpness", c.Sharpness);
        Optional(w, "preconditionedSharpness", c.PreconditionedSharpness);
        Optional(w, "stabilityThreshold", c.StabilityThreshold);
        w.WriteString("rule", c.Rule);
        Optional(w, "ratio", c.Ratio);
        w.WriteNumber("hvpCount", c.HvpCount);
        w.WriteBoolean("converged", c.Converged);
    }

    private static void WriteArray<T>(Utf8JsonWriter w, string name, IReadOnlyList<T> items, Action<Utf8JsonWriter, T> write)
    {
        w.WriteStartArray(name);
        foreach (var item in items)
        {
            w.WriteStartObject();
            write(w, item);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private static void Parameter(Utf8JsonWriter w, ParameterStats p)
    {
        w.WriteString("name", p.Name);
        w.WriteString("layer", p.Layer);
        if (p.Gradient is { } g) Stats(w, "gradient", g);
        Number(w, "paramNorm", p.ParamNorm);
        Optional(w, "updateNorm", p.UpdateNorm);
    }

    private static void Layer(Utf8JsonWriter w, LayerGradientStats l)
    {
        w.WriteString("layer", l.Layer);
        w.WriteNumber("depth", l.Depth);
        Stats(w, "gradient", l.Gradient);
        Number(w, "paramNorm", l.ParamNorm);
        Optional(w, "updateNorm", l.UpdateNorm);
    }

    private static void Flow(Utf8JsonWriter w, FlowStats f)
    {
        w.WriteString("layer", f.Layer);
        w.WriteNumber("depth", f.Depth);
        Number(w, "inputGradNorm", f.InputGradNorm);
        w.WriteNumber("nonFinite", f.NonFinite);
    }

    private static void Activation(Utf8JsonWriter w, ActivationStats a)
    {
        w.WriteString("layer", a.Layer);
        w.WriteString("op", a.Op);
        w.WriteNumber("depth", a.Depth);
        w.WriteNumber("units", a.Units);
        Optional(w, "deadFraction", a.DeadFraction);
        Optional(w, "deadWindowFraction", a.DeadWindowFraction);
        Optional(w, "saturatedFraction", a.SaturatedFraction);
        Number(w, "mean", a.Mean);
        Number(w, "std", a.Std);
    }

    private static void Stats(Utf8JsonWriter w, string name, TensorStats s)
    {
        w.WriteStartObject(name);
        w.WriteNumber("count", s.Count);
        Number(w, "l2Norm", s.L2Norm);
        Number(w, "meanAbs", s.MeanAbs);
        Number(w, "maxAbs", s.MaxAbs);
        Number(w, "rms", s.Rms);
        Number(w, "zeroFraction", s.ZeroFraction);
        w.WriteNumber("nanCount", s.NaNCount);
        w.WriteNumber("infCount", s.InfCount);
        if (s.Histogram is { } h)
        {
            w.WriteStartObject("histogram");
            Buckets(w, "positive", h, negative: false);
            Buckets(w, "negative", h, negative: true);
            w.WriteNumber("zero", h.Zero);
            w.WriteNumber("nonFinite", h.NonFinite);
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    // Only the non-empty buckets, as [exponent, count] pairs: a typical gradient fills 10 to 20 of the 56.
    private static void Buckets(Utf8JsonWriter w, string name, Log2Histogram h, bool negative)
    {
        w.WriteStartArray(name);
        for (int i = 0; i < Log2Histogram.BucketCount; i++)
        {
            long count = h.At(negative, i); // read in place: Positive and Negative would expand the compact counts
            if (count == 0) continue;
            w.WriteStartArray();
            w.WriteNumberValue(Log2Histogram.MinExponent + i);
            w.WriteNumberValue(count);
            w.WriteEndArray();
        }
        w.WriteEndArray();
    }

    private static void Number(Utf8JsonWriter w, string name, double value)
    {
        w.WritePropertyName(name);
        NumberValue(w, value);
    }

    private static void NumberValue(Utf8JsonWriter w, double value)
    {
        if (double.IsFinite(value)) w.WriteNumberValue(value);
        else w.WriteStringValue(double.IsNaN(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity");
    }

    private static void Numbers(Utf8JsonWriter w, string name, IReadOnlyList<double> values)
    {
        w.WriteStartArray(name);
        for (int i = 0; i < values.Count; i++) NumberValue(w, values[i]);
        w.WriteEndArray();
    }

    private static void Optional(Utf8JsonWriter w, string name, double? value)
    {
        if (value is { } v) Number(w, name, v);
    }

    private static readonly int CurrentVersion = int.Parse(RunLog.Schema.AsSpan(RunLog.SchemaFamily.Length), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Reads a line's "schema" and "type"; an earlier version of the schema is read, a later one throws NotSupportedException.</summary>
    public static string LineType(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"expected a JSON object, found {root.ValueKind}.");
        string schema = String(root, "schema");
        if (schema != RunLog.Schema)
        {
            int version = 0;
            bool family = schema.StartsWith(RunLog.SchemaFamily, StringComparison.Ordinal)
                && int.TryParse(schema.AsSpan(RunLog.SchemaFamily.Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out version)
                && version >= 1;
            // Every earlier version is a subset of the current one (docs/RUNLOG.md); only a later number is a newer writer.
            if (family && version < CurrentVersion) return String(root, "type");
            if (family)
                throw new NotSupportedException($"schema '{schema}' is not supported: this GradFlow reads '{RunLog.Schema}'. A newer GradFlow wrote this log; upgrade to read it.");
            throw new InvalidDataException($"schema '{schema}' is not a GradFlow run log ('{RunLog.Schema}').");
        }
        return String(root, "type");
    }

    public static RunLogHeader ReadHeader(JsonElement root)
    {
        var metadata = Optional(root, "metadata") is { } m
            ? m.ValueKind == JsonValueKind.Object ? (JsonObject)JsonNode.Parse(CheckedText(m).GetRawText())! : throw Expected("metadata", "an object", m)
            : [];
        return new RunLogHeader(Time(root, "startTime"), String(root, "gradflowVersion"), metadata);
    }

    // Decodes every name and string once, so a lone surrogate escape fails while the line is read (the
    // reader reports it as corruption), not later when the user reads the metadata.
    private static JsonElement CheckedText(JsonElement e)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var p in e.EnumerateObject()) { _ = p.Name; CheckedText(p.Value); }
                break;
            case JsonValueKind.Array:
                foreach (var item in e.EnumerateArray()) CheckedText(item);
                break;
            case JsonValueKind.String:
                _ = e.GetString();
                break;
        }
        return e;
    }

    public static RunLogEntry ReadStep(JsonElement root) => new(Time(root, "time"), new StepRecord
    {
        Step = Long(root, "step"),
        Loss = OptionalDouble(root, "loss"),
        LearningRate = OptionalDouble(root, "learningRate"),
        GlobalGradNorm = Double(root, "globalGradNorm"),
        ClippedGradNorm = OptionalDouble(root, "clippedGradNorm"),
        GradientsCarriedOver = Optional(root, "gradientsCarriedOver") is { } carried ? IntValue(carried, "gradientsCarriedOver") : 0,
        Parameters = Array(root, "parameters", p => new ParameterStats(String(p, "name"), String(p, "layer"),
            Optional(p, "gradient") is { } g ? ReadStats(g) : null, Double(p, "paramNorm"), OptionalDouble(p, "updateNorm"))),
        Layers = Array(root, "layers", l => new LayerGradientStats(String(l, "layer"), Int(l, "depth"), ReadStats(Required(l, "gradient")),
            Double(l, "paramNorm"), OptionalDouble(l, "updateNorm"))),
        Flow = Array(root, "flow", f => new FlowStats(String(f, "layer"), Int(f, "depth"), Double(f, "inputGradNorm"), Long(f, "nonFinite"))),
        Activations = Array(root, "activations", a => new ActivationStats(String(a, "layer"), String(a, "op"), Int(a, "depth"), Int(a, "units"),
            OptionalDouble(a, "deadFraction"), OptionalDouble(a, "deadWindowFraction"), OptionalDouble(a, "saturatedFraction"),
            Double(a, "mean"), Double(a, "std"))),
        RecurrentSteps = ReadRecurrentSteps(root),
        Curvature = Optional(root, "curvature") is { } c ? ReadCurvature(Long(root, "step"), c) : null,
        Setup = Optional(root, "setup") is { } s ? ReadSetup(s) : null,
        Distributed = Optional(root, "distributed") is { } d ? ReadDistributed(d) : null,
    });

    private static RunSetup ReadSetup(JsonElement s)
    {
        if (s.ValueKind != JsonValueKind.Object) throw Expected("setup", "an object", s);
        var parameters = Array(s, "parameters", p =>
        {
            var shape = Required(p, "shape");
            if (shape.ValueKind != JsonValueKind.Array) throw Expected("shape", "an array", shape);
            var dims = shape.EnumerateArray().Select(d => IntValue(d, "shape")).ToArray();
            return new ParameterShape(String(p, "name"), dims, Int(p, "fanIn"), Int(p, "fanOut"), Optional(p, "layerType") is { } t ? String(p, "layerType") : null,
                OptionalDouble(p, "weightDecay") is { } wd && !(wd >= 0 && double.IsFinite(wd)) ? throw Expected("weightDecay", "a finite number >= 0", p.GetProperty("weightDecay"))
                    : OptionalDouble(p, "weightDecay"));
        });
        OptimizerSettings? optimizer = null;
        if (Optional(s, "optimizer") is { } o)
        {
            if (o.ValueKind != JsonValueKind.Object) throw Expected("optimizer", "an object", o);
            var decoupled = Required(o, "decoupledWeightDecay");
            if (decoupled.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) throw Expected("decoupledWeightDecay", "true or false", decoupled);
            optimizer = new OptimizerSettings(String(o, "name"), Double(o, "learningRate"), Double(o, "weightDecay"), OptionalDouble(o, "momentum"),
                OptionalDouble(o, "beta1"), OptionalDouble(o, "beta2"), decoupled.GetBoolean());
        }
        // Absent in logs written before the field: the dropouts are then unknown (null), not "none".
        IReadOnlyList<DropoutLayer>? dropouts = Optional(s, "dropouts") is null ? null : Array(s, "dropouts", d =>
        {
            var training = Required(d, "training");
            if (training.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) throw Expected("training", "true or false", training);
            return new DropoutLayer(String(d, "name"), String(d, "layerType"), Double(d, "p"), training.GetBoolean(), Optional(d, "after") is null ? null : String(d, "after"));
        });
        return new RunSetup(parameters, optimizer, dropouts);
    }

    private static SharpnessProbeResult ReadCurvature(long step, JsonElement c)
    {
        if (c.ValueKind != JsonValueKind.Object) throw Expected("curvature", "an object", c);
        var converged = Required(c, "converged");
        if (converged.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) throw Expected("converged", "true or false", converged);
        return new SharpnessProbeResult(step, String(c, "optimizer"), Double(c, "learningRate"), Double(c, "loss"), OptionalDouble(c, "sharpness"),
            OptionalDouble(c, "preconditionedSharpness"), OptionalDouble(c, "stabilityThreshold"), String(c, "rule"), OptionalDouble(c, "ratio"),
            Long(c, "hvpCount"), converged.GetBoolean());
    }

    private static TensorStats ReadStats(JsonElement s)
    {
        if (s.ValueKind != JsonValueKind.Object) throw Expected("gradient", "an object", s);
        Log2Histogram? histogram = null;
        if (Optional(s, "histogram") is { } h)
        {
            if (h.ValueKind != JsonValueKind.Object) throw Expected("histogram", "an object", h);
            histogram = new Log2Histogram { Zero = Long(h, "zero"), NonFinite = Long(h, "nonFinite") };
            ReadBuckets(h, "positive", histogram.Positive);
            ReadBuckets(h, "negative", histogram.Negative);
        }
        return new TensorStats(Long(s, "count"), Double(s, "l2Norm"), Double(s, "meanAbs"), Double(s, "maxAbs"), Double(s, "rms"),
            Double(s, "zeroFraction"), Long(s, "nanCount"), Long(s, "infCount"), histogram);
    }

    private static void ReadBuckets(JsonElement h, string name, long[] counts)
    {
        var array = Required(h, name);
        if (array.ValueKind != JsonValueKind.Array) throw Expected(name, "an array", array);
        foreach (var pair in array.EnumerateArray())
        {
            if (pair.ValueKind != JsonValueKind.Array || pair.GetArrayLength() != 2) throw Expected(name, "[exponent, count] pairs", pair);
            int e = IntValue(pair[0], name + " exponent");
            if (e < Log2Histogram.MinExponent || e > Log2Histogram.MaxExponent)
                throw new InvalidDataException($"field '{name}': exponent {e} is outside [{Log2Histogram.MinExponent}, {Log2Histogram.MaxExponent}].");
            counts[e - Log2Histogram.MinExponent] += LongValue(pair[1], name + " count");
        }
    }

    private static IReadOnlyList<T> Array<T>(JsonElement obj, string name, Func<JsonElement, T> read)
    {
        var array = Required(obj, name);
        if (array.ValueKind != JsonValueKind.Array) throw Expected(name, "an array", array);
        var items = new T[array.GetArrayLength()];
        int i = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Object) throw Expected($"{name}[{i}]", "an object", item);
            items[i++] = read(item);
        }
        return items;
    }

    private static JsonElement Required(JsonElement obj, string name) =>
        Optional(obj, name) ?? throw new InvalidDataException($"missing required field '{name}'.");

    private static JsonElement? Optional(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    private static string String(JsonElement obj, string name)
    {
        var v = Required(obj, name);
        return v.ValueKind == JsonValueKind.String ? v.GetString()! : throw Expected(name, "a string", v);
    }

    private static DateTimeOffset Time(JsonElement obj, string name)
    {
        var v = Required(obj, name);
        return v.ValueKind == JsonValueKind.String && v.TryGetDateTimeOffset(out var t) ? t : throw Expected(name, "an ISO 8601 time", v);
    }

    private static long Long(JsonElement obj, string name) => LongValue(Required(obj, name), name);

    private static long LongValue(JsonElement v, string name) =>
        v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long x) ? x : throw Expected(name, "an integer", v);

    private static int Int(JsonElement obj, string name) => IntValue(Required(obj, name), name);

    private static int IntValue(JsonElement v, string name) =>
        v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int x) ? x : throw Expected(name, "a 32-bit integer", v);

    private static double Double(JsonElement obj, string name) => ToDouble(Required(obj, name), name);

    private static double? OptionalDouble(JsonElement obj, string name) => Optional(obj, name) is { } v ? ToDouble(v, name) : null;

    private static double ToDouble(JsonElement v, string name) => v.ValueKind switch
    {
        JsonValueKind.Number when v.TryGetDouble(out double x) => x,
        JsonValueKind.String when v.ValueEquals("NaN") => double.NaN,
        JsonValueKind.String when v.ValueEquals("Infinity") => double.PositiveInfinity,
        JsonValueKind.String when v.ValueEquals("-Infinity") => double.NegativeInfinity,
        _ => throw Expected(name, "a number", v),
    };

    private static InvalidDataException Expected(string name, string what, JsonElement found)
    {
        string text = found.GetRawText();
        return new InvalidDataException($"field '{name}': expected {what}, found {(text.Length > 40 ? text[..40] + "..." : text)}.");
    }
}
