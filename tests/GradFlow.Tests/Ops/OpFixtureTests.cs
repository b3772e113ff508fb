using System.Text.Json;
using GradFlow.Tests.Fixtures;

namespace GradFlow.Tests.Ops;

/// <summary>
/// Every differentiable op against PyTorch 1.13 in float32 (fixtures from tools/fixtures/make_op_fixtures.py):
/// the outputs, and the gradients of sum_i sum(out_i * w_i) with respect to every float input.
/// </summary>
public class OpFixtureTests
{
    public static IEnumerable<object[]> Cases => Fixture.Names("ops.json");

    // rtol 1e-5 is ~80 float32 ulps: room for SIMD exp/tanh approximations and for reductions, GEMM and softmax
    // summing in a different order than PyTorch's kernels (<= 101 terms here). No op needs a looser tolerance.
    private const double Rtol = 1e-5, Atol = 1e-6;

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesPyTorch(string name)
    {
        var c = Fixture.Get("ops.json", name);
        string op = c.Params.GetProperty("op").GetString()!;
        var inputs = new Dictionary<string, Tensor>();
        foreach (var key in c.Params.GetProperty("inputs").EnumerateArray().Select(e => e.GetString()!))
        {
            var t = c["in." + key].Clone();
            if (c.Has("grad." + key)) t.RequireGrad();
            inputs[key] = t;
        }

        var outputs = Run(op, c, inputs);

        Tensor? loss = null;
        for (int i = 0; i < outputs.Length; i++)
        {
            var expected = c[$"out.{i}"];
            Assert.Equal(expected.DType, outputs[i].DType);
            if (expected.DType == DType.Int64)
                Assert.True(expected.ToArray<long>().SequenceEqual(outputs[i].ToArray<long>()),
                    $"{name}: out.{i} is {outputs[i]}, PyTorch gives {expected}.");
            else
                Fixture.AssertClose(expected, outputs[i], $"{name}: out.{i}", Rtol, Atol);
            if (c.Has($"w.{i}"))
            {
                var term = (outputs[i] * c[$"w.{i}"]).Sum();
                loss = loss is null ? term : loss + term;
            }
        }
        Assert.False(c.Has($"out.{outputs.Length}"), $"{name}: PyTorch has more than {outputs.Length} outputs.");

        var graded = inputs.Where(kv => c.Has("grad." + kv.Key)).ToList();
        if (graded.Count == 0) return;
        Assert.NotNull(loss);
        loss.Backward();
        foreach (var (key, x) in graded)
        {
            Assert.True(x.Grad is not null, $"{name}: no gradient reached input {key}.");
            Fixture.AssertClose(c["grad." + key], x.Grad, $"{name}: grad.{key}", Rtol, Atol);
        }
    }

