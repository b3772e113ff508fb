using GradFlow.Kernels.Optim;

namespace GradFlow.Optim;

/// <summary>
/// Gradient clipping over parameters' <see cref="Tensor.Grad"/>, in place: by global norm and by value
/// (torch.nn.utils.clip_grad_norm_ / clip_grad_value_), and adaptive gradient clipping (AGC, Brock et al.
/// 2021, "High-performance large-scale image recognition without normalization", §4.1). Parameters
/// without a gradient are skipped.
/// </summary>
public static class GradientClipping
{
    /// <summary>
    /// Scales all gradients together so their joint <paramref name="normType"/>-norm is at most
    /// <paramref name="maxNorm"/>, and returns the norm before clipping (as clip_grad_norm_). The scale is
    /// maxNorm / (norm + 1e-6), capped at 1. A non-finite norm throws when <paramref name="errorIfNonfinite"/>;
    /// otherwise it scales the gradients by NaN or zero, as PyTorch does.
    /// </summary>
    public static double ClipGradNorm(IEnumerable<Tensor> parameters, double maxNorm, double normType = 2, bool errorIfNonfinite = false)
    {
        Guard.NotNull(parameters, "GradientClipping.ClipGradNorm", nameof(parameters));
        if (double.IsNaN(maxNorm)) Guard.ThrowArg(nameof(ClipGradNorm), nameof(maxNorm), "max norm is NaN.");
        if (!(normType > 0)) Guard.ThrowArg(nameof(ClipGradNorm), nameof(normType), $"norm type must be positive or infinity, got {normType}.");
        var grads = Grads(parameters, nameof(ClipGradNorm));
        if (grads.Count == 0) return 0;
        double total = TotalNorm(grads, normType);
        if (errorIfNonfinite && !double.IsFinite(total))
            throw new InvalidOperationException($"{nameof(ClipGradNorm)}: the total {normType}-norm of the gradients of {grads.Count} parameters is {total}; "
                + "set errorIfNonfinite to false to clip anyway.");
        double coef = Math.Min(maxNorm / (total + 1e-6), 1.0);
        if (double.IsNaN(total)) coef = double.NaN; // torch.clamp keeps NaN: every gradient becomes NaN
        if (coef != 1.0) foreach (var g in grads) Scale(g, coef);
        return total;
    }

    /// <summary>The joint norm of several tensors: the norm of their norms (∞: the largest |element|).</summary>
    public static double TotalNorm(IReadOnlyList<Tensor> tensors, double normType = 2)
    {
        Guard.NotNull(tensors, "GradientClipping.TotalNorm", nameof(tensors));
        double acc = 0;
        foreach (var t in tensors)
        {
            Guard.Floating(t, nameof(TotalNorm), nameof(tensors));
            var c = t.Contiguous();
            if (double.IsPositiveInfinity(normType))
            {
                double m = c.DType == DType.Float32 ? ClipKernel.MaxAbs<float>(c.Span<float>()) : ClipKernel.MaxAbs<double>(c.Span<double>());
                if (m > acc || double.IsNaN(m)) acc = m;
            }
            else if (normType == 2)
                acc += c.DType == DType.Float32 ? ClipKernel.SumOfSquares<float>(c.Span<float>()) : ClipKernel.SumOfSquares<double>(c.Span<double>());
            else
                acc += c.DType == DType.Float32 ? ClipKernel.SumAbsPow<float>(c.Span<float>(), normType) : ClipKernel.SumAbsPow<double>(c.Span<double>(), normType);
        }
        if (double.IsPositiveInfinity(normType)) return acc;
        return normType == 2 ? Math.Sqrt(acc) : normType == 1 ? acc : Math.Pow(acc, 1.0 / normType);
    }

