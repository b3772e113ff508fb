namespace GradFlow.Tests.AutogradTests;

using static TestUtil;

/// <summary>Every differentiable op: first derivatives by finite differences, and second where the backward is differentiable.</summary>
public class OpGradCheckTests
{
    private static void Both(Func<Tensor[], Tensor> f, params Tensor[] inputs)
    {
        Assert.True(GradCheck.Check(f, inputs));
        Assert.True(GradCheck.CheckSecondOrder(f, inputs));
    }

    [Fact] public void Add() => Both(x => x[0] + x[1], R64(1, 3, 4), R64(2, 4));
    [Fact] public void Sub() => Both(x => x[0] - x[1], R64(1, 2, 1, 3), R64(2, 4, 1));
    [Fact] public void Mul() => Both(x => x[0] * x[1], R64(1, 3, 4), R64(2, 3, 1));
    [Fact] public void Div() => Both(x => x[0] / x[1], R64(1, 3, 4), Pos64(2, 4));
    [Fact] public void ScalarOps() => Both(x => (2.0 - x[0] * 3.0 + 1.5) / 2.0, R64(1, 5));
    [Fact] public void ScalarDivide() => Both(x => 2.0 / x[0], Pos64(1, 5));
    [Fact] public void Neg() => Both(x => -x[0], R64(1, 5));
    [Fact] public void Reciprocal() => Both(x => x[0].Reciprocal(), Pos64(1, 5));
    [Fact] public void PowScalar() => Both(x => x[0].Pow(3), R64(1, 5));
    [Fact] public void PowFractional() => Both(x => x[0].Pow(1.7), Pos64(1, 5));
    [Fact] public void PowSquare() => Both(x => x[0].Pow(2), R64(1, 5));
    [Fact] public void PowTensor() => Both(x => x[0].Pow(x[1]), Pos64(1, 2, 3), R64(2, 3));
    [Fact] public void Exp() => Both(x => x[0].Exp(), R64(1, 2, 3));
    [Fact] public void Log() => Both(x => x[0].Log(), Pos64(1, 2, 3));
    [Fact] public void Sqrt() => Both(x => x[0].Sqrt(), Pos64(1, 2, 3));
    [Fact] public void Abs() => Both(x => x[0].Abs(), Pos64(1, 2, 3) - 1.1);
    [Fact] public void Sin() => Both(x => x[0].Sin(), R64(1, 2, 3));
    [Fact] public void Cos() => Both(x => x[0].Cos(), R64(1, 2, 3));
    [Fact] public void Tanh() => Both(x => x[0].Tanh(), R64(1, 2, 3));
    [Fact] public void Sigmoid() => Both(x => x[0].Sigmoid(), R64(1, 2, 3));
    [Fact] public void Relu() => Both(x => x[0].Relu(), R64(1, 2, 5));
    [Fact] public void Clamp() => Both(x => x[0].Clamp(-0.5, 0.7), R64(1, 3, 5));
    [Fact] public void Where() => Both(x => Tensor.Where(x[0].Detach().Gt(0.0), x[0], x[1]), R64(1, 3, 4), R64(2, 4));
    [Fact] public void SumAll() => Both(x => (x[0] * x[0]).Sum(), R64(1, 3, 4));
    [Fact] public void SumDims() => Both(x => (x[0] * x[0]).Sum([0, 2], keepDim: true), R64(1, 2, 3, 4));
    [Fact] public void Mean() => Both(x => (x[0] * x[0]).Mean(1), R64(1, 3, 4));
    [Fact] public void Var() => Both(x => x[0].Var([1]), R64(1, 3, 4));
    [Fact] public void Std() => Both(x => x[0].Std([0, 1], keepDim: true), R64(1, 3, 4));
    [Fact] public void MaxAll() => Both(x => x[0].Max() * x[0].Min(), R64(1, 3, 4));
    [Fact] public void MaxDim() => Both(x => x[0].Max(1).Values, R64(1, 3, 4));
    [Fact] public void MinDimKeep() => Both(x => x[0].Min(0, keepDim: true).Values, R64(1, 3, 4));
    [Fact] public void LogSumExp() => Both(x => x[0].LogSumExp(1), R64(1, 3, 4));
    [Fact] public void Norm2() => Both(x => x[0].Norm(), R64(1, 3, 4));
    [Fact] public void Norm2Dim() => Both(x => x[0].Norm(2, [1]), R64(1, 3, 4));
    [Fact] public void Norm1AndP() => Both(x => x[0].Norm(1) + x[0].Norm(3, [0]).Sum(), R64(1, 3, 4));
    [Fact] public void NormInf() => Both(x => x[0].Norm(double.PositiveInfinity, [1]), R64(1, 3, 4));
    [Fact] public void Reshape() => Both(x => x[0].Reshape(4, -1) * 2.0, R64(1, 2, 6));
    [Fact] public void ReshapeNonContiguous() => Both(x => x[0].T.Reshape(-1), R64(1, 3, 4));
    [Fact] public void Transpose() => Both(x => x[0].Transpose(0, 2).Exp(), R64(1, 2, 3, 4));
    [Fact] public void Permute() => Both(x => x[0].Permute(2, 0, 1) * x[0].Permute(2, 0, 1), R64(1, 2, 3, 4));
    [Fact] public void SqueezeUnsqueeze() => Both(x => x[0].Unsqueeze(1).Squeeze().Sin(), R64(1, 3, 1, 4));
    [Fact] public void Expand() => Both(x => x[0].Expand(3, 4, 2) * 1.5, R64(1, 4, 1));
    [Fact] public void Flatten() => Both(x => x[0].Flatten(1), R64(1, 2, 3, 4));
    [Fact] public void Slice() => Both(x => x[0].Slice(1, 1, 6, 2) * x[0].Slice(1, 0, 3), R64(1, 3, 7));
    [Fact] public void NarrowSelect() => Both(x => x[0].Narrow(0, 1, 2).Select(1, -1).Exp(), R64(1, 4, 3));
    [Fact] public void Indexer() => Both(x => x[0][1] * x[0][2, 0], R64(1, 4, 3));
    [Fact] public void Clone() => Both(x => x[0].T.Contiguous().Clone() * 3.0, R64(1, 3, 2));
    [Fact] public void MatMul2d() => Both(x => x[0].MatMul(x[1]), R64(1, 3, 4), R64(2, 4, 5));
    [Fact] public void MatMulTransposedViews() => Both(x => x[0].T.MatMul(x[1].T), R64(1, 4, 3), R64(2, 5, 4));
    [Fact] public void MatMulBatched() => Both(x => x[0].MatMul(x[1]), R64(1, 2, 1, 3, 4), R64(2, 3, 4, 2));
    [Fact] public void MatMulBatchTimesMatrix() => Both(x => x[0].MatMul(x[1]), R64(1, 2, 3, 4), R64(2, 4, 5));
    [Fact] public void MatMulVectors() => Both(x => x[0].MatMul(x[1]) + x[1].MatMul(x[2]).Sum() + x[2].MatMul(x[0]).Sum(), R64(1, 4), R64(2, 4, 3), R64(3, 3, 4));
    [Fact] public void Cat() => Both(x => Tensor.Cat([x[0], x[1]], 1), R64(1, 2, 3), R64(2, 2, 2));
    [Fact] public void Stack() => Both(x => Tensor.Stack([x[0], x[1].Exp()], 1), R64(1, 2, 3), R64(2, 2, 3));
    [Fact] public void Split() => Both(x => x[0].Split(2, 1)[1] * x[0].Chunk(3, 1)[0], R64(1, 2, 6));
    [Fact]
    public void Gather()
    {
        var idx = Tensor.FromArray(new long[] { 0, 2, 1, 1, 0, 0 }, 2, 3);
        Both(x => x[0].Gather(1, idx) * 2.0, R64(1, 2, 4));
    }
    [Fact]
    public void Scatter()
    {
        var idx = Tensor.FromArray(new long[] { 0, 2, 1, 3 }, 2, 2);
        Both(x => x[0].Scatter(1, idx, x[1]), R64(1, 2, 4), R64(2, 2, 2));
    }
    [Fact]
    public void ScatterAdd()
    {
        var idx = Tensor.FromArray(new long[] { 0, 0, 1, 3 }, 2, 2);
        Both(x => x[0].ScatterAdd(1, idx, x[1]), R64(1, 2, 4), R64(2, 2, 2));
    }
    [Fact]
    public void IndexSelect()
    {
        var idx = Tensor.FromArray(new long[] { 2, 0, 2 });
        Both(x => x[0].IndexSelect(0, idx) * x[0].IndexSelect(0, idx), R64(1, 3, 2));
    }
    [Fact]
    public void IndexAdd()
    {
        var idx = Tensor.FromArray(new long[] { 1, 1, 0 });
        Both(x => x[0].IndexAdd(1, idx, x[1]), R64(1, 2, 3), R64(2, 2, 3));
    }
    [Fact] public void Softmax() => Both(x => x[0].Softmax(1), R64(1, 3, 4));
    [Fact] public void SoftmaxDim0() => Both(x => x[0].Softmax(0), R64(1, 3, 4));
    [Fact] public void LogSoftmax() => Both(x => x[0].LogSoftmax(-1), R64(1, 3, 4));
    // Through float32 the finite differences need a larger step and a looser tolerance (float32 rounding is ~6e-8 relative).
    [Fact] public void ToFloat32AndBack() => Assert.True(GradCheck.Check(x => x[0].To(DType.Float32).To(DType.Float64) * 1.0, [R64(1, 3)], eps: 1e-2, atol: 1e-3));
}