    private static Tensor[] Run(string op, FixtureCase c, Dictionary<string, Tensor> inp)
    {
        Tensor x = inp.GetValueOrDefault("x")!, y = inp.GetValueOrDefault("y")!;
        var p = c.Params;
        int Int(string k) => c.IntParam(k);
        double Dbl(string k) => c.Param(k);
        bool Keep() => p.TryGetProperty("keepDim", out var e) && e.GetBoolean();
        int[] Ints(string k) => p.GetProperty(k).EnumerateArray().Select(e => e.GetInt32()).ToArray();
        int[]? Dims() => p.TryGetProperty("dims", out var e) ? e.EnumerateArray().Select(d => d.GetInt32()).ToArray() : null;
        double? Opt(string k) => p.TryGetProperty(k, out var e) ? e.GetDouble() : null;
        Tensor[] One(Tensor t) => [t];
        Tensor[] All() => inp.Values.ToArray();

        return op switch
        {
            "add" => One(x + y),
            "sub" => One(x - y),
            "mul" => One(x * y),
            "div" => One(x / y),
            "mul_t" => One(x.T * y),
            "add_scalar" => One(x + Dbl("s")),
            "sub_scalar" => One(x - Dbl("s")),
            "rsub_scalar" => One(Dbl("s") - x),
            "mul_scalar" => One(x * Dbl("s")),
            "div_scalar" => One(x / Dbl("s")),
            "rdiv_scalar" => One(Dbl("s") / x),
            "neg" => One(-x),
            "reciprocal" => One(x.Reciprocal()),
            "pow_scalar" => One(x.Pow(Dbl("e"))),
            "pow_tensor" => One(x.Pow(y)),
            "exp" => One(x.Exp()),
            "exp_t" => One(x.T.Exp()),
            "log" => One(x.Log()),
            "sqrt" => One(x.Sqrt()),
            "abs" => One(x.Abs()),
            "sin" => One(x.Sin()),
            "cos" => One(x.Cos()),
            "tanh" => One(x.Tanh()),
            "sigmoid" => One(x.Sigmoid()),
            "relu" => One(x.Relu()),
            "clamp" => One(x.Clamp(Opt("min"), Opt("max"))),
            "where" => One(Tensor.Where(inp["cond"], x, y)),
            "sum_all" => One(x.Sum()),
            "sum" => One(x.Sum(Ints("dims"), Keep())),
            "mean_all" => One(x.Mean()),
            "mean" => One(x.Mean(Ints("dims"), Keep())),
            "var" => One(x.Var(Dims(), Int("correction"), Keep())),
            "std" => One(x.Std(Dims(), Int("correction"), Keep())),
            "max_all" => One(x.Max()),
            "min_all" => One(x.Min()),
            "max_dim" => Pair(x.Max(Int("dim"), Keep())),
            "min_dim" => Pair(x.Min(Int("dim"), Keep())),
            "argmax_all" => One(x.ArgMax()),
            "argmin_all" => One(x.ArgMin()),
            "argmax" => One(x.ArgMax(Int("dim"), Keep())),
            "argmin" => One(x.ArgMin(Int("dim"), Keep())),
            "logsumexp" => One(x.LogSumExp(Ints("dims"), Keep())),
            "norm" => One(x.Norm(NormP(p), Dims(), Keep())),
            "reshape" => One(x.Reshape(Ints("shape"))),
            "reshape_t" => One(x.T.Reshape(Ints("shape"))),
            "view" => One(x.View(Ints("shape"))),
            "transpose" => One(x.Transpose(Int("dim0"), Int("dim1"))),
            "t" => One(x.T),
            "permute" => One(x.Permute(Ints("dims"))),
            "expand" => One(x.Expand(Ints("shape"))),
            "slice" => One(x.Slice(Int("dim"), Int("start"), Int("end"), Int("step"))),
            "narrow" => One(x.Narrow(Int("dim"), Int("start"), Int("length"))),
            "select" => One(x.Select(Int("dim"), Int("index"))),
            "squeeze" => One(x.Squeeze(p.TryGetProperty("dim", out var sd) ? sd.GetInt32() : null)),
            "unsqueeze" => One(x.Unsqueeze(Int("dim"))),
            "flatten" => One(x.Flatten(Int("start"), Int("end"))),
            "matmul" => One(x.MatMul(y)),
            "matmul_tt" => One(x.T.MatMul(y.T)),
            "matmul_t_left" => One(x.T.MatMul(y)),
            "matmul_sliced" => One(x.Slice(1, 1, 4).MatMul(y)),
            "cat" => One(Tensor.Cat(All(), Int("dim"))),
            "stack" => One(Tensor.Stack(All(), Int("dim"))),
            "split" => x.Split(Int("size"), Int("dim")),
            "split_sizes" => x.Split(Ints("sizes"), Int("dim")),
            "chunk" => x.Chunk(Int("chunks"), Int("dim")),
            "gather" => One(x.Gather(Int("dim"), inp["i"])),
            "scatter" => One(x.Scatter(Int("dim"), inp["i"], inp["s"])),
            "scatter_add" => One(x.ScatterAdd(Int("dim"), inp["i"], inp["s"])),
            "index_select" => One(x.IndexSelect(Int("dim"), inp["i"])),
            "index_add" => One(x.IndexAdd(Int("dim"), inp["i"], inp["s"])),
            "softmax" => One(x.Softmax(Int("dim"))),
            "log_softmax" => One(x.LogSoftmax(Int("dim"))),
            _ => throw new InvalidOperationException($"{c.Name}: no GradFlow mapping for fixture op '{op}'."),
        };
    }

    private static Tensor[] Pair((Tensor Values, Tensor Indices) r) => [r.Values, r.Indices];

    private static double NormP(JsonElement p) =>
        p.GetProperty("p") is { ValueKind: JsonValueKind.String } s && s.GetString() == "inf" ? double.PositiveInfinity : p.GetProperty("p").GetDouble();

    [Fact]
    public void EveryFixtureOpIsCovered()
    {
        var ops = Fixture.Load("ops.json").Select(c => c.Params.GetProperty("op").GetString()).ToHashSet();
        foreach (var required in new[] { "add", "sub", "mul", "div", "pow_tensor", "where", "var", "std", "max_dim", "norm",
                     "matmul", "cat", "stack", "split", "chunk", "gather", "scatter", "scatter_add", "index_select", "index_add",
                     "softmax", "log_softmax" })
            Assert.Contains(required, ops);
    }
}
