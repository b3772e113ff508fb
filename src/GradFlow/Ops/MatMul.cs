using GradFlow.Kernels;

namespace GradFlow;

// Matrix products with torch.matmul's rules: 1-d operands gain a dim that is removed afterwards,
// batch dims broadcast. A transposed 2-d view is passed to GEMM as a transpose flag, not copied.
public sealed partial class Tensor
{
    /// <summary>The matrix product (torch.matmul): dot, matrix-vector, matrix-matrix or batched with broadcasting.</summary>
    public Tensor MatMul(Tensor other)
    {
        Guard.NotNull(other, nameof(MatMul), nameof(other));
        Guard.SameDType(this, other, nameof(MatMul));
        Guard.Floating(this, nameof(MatMul));
        if (Rank == 0 || other.Rank == 0)
            Guard.Throw(nameof(MatMul), $"both operands need at least one dim, got {Guard.Shape(this)} and {Guard.Shape(other)}.");
        var a = Rank == 1 ? Unsqueeze(0) : this;
        var b = other.Rank == 1 ? other.Unsqueeze(1) : other;
        var y = MatMulCore(a, b);
        if (other.Rank == 1) y = y.Squeeze(-1);
        if (Rank == 1) y = y.Squeeze(other.Rank == 1 ? -1 : -2);
        return y;
    }

    private static Tensor MatMulCore(Tensor a, Tensor b)
    {
        int m = a.ShapeArray[^2], k = a.ShapeArray[^1], k2 = b.ShapeArray[^2], n = b.ShapeArray[^1];
        if (k != k2) Guard.Throw(nameof(MatMul), $"shapes {Guard.Shape(a)} and {Guard.Shape(b)} cannot be multiplied ({k} != {k2}).");
        Tensor y;
        if (b.Rank == 2 && a.Rank > 2 && a.IsContiguous)
        {
            // Batch folded into the rows: (..., m, k) @ (k, n) is one (batch*m, k) @ (k, n) product.
            var outShape = (int[])a.ShapeArray.Clone();
            outShape[^1] = n;
            y = Empty(outShape, a.DType);
            Mm(a.AsStridedView([a.NumEl / k, k], [k, 1], a.Offset), b, y.AsStridedView([y.NumEl / n, n], [n, 1], 0));
        }
        else if (a.Rank == 2 && b.Rank == 2)
        {
            y = Empty([m, n], a.DType);
            Mm(a, b, y);
        }
        else
        {
            y = BatchedMm(a, b, m, k, n);
        }
        return Autograd.Record(OpNames.MatMul, y, Autograd.NeedsGrad(a, b) ? new MatMulBackward(a, b) : null, a, b);
    }

    // Each batch entry is a strided 2-d view of the operands (stride 0 along broadcast batch dims), so a
    // transposed key (q k^T in attention) or a broadcast weight reaches GEMM as a flag, not as a copy of the
    // whole expanded operand; only a slice no GEMM layout fits is copied (by Mm).
    private static Tensor BatchedMm(Tensor a, Tensor b, int m, int k, int n)
    {
        var batch = Shapes.Broadcast(a.ShapeArray.AsSpan(0, a.Rank - 2), b.ShapeArray.AsSpan(0, b.Rank - 2), nameof(MatMul));
        int count = Shapes.Count(batch);
        var sa = Shapes.BroadcastStrides(a.ShapeArray.AsSpan(0, a.Rank - 2), a.StridesArray.AsSpan(0, a.Rank - 2), batch);
        var sb = Shapes.BroadcastStrides(b.ShapeArray.AsSpan(0, b.Rank - 2), b.StridesArray.AsSpan(0, b.Rank - 2), batch);
        int[] aShape = [m, k], aStrides = [a.StridesArray[^2], a.StridesArray[^1]];
        int[] bShape = [k, n], bStrides = [b.StridesArray[^2], b.StridesArray[^1]];
        int[] yShape = [m, n], yStrides = [n, 1];
        var y = Empty([.. batch, m, n], a.DType);
        for (int i = 0; i < count; i++)
        {
            int offA = a.Offset, offB = b.Offset;
            for (int d = batch.Length - 1, rest = i; d >= 0; d--)
            {
                int index = rest % batch[d];
                rest /= batch[d];
                offA += index * sa[d];
                offB += index * sb[d];
            }
            Mm(a.AsStridedView(aShape, aStrides, offA), b.AsStridedView(bShape, bStrides, offB), y.AsStridedView(yShape, yStrides, i * m * n));
        }
        return y;
    }

