namespace GradFlow;

// Cross entropy between logits and a target distribution along dim 1, fused: the log-softmax is
// computed once with the max shift (so no exp overflows and no log of an underflowed probability),
// and the backward is the closed form softmax(x) * sum(q) - q, never the product of two Jacobians.
public sealed partial class Tensor
{
    /// <summary>
    /// loss[n, ...] = -sum_c q[n, c, ...] log_softmax(x)[n, c, ...] for logits x of shape (N, C, ...) and an
    /// unnormalised target distribution q of the same shape (class weights, label smoothing and ignored
    /// positions already folded into q). The result has shape (N, ...).
    /// </summary>
    internal static Tensor SoftmaxCrossEntropy(Tensor logits, Tensor q)
    {
        Guard.SameDType(logits, q, "CrossEntropy");
        if (logits.Rank < 2 || !Shapes.Equal(logits.ShapeArray, q.ShapeArray))
            Guard.Throw("CrossEntropy", $"logits {Guard.Shape(logits)} and target distribution {Guard.Shape(q)} must share a shape (N, C, ...).");
        Tensor y;
        using (Autograd.NoGrad())
        using (Instrumentation.Quiet())
        {
            var logp = logits.SoftmaxRaw(1, log: true);
            y = (q * logp).Sum(1).Neg();
        }
        var node = Autograd.NeedsGrad(logits, q) ? new SoftmaxCrossEntropyBackward(logits, q) : null;
        return Autograd.Record(OpNames.CrossEntropy, y, node, logits, q);
    }
}

internal sealed class SoftmaxCrossEntropyBackward : Node
{
    private readonly bool _needLogits, _needTarget;

    public SoftmaxCrossEntropyBackward(Tensor logits, Tensor q)
    {
        (_needLogits, _needTarget) = (logits.RequiresGrad, q.RequiresGrad);
        Save(logits, q);
    }

    // d/dx = g (softmax(x) sum_c q - q);  d/dq = -g log_softmax(x)
    protected internal override Tensor?[] Backward(Tensor?[] g)
    {
        Tensor x = Saved(0), q = Saved(1), gy = g[0]!.Unsqueeze(1);
        Tensor? gx = _needLogits ? gy * (x.Softmax(1) * q.Sum(1, keepDim: true) - q) : null;
        Tensor? gq = _needTarget ? -gy * x.LogSoftmax(1) : null;
        return [gx, gq];
    }
}
