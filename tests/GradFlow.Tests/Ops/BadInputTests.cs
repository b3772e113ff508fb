namespace GradFlow.Tests.Ops;

/// <summary>
/// Every public op given wrong shapes, dims, dtypes, out-of-range indices or nulls: an ArgumentException or
/// InvalidOperationException whose message names the op and the shapes involved; never an exception from
/// inside (IndexOutOfRange, NullReference, DivideByZero) and never a silent answer.
/// </summary>
public class BadInputTests
{
    private static Tensor M(params int[] shape) => Tensor.Zeros(shape);
    private static Tensor L(params long[] v) => Tensor.FromArray(v);
    private static Tensor Idx(long[] v, params int[] shape) => Tensor.FromArray(v, shape);

    private static readonly Dictionary<string, (Func<object?> Call, string[] Mentions)> s_cases = new()
    {
        ["Add shapes"] = (() => M(2, 3) + M(4), ["Add", "[2, 3]", "[4]"]),
        ["Sub shapes"] = (() => M(2, 3) - M(3, 2), ["Sub", "[2, 3]", "[3, 2]"]),
        ["Mul dtypes"] = (() => M(2) * Tensor.Zeros([2], DType.Float64), ["Mul", "float32", "float64"]),
        ["Div shapes"] = (() => M(5) / M(2), ["Div", "[5]", "[2]"]),
        ["Div int64"] = (() => L(1, 2).Div(L(1, 0)), ["Div", "int64", "[2]"]),
        ["Add null"] = (() => M(2) + (Tensor)null!, ["Add", "other"]),
        ["Mul int64 by fraction"] = (() => L(1, 2) * 0.5, ["Mul", "int64", "[2]"]),
        ["Pow tensor shapes"] = (() => M(2, 3).Pow(M(4)), ["Pow", "[2, 3]", "[4]"]),
        ["Pow tensor null"] = (() => M(2).Pow(null!), ["Pow"]),
        ["Pow int64"] = (() => L(1, 2).Pow(2), ["Pow", "int64"]),
        ["Exp int64"] = (() => L(1, 2).Exp(), ["Exp", "int64", "[2]"]),
        ["Clamp min > max"] = (() => M(2).Clamp(1, 0), ["Clamp", "min"]),
        ["Clamp no bounds"] = (() => M(2).Clamp(), ["Clamp"]),
        ["Where shapes"] = (() => Tensor.Where(M(2), M(3), M(3)), ["Where", "[2]", "[3]"]),
        ["Where dtypes"] = (() => Tensor.Where(M(2), M(2), L(1, 2)), ["Where", "float32", "int64"]),
        ["Where null"] = (() => Tensor.Where(M(2), null!, M(2)), ["Where"]),
        ["Eq shapes"] = (() => M(2).Eq(M(3)), ["Eq", "[2]", "[3]"]),
        ["Sum dim"] = (() => M(2, 3).Sum(2), ["Sum", "dim 2", "rank 2"]),
        ["Sum duplicate dims"] = (() => M(2, 3).Sum([1, -1]), ["Sum", "twice"]),
        ["Mean int64"] = (() => L(1, 2).Mean(), ["Mean", "int64", "[2]"]),
        ["Var dim"] = (() => M(2, 3).Var([3]), ["Var", "dim 3"]),
        ["Max dim"] = (() => M(2, 3).Max(-3), ["Max", "dim -3", "rank 2"]),
        ["Max empty"] = (() => M(0, 3).Max(), ["Max", "[0, 3]"]),
        ["Min dim of size 0"] = (() => M(0, 3).Min(0), ["Min", "[0, 3]"]),
        ["ArgMax dim"] = (() => M(2, 3).ArgMax(5), ["Max", "dim 5"]),
        ["Multinomial rank"] = (() => M(2, 3, 4).Multinomial(1), ["Multinomial", "[2, 3, 4]"]),
        ["Multinomial int64"] = (() => L(1, 2).Multinomial(1), ["Multinomial", "int64"]),
        ["Multinomial negative weight"] = (() => Tensor.FromArray([0.5f, -1f]).Multinomial(1), ["Multinomial", "non-negative"]),
        ["Multinomial all zero"] = (() => M(2, 3).Multinomial(1), ["Multinomial", "[2, 3]"]),
        ["Multinomial too many without replacement"] = (() => Tensor.FromArray([1f, 0f, 1f]).Multinomial(3), ["Multinomial", "numSamples"]),
        ["LogSumExp dim"] = (() => M(2, 3).LogSumExp(2), ["LogSumExp", "dim 2"]),
        ["Norm p"] = (() => M(2, 3).Norm(-1), ["Norm", "p"]),
        ["Softmax dim"] = (() => M(2, 3).Softmax(2), ["Softmax", "dim 2"]),
        ["LogSoftmax int64"] = (() => L(1, 2).LogSoftmax(0), ["LogSoftmax", "int64"]),
        ["Reshape count"] = (() => M(2, 3).Reshape(4, 2), ["Reshape", "[4, 2]", "[2, 3]"]),
        ["Reshape two -1"] = (() => M(2, 3).Reshape(-1, -1), ["Reshape", "-1"]),
        ["Reshape infer"] = (() => M(2, 3).Reshape(4, -1), ["Reshape", "[4, -1]", "[2, 3]"]),
        ["View strided"] = (() => M(2, 3).T.View(6), ["View", "[3, 2]"]),
        ["Transpose dim"] = (() => M(2, 3).Transpose(0, 2), ["Transpose", "dim 2"]),
        ["T rank 3"] = (() => M(2, 3, 4).T, ["T", "[2, 3, 4]"]),
        ["Permute count"] = (() => M(2, 3).Permute(0), ["Permute", "[2, 3]"]),
        ["Permute repeat"] = (() => M(2, 3).Permute(1, 1), ["Permute", "repeats"]),
        ["Expand size"] = (() => M(2, 3).Expand(4, 3), ["Expand", "[2, 3]", "[4, 3]"]),
        ["Expand fewer dims"] = (() => M(2, 3).Expand(3), ["Expand", "[2, 3]", "[3]"]),
        ["Expand negative"] = (() => M(1).Expand(-2), ["Expand", "[-2]"]),
        ["Slice step"] = (() => M(2, 3).Slice(1, 0, 3, 0), ["Slice", "step"]),
        ["Slice dim"] = (() => M(2, 3).Slice(2, 0, 1), ["Slice", "dim 2"]),
        ["Slice scalar"] = (() => Tensor.Scalar(1).Slice(0, 0, 1), ["Slice", "[]"]),
        ["Narrow range"] = (() => M(2, 3).Narrow(1, 2, 2), ["Narrow", "[2, 3]"]),
        ["Select index"] = (() => M(2, 3).Select(0, 2), ["Select", "index 2", "[2, 3]"]),
        ["Select scalar"] = (() => Tensor.Scalar(1).Select(0, 0), ["Select", "[]"]),
        ["Indexer too many"] = (() => M(2, 3)[0, 0, 0], ["indexer", "[2, 3]"]),
        ["Indexer out of range"] = (() => M(2, 3)[0, 3], ["indexer", "index 3", "dim 1", "size 3"]),
        ["Size dim"] = (() => M(2, 3).Size(2), ["Size", "dim 2"]),
        ["Size scalar"] = (() => Tensor.Scalar(1).Size(0), ["Size", "[]"]),
        ["Squeeze dim"] = (() => M(2, 1).Squeeze(2), ["Squeeze", "dim 2"]),
        ["Unsqueeze dim"] = (() => M(2, 1).Unsqueeze(3), ["Unsqueeze", "dim 3"]),
        ["Flatten order"] = (() => M(2, 3, 4).Flatten(2, 1), ["Flatten", "[2, 3, 4]"]),
        ["MatMul inner"] = (() => M(3, 4).MatMul(M(5, 2)), ["MatMul", "[3, 4]", "[5, 2]"]),
        ["MatMul vectors"] = (() => M(3).MatMul(M(4)), ["MatMul", "3", "4"]),
        ["MatMul batch"] = (() => M(2, 3, 4).MatMul(M(3, 4, 5)), ["MatMul", "[2]", "[3]"]),
        ["MatMul scalar"] = (() => Tensor.Scalar(1).MatMul(M(2)), ["MatMul", "[]", "[2]"]),
        ["MatMul int64"] = (() => Tensor.Zeros([2, 2], DType.Int64).MatMul(Tensor.Zeros([2, 2], DType.Int64)), ["MatMul", "int64"]),
        ["MatMul null"] = (() => M(2).MatMul(null!), ["MatMul", "other"]),
        ["Cat shapes"] = (() => Tensor.Cat([M(2, 3), M(3, 2)], 1), ["Cat", "[3, 2]", "[2, 3]"]),
        ["Cat ranks"] = (() => Tensor.Cat([M(2, 3), M(3)]), ["Cat", "[3]", "[2, 3]"]),
        ["Cat empty"] = (() => Tensor.Cat([]), ["Cat", "at least one"]),
        ["Cat dim"] = (() => Tensor.Cat([M(2), M(2)], 1), ["Cat", "dim 1"]),
        ["Cat dtypes"] = (() => Tensor.Cat([M(2), L(1, 2)]), ["Cat", "float32", "int64"]),
        ["Cat null element"] = (() => Tensor.Cat([M(2), null!]), ["Cat", "tensors"]),
        ["Cat null first"] = (() => Tensor.Cat([null!, M(2)]), ["Cat", "tensors"]),
        ["Stack shapes"] = (() => Tensor.Stack([M(2, 3), M(3, 2)]), ["Stack", "[3, 2]", "[2, 3]"]),
        ["Stack dim"] = (() => Tensor.Stack([M(2), M(2)], 2), ["Stack", "dim 2"]),
        ["Stack null"] = (() => Tensor.Stack([null!, M(2)]), ["Stack", "tensors"]),
        ["Split sizes"] = (() => M(5, 2).Split([2, 2]), ["Split", "[2, 2]", "[5, 2]"]),
        ["Split size"] = (() => M(5, 2).Split(0), ["Split", "0"]),
        ["Split scalar"] = (() => Tensor.Scalar(1).Split(1), ["Split", "[]"]),
        ["Chunk count"] = (() => M(5, 2).Chunk(0), ["Chunk", "0"]),
        ["Gather index range"] = (() => M(2, 3).Gather(1, Idx([0, 3], 2, 1)), ["Gather", "index 3", "size 3"]),
        ["Gather index dtype"] = (() => M(2, 3).Gather(1, M(2, 1)), ["Gather", "int64", "float32"]),
        ["Gather index rank"] = (() => M(2, 3).Gather(1, L(0, 1)), ["Gather", "[2]", "[2, 3]"]),
        ["Gather index larger"] = (() => M(2, 3).Gather(1, Idx([0, 0, 0], 3, 1)), ["Gather", "[3, 1]", "[2, 3]"]),
        ["Gather null"] = (() => M(2, 3).Gather(1, null!), ["Gather", "index"]),
        ["Gather scalar"] = (() => Tensor.Scalar(1).Gather(0, Tensor.Zeros([], DType.Int64)), ["Gather", "[]"]),
        ["Scatter src shape"] = (() => M(2, 3).Scatter(1, Idx([0, 1], 2, 1), M(2, 2)), ["Scatter", "[2, 2]", "[2, 1]"]),
        ["Scatter index range"] = (() => M(2, 3).Scatter(1, Idx([0, -4], 2, 1), M(2, 1)), ["Scatter", "index -4", "size 3"]),
        ["Scatter null src"] = (() => M(2, 3).Scatter(1, Idx([0, 1], 2, 1), null!), ["Scatter", "src"]),
        ["ScatterAdd dtype"] = (() => M(2, 3).ScatterAdd(1, Idx([0, 1], 2, 1), Tensor.Zeros([2, 1], DType.Float64)), ["ScatterAdd", "float64"]),
        ["IndexSelect range"] = (() => M(2, 3).IndexSelect(0, L(0, 2)), ["IndexSelect", "index 2", "size 2"]),
        ["IndexSelect 2-d index"] = (() => M(2, 3).IndexSelect(0, Idx([0, 1], 1, 2)), ["IndexSelect", "[1, 2]"]),
        ["IndexSelect dim"] = (() => M(2, 3).IndexSelect(2, L(0)), ["IndexSelect", "dim 2"]),
        ["IndexSelect scalar"] = (() => Tensor.Scalar(1).IndexSelect(0, L(0)), ["IndexSelect", "[]"]),
        ["IndexAdd source"] = (() => M(2, 3).IndexAdd(1, L(0, 1), M(2, 3)), ["IndexAdd", "[2, 3]"]),
        ["IndexAdd range"] = (() => M(2, 3).IndexAdd(1, L(0, 3), M(2, 2)), ["IndexAdd", "index 3", "size 3"]),
        ["IndexAdd null source"] = (() => M(2, 3).IndexAdd(1, L(0), null!), ["IndexAdd", "source"]),
        ["FromArray shape"] = (() => Tensor.FromArray(new float[5], 2, 3), ["FromArray", "[2, 3]"]),
        ["FromArray negative"] = (() => Tensor.FromArray(new float[0], -1, 0), ["FromArray", "[-1, 0]"]),
        ["Zeros negative"] = (() => Tensor.Zeros(2, -3), ["Zeros", "[2, -3]"]),
        ["Arange step"] = (() => Tensor.Arange(0, 1, 0), ["Arange", "step=0"]),
        ["Linspace steps"] = (() => Tensor.Linspace(0, 1, -1), ["Linspace", "-1"]),
        ["Eye size"] = (() => Tensor.Eye(-1), ["Eye", "-1"]),
        ["RandInt range"] = (() => Tensor.RandInt(3, 3, [2]), ["RandInt", "[3, 3)"]),
        ["Rand int64"] = (() => Tensor.Rand([2], DType.Int64), ["Rand", "int64"]),
        ["Item many"] = (() => M(2, 3).Item(), ["Item", "[2, 3]"]),
        ["ToArray type"] = (() => M(2).ToArray<long>(), ["ToArray", "float32", "[2]"]),
        ["GetFlat range"] = (() => M(2).GetFlat(2), ["GetFlat", "[2]"]),
        ["AddInPlace shape"] = (() => M(3).AddInPlace(M(2, 3)), ["AddInPlace", "[2, 3]", "[3]"]),
        ["CopyFrom dtype"] = (() => M(3).CopyFrom(L(1, 2, 3)), ["CopyFrom", "float32", "int64"]),
        ["MulInPlace on expanded view"] = (() => M(1, 3).Expand(2, 3).MulInPlace(M(2, 3)), ["MulInPlace", "[2, 3]"]),
        ["Fill on expanded view"] = (() => M(3, 1).Expand(3, 4).Fill(1), ["Fill", "[3, 4]"]),
        ["Backward no grad"] = (() => { M(2).Sum().Backward(); return null; }, ["Backward", "[]"]),
        ["Grad input"] = (() => GradFlow.Autograd.Grad([M(2).RequireGrad().Sum()], [M(2)]), ["Grad", "[2]"]),
        ["Grad setter shape"] = (() => M(2).Grad = M(3), ["Grad", "[3]", "[2]"]),
        ["MaxPool2d kernel larger than input"] = (() => new GradFlow.NN.MaxPool2d(5).Call(M(1, 1, 4, 4)), ["MaxPool2d", "5x5", "4x4"]),
        ["MaxPool2d kernel 0"] = (() => new GradFlow.NN.MaxPool2d(0).Call(M(1, 1, 4, 4)), ["MaxPool2d", "kernel 0x0"]),
        ["MaxPool2d stride 0"] = (() => new GradFlow.NN.MaxPool2d(2, stride: 0).Call(M(1, 1, 4, 4)), ["MaxPool2d", "stride 0x0"]),
        ["MaxPool2d double stride 0"] = (() => new GradFlow.NN.MaxPool2d(2, stride: 0).Call(Tensor.Zeros([1, 1, 4, 4], DType.Float64)), ["MaxPool2d", "stride 0x0"]),
        ["MaxPool2d dilated stride 0"] = (() => GradFlow.NN.Functional.MaxPool2d(M(1, 1, 4, 4), (2, 2), (0, 1), dilation: (2, 2)), ["MaxPool2d", "stride 0x1"]),
        ["AvgPool2d kernel 0"] = (() => new GradFlow.NN.AvgPool2d(0).Call(M(1, 1, 4, 4)), ["AvgPool2d", "kernel 0x0"]),
        ["AvgPool2d kernel larger than input"] = (() => GradFlow.NN.Functional.AvgPool2d(M(2, 3, 3), (4, 4)), ["AvgPool2d", "4x4", "3x3"]),
        ["Linear bias shape"] = (() => GradFlow.NN.Functional.Linear(M(2, 3), M(4, 3), M(5)), ["Linear", "bias", "[5]", "[4, 3]"]),
        ["Linear bias rank"] = (() => GradFlow.NN.Functional.Linear(M(2, 3), M(4, 3), M(2, 4)), ["Linear", "bias", "[2, 4]"]),
    };

