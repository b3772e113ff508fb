using GradFlow.NN;
using GradFlow.Tests.Fixtures;

namespace GradFlow.Tests.NN;

/// <summary>Runs a module on a case of nn.json and compares outputs, input gradients, parameter gradients and buffers with PyTorch.</summary>
internal static class NNFixtures
{
    public const string File = "nn.json";

    public static FixtureCase Case(string name) => Fixture.Get(File, name);

    /// <summary>The state dict saved by the script ("param.*" keys, prefix removed).</summary>
    public static Dictionary<string, Tensor> StateDict(FixtureCase c) =>
        c.Tensors.Where(kv => kv.Key.StartsWith("param.", StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key["param.".Length..], kv => kv.Value);

    /// <summary>The inputs ("in.*"), float ones made to require grad.</summary>
    public static Dictionary<string, Tensor> Inputs(FixtureCase c) =>
        c.Tensors.Where(kv => kv.Key.StartsWith("in.", StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key["in.".Length..], kv =>
                kv.Value.DType.IsFloatingPoint() && !kv.Key.StartsWith("in.nograd_", StringComparison.Ordinal) ? kv.Value.Detach().Clone().RequireGrad() : kv.Value);

    /// <summary>
    /// Loads the case's weights into <paramref name="module"/> (strictly, so the names must be PyTorch's), runs
    /// <paramref name="forward"/>, backpropagates sum(out * gy) and compares everything the case recorded.
    /// </summary>
    public static void Check(string name, Module module, Func<Dictionary<string, Tensor>, Dictionary<string, Tensor>> forward,
        double rtol = 1e-5, double atol = 1e-6, bool train = true, string file = File)
    {
        var c = Fixture.Get(file, name);
        module.LoadStateDict(StateDict(c));
        module.Train(train);
        var inputs = Inputs(c);
        var outputs = forward(inputs);
        Tensor? total = null;
        foreach (var (k, y) in outputs)
        {
            Fixture.AssertClose(c["out." + k], y, $"{name}: out.{k}", rtol, atol);
            var term = (y * c["gy." + k]).Sum();
            total = total is null ? term : total + term;
        }
        if (total!.RequiresGrad) total.Backward();
        foreach (var (k, x) in inputs)
            if (c.Has("grad.in." + k))
                Fixture.AssertClose(c["grad.in." + k], x.Grad ?? Tensor.ZerosLike(x), $"{name}: grad.in.{k}", rtol, atol);
        foreach (var (k, p) in module.NamedParameters())
            if (c.Has("grad.param." + k))
                Fixture.AssertClose(c["grad.param." + k], p.Grad ?? Tensor.ZerosLike(p), $"{name}: grad.param.{k}", rtol, atol);
        foreach (var (k, b) in module.NamedBuffers())
            if (c.Has("after." + k))
                Fixture.AssertClose(c["after." + k], b, $"{name}: buffer {k} after the call", rtol, atol);
    }

    /// <summary>Check for a single-input module whose input is "x".</summary>
    public static void Check(string name, Module module, double rtol = 1e-5, double atol = 1e-6, bool train = true) =>
        Check(name, module, xs => new() { ["y"] = module.Call(xs["x"]) }, rtol, atol, train);
}
