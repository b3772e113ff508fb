using GradFlow.Formats;
using GradFlow.NN;

namespace GradFlow.Onnx;

/// <summary>
/// Writes a module as an ONNX model (opset 17): one input "input", one output "output", the batch axis
/// dynamic, the parameters and buffers as initializers under their state-dict keys. The computation
/// exported is the module's eval-mode forward (Dropout is the identity, BatchNorm uses its running
/// statistics), as torch.onnx.export does by default.
/// </summary>
/// <remarks>
/// Export goes through a registry of converters keyed by module type, not by tracing the recorded
/// autograd graph. The recorded graph is the wrong level: it holds the ops of one call at one input
/// size (so every shape in it is static and a dynamic batch would have to be recovered), it holds
/// GradFlow's fused training ops (one Lstm node per direction, the packed attention projection) whose
/// ONNX counterparts differ in layout, and it loses which tensor is which parameter once views and
/// transposes intervene. A module knows what it means: Conv2d is one ONNX Conv, LayerNorm one
/// LayerNormalization, and a converter writes that directly, keeping the weights as they are. The cost
/// is that a user's module with its own Forward needs a converter: <see cref="Register{T}"/> takes one,
/// usually a few lines calling <see cref="OnnxExportContext.Emit"/> on its children (see docs/ONNX.md).
/// </remarks>
public static class OnnxExporter
{
    private static readonly Dictionary<Type, Func<OnnxExportContext, Module, OnnxValue, OnnxValue>> s_converters = OnnxConverters.BuiltIn();
    private static readonly Lock s_lock = new();

    /// <summary>
    /// Registers the converter for modules of type <typeparamref name="T"/> (replacing any): it receives the
    /// context, the module and its input, emits nodes and returns the output.
    /// </summary>
    public static void Register<T>(Func<OnnxExportContext, T, OnnxValue, OnnxValue> converter) where T : Module
    {
        Guard.NotNull(converter, nameof(Register), nameof(converter));
        lock (s_lock) s_converters[typeof(T)] = (c, m, x) => converter(c, (T)m, x);
    }

    /// <summary>Writes <paramref name="model"/> to <paramref name="path"/> atomically (see <see cref="Export(Module, int[], DType, int)"/>).</summary>
    public static void Export(Module model, string path, int[] inputShape, DType inputDType = DType.Float32, int dynamicAxis = 0)
    {
        Guard.NotNull(path, nameof(Export), nameof(path));
        var bytes = Export(model, inputShape, inputDType, dynamicAxis);
        AtomicFile.Write(path, s => s.Write(bytes));
    }

    /// <summary>
    /// The ONNX model of <paramref name="model"/> for inputs of <paramref name="inputShape"/> and
    /// <paramref name="inputDType"/> (int64 for an Embedding in front), with axis <paramref name="dynamicAxis"/>
    /// (the batch; -1 for none) left free.
    /// </summary>
    /// <exception cref="NotSupportedException">A module in the tree has no converter, or a setting has no ONNX form.</exception>
    public static byte[] Export(Module model, int[] inputShape, DType inputDType = DType.Float32, int dynamicAxis = 0) =>
        Build(model, inputShape, inputDType, dynamicAxis, keyPaddingMask: false, nameof(Export));

    /// <summary>
    /// The ONNX model of a model with self-attention (MultiheadAttention, TransformerEncoderLayer, TransformerEncoder,
    /// or a container of them) with a second input <c>key_padding_mask</c>: bool (N, S), true for a padded key, read
    /// by every self-attention in the model, as <c>MultiheadAttention.Call(x, x, x, keyPaddingMask)</c> and
    /// <c>TransformerEncoder.Call(src, null, srcKeyPaddingMask)</c> compute. N and S follow the first attention's
    /// layout (batch first or not) in <paramref name="inputShape"/>; the mask's axis is dynamic with the input's.
    /// </summary>
    /// <exception cref="NotSupportedException">The model has no MultiheadAttention, or a module has no converter.</exception>
    public static byte[] ExportWithKeyPaddingMask(Module model, int[] inputShape, int dynamicAxis = 0) =>
        Build(model, inputShape, DType.Float32, dynamicAxis, keyPaddingMask: true, nameof(ExportWithKeyPaddingMask));

    private static byte[] Build(Module model, int[] inputShape, DType inputDType, int dynamicAxis, bool keyPaddingMask, string op)
    {
        Guard.NotNull(model, op, nameof(model));
        Guard.NotNull(inputShape, op, nameof(inputShape));
        if (inputShape.Any(d => d <= 0)) Guard.ThrowArg(op, nameof(inputShape), $"sizes must be positive, got {Guard.Shape(inputShape)}.");
        if (dynamicAxis < -1 || dynamicAxis >= inputShape.Length)
            Guard.ThrowArg(op, nameof(dynamicAxis), $"{dynamicAxis} is not an axis of {Guard.Shape(inputShape)} (or -1 for none).");
        var ctx = new OnnxExportContext(model, Dispatch);
        int[] shape = (int[])inputShape.Clone();
        if (dynamicAxis >= 0) shape[dynamicAxis] = -1;
        if (keyPaddingMask)
        {
            var attention = model.Modules().OfType<MultiheadAttention>().FirstOrDefault()
                ?? throw new NotSupportedException($"OnnxExport: {model.TypeName} has no MultiheadAttention to read a key padding mask.");
            if (inputShape.Length != 3) Guard.ThrowArg(op, nameof(inputShape), $"expected a batched sequence [{(attention.BatchFirst ? "N, L" : "L, N")}, E], got {Guard.Shape(inputShape)}.");
            int batchAxis = attention.BatchFirst ? 0 : 1;
            ctx.KeyPaddingMask = new OnnxValue("key_padding_mask", [shape[batchAxis], shape[1 - batchAxis]], DType.Bool);
        }
        var input = new OnnxValue("input", shape, inputDType);
        var result = ctx.Emit(model, input);
        return ctx.Encode(input, result, model.TypeName);
    }

    private static OnnxValue Dispatch(OnnxExportContext ctx, Module module, OnnxValue input)
    {
        Func<OnnxExportContext, Module, OnnxValue, OnnxValue>? converter = null;
        lock (s_lock)
        {
            for (var t = module.GetType(); t is not null && converter is null; t = t.BaseType) s_converters.TryGetValue(t, out converter);
        }
        if (converter is null)
            throw new NotSupportedException($"OnnxExport: no converter for {module.TypeName} at '{module.Path}'; register one with OnnxExporter.Register<{module.GetType().Name}>.");
        string outer = ctx.Scope;
        ctx.Scope = module.Path;
        try
        {
            return converter(ctx, module, input);
        }
        finally
        {
            ctx.Scope = outer;
        }
    }
}