    /// <summary>c = a @ b for 2-d operands; c contiguous. Transposed views become GEMM flags.</summary>
    internal static void Mm(Tensor a, Tensor b, Tensor c, bool accumulate = false)
    {
        var (ta, lda, ac) = GemmOperand(a);
        var (tb, ldb, bc) = GemmOperand(b);
        int m = a.ShapeArray[0], k = a.ShapeArray[1], n = b.ShapeArray[1];
        if (m == 0 || n == 0) return;
        if (k == 0) { if (!accumulate) c.FillRaw(0); return; }
        if (a.DType == DType.Float32)
            Gemm.Sgemm(ta, tb, m, n, k, 1f, ac.Data<float>().AsSpan(ac.Offset), lda, bc.Data<float>().AsSpan(bc.Offset), ldb,
                accumulate ? 1f : 0f, c.Data<float>().AsSpan(c.Offset), n);
        else
            Gemm.Dgemm(ta, tb, m, n, k, 1.0, ac.Data<double>().AsSpan(ac.Offset), lda, bc.Data<double>().AsSpan(bc.Offset), ldb,
                accumulate ? 1.0 : 0.0, c.Data<double>().AsSpan(c.Offset), n);
    }

    private static (bool Trans, int Ld, Tensor Source) GemmOperand(Tensor x)
    {
        int rows = x.ShapeArray[0], cols = x.ShapeArray[1];
        int s0 = x.StridesArray[0], s1 = x.StridesArray[1];
        if ((s1 == 1 || cols == 1) && s0 >= Math.Max(cols, 1)) return (false, Math.Max(s0, 1), x);
        if ((s0 == 1 || rows == 1) && s1 >= Math.Max(rows, 1)) return (true, Math.Max(s1, 1), x);
        var c = x.ContiguousRaw();
        return (false, Math.Max(cols, 1), c);
    }
}

internal sealed class MatMulBackward : Node
{
    private readonly bool _needA, _needB;

    public MatMulBackward(Tensor a, Tensor b)
    {
        _needA = a.RequiresGrad;
        _needB = b.RequiresGrad;
        Save(a, b);
    }

    // For C = A B: dA = dC B^T, dB = A^T dC, each summed over broadcast batch dims.
    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        Tensor a = Saved(0), b = Saved(1), gc = g[0]!;
        Tensor? ga = null, gb = null;
        if (_needA) ga = Tensor.SumTo(gc.MatMul(b.Transpose(-1, -2)), a.ShapeArray);
        if (_needB)
        {
            if (b.Rank == 2 && a.Rank > 2)
            {
                int k = a.ShapeArray[^1], n = b.ShapeArray[^1];
                gb = RightGradient(a.Reshape(-1, k), gc.Reshape(-1, n), b);
            }
            else if (b.Rank == 2 && a.Rank == 2) gb = RightGradient(a, gc, b);
            else gb = Tensor.SumTo(a.Transpose(-1, -2).MatMul(gc), b.ShapeArray);
        }
        return [ga, gb];
    }

    // dB = A^T dC laid out as B is: for B a transposed view (x W^T in Linear), dB^T = dC^T A is computed
    // contiguous and returned as its transpose, so W's gradient arrives contiguous (as PyTorch's
    // mm_mat2_backward does) instead of being copied through strides at accumulation.
    private static Tensor RightGradient(Tensor a, Tensor gc, Tensor b) =>
        IsTransposedLayout(b) ? gc.T.MatMul(a).T : a.T.MatMul(gc);

    private static bool IsTransposedLayout(Tensor b) =>
        b.StridesArray[0] == 1 && b.ShapeArray[1] > 1 && b.StridesArray[1] == b.ShapeArray[0];
}