    /// <summary>Clamps every gradient element to [−clipValue, clipValue] (as clip_grad_value_).</summary>
    public static void ClipGradValue(IEnumerable<Tensor> parameters, double clipValue)
    {
        Guard.NotNull(parameters, "GradientClipping.ClipGradValue", nameof(parameters));
        if (!(clipValue >= 0)) Guard.ThrowArg(nameof(ClipGradValue), nameof(clipValue), $"clip value must be non-negative, got {clipValue}.");
        foreach (var g in Grads(parameters, nameof(ClipGradValue)))
        {
            if (!g.IsContiguous)
            {
                using (Autograd.NoGrad()) g.CopyFrom(g.Clamp(-clipValue, clipValue));
                continue;
            }
            if (g.DType == DType.Float32) ClipKernel.Clamp(g.Span<float>(), (float)-clipValue, (float)clipValue);
            else ClipKernel.Clamp(g.Span<double>(), -clipValue, clipValue);
            g.BumpVersion();
        }
    }

    /// <summary>
    /// Adaptive gradient clipping: for each unit (a row along dim 0 of a matrix or conv weight, or the whole
    /// of a vector or scalar), when ‖g‖ / max(‖w‖, eps) exceeds <paramref name="clipFactor"/>, g is rescaled to
    /// clipFactor·max(‖w‖, eps)/max(‖g‖, 1e-6)·g. Returns how many units were clipped. Defaults follow the
    /// paper (λ = 0.01, eps = 1e-3); the paper leaves the final classifier layer unclipped, so pass only the others.
    /// </summary>
    public static int AdaptiveClipGrad(IEnumerable<Tensor> parameters, double clipFactor = 0.01, double eps = 1e-3)
    {
        Guard.NotNull(parameters, "GradientClipping.AdaptiveClipGrad", nameof(parameters));
        if (!(clipFactor > 0)) Guard.ThrowArg(nameof(AdaptiveClipGrad), nameof(clipFactor), $"clip factor must be positive, got {clipFactor}.");
        if (!(eps >= 0)) Guard.ThrowArg(nameof(AdaptiveClipGrad), nameof(eps), $"eps must be non-negative, got {eps}.");
        int clipped = 0;
        foreach (var p in parameters)
        {
            var g = p?.Grad;
            if (g is null) continue;
            var w = p!.Contiguous();
            if (!g.IsContiguous) p.Grad = g = g.Contiguous();
            int units = p.Rank <= 1 ? 1 : p.Size(0);
            int len = units == 0 ? 0 : p.NumEl / units;
            for (int u = 0; u < units; u++)
            {
                double wNorm = Math.Max(Math.Sqrt(RowSumSq(w, u * len, len)), eps);
                double gNorm = Math.Sqrt(RowSumSq(g, u * len, len));
                double maxNorm = wNorm * clipFactor;
                if (!(gNorm > maxNorm)) continue; // also leaves NaN gradients for the anomaly detector to see
                double coef = maxNorm / Math.Max(gNorm, 1e-6);
                if (g.DType == DType.Float32) ClipKernel.Scale(g.Span<float>().Slice(u * len, len), (float)coef);
                else ClipKernel.Scale(g.Span<double>().Slice(u * len, len), coef);
                clipped++;
            }
            g.BumpVersion();
        }
        return clipped;
    }

    private static double RowSumSq(Tensor t, int start, int length) => t.DType == DType.Float32
        ? ClipKernel.SumOfSquares<float>(t.Span<float>().Slice(start, length))
        : ClipKernel.SumOfSquares<double>(t.Span<double>().Slice(start, length));

    private static List<Tensor> Grads(IEnumerable<Tensor> parameters, string op)
    {
        var list = new List<Tensor>();
        foreach (var p in parameters)
        {
            if (p is null) Guard.ThrowArg(op, nameof(parameters), "a parameter is null.");
            if (p.Grad is not null) list.Add(p.Grad);
        }
        return list;
    }

    private static void Scale(Tensor g, double coef)
    {
        if (!g.IsContiguous)
        {
            using (Autograd.NoGrad()) g.MulInPlace(coef);
            return;
        }
        if (g.DType == DType.Float32) ClipKernel.Scale(g.Span<float>(), (float)coef);
        else ClipKernel.Scale(g.Span<double>(), coef);
        g.BumpVersion();
    }
}