    public static IEnumerable<object[]> Cases => s_cases.Keys.Select(k => new object[] { k });

    [Theory]
    [MemberData(nameof(Cases))]
    public void ThrowsANamedError(string name)
    {
        var (call, mentions) = s_cases[name];
        Exception? e = null;
        object? result = null;
        try { result = call(); }
        catch (Exception ex) { e = ex; }
        Assert.True(e is not null, $"{name}: no exception; returned {result}.");
        Assert.True(e is ArgumentException or InvalidOperationException,
            $"{name}: threw {e.GetType().Name} from inside: {e.Message}\n{e.StackTrace}");
        foreach (var m in mentions)
            Assert.True(e.Message.Contains(m, StringComparison.OrdinalIgnoreCase), $"{name}: message \"{e.Message}\" does not mention \"{m}\".");
    }

    [Fact]
    public void FailedInPlaceLeavesTheTensorUnchanged()
    {
        var t = Tensor.FromArray(new float[] { 1, 2, 3 });
        int version = t.Version;
        Assert.Throws<ArgumentException>(() => t.AddInPlace(Tensor.Ones(2)));
        Assert.Equal(new float[] { 1, 2, 3 }, t.ToArray<float>());
        Assert.Equal(version, t.Version);
    }

    [Fact]
    public void ScalarsStillReduceOverDimZero()
    {
        // Rank-0 tensors have no dim to index, but reductions accept dim 0 / -1 as PyTorch does.
        var s = Tensor.Scalar(3);
        Assert.Equal(3.0, s.Sum(0).Item());
        Assert.Equal(3.0, s.Max(-1).Values.Item());
        Assert.Equal(1.0, s.Softmax(0).Item());
    }
}
