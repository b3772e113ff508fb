using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace GradFlow.Kernels.Optim;

/// <summary>
/// NAdam (Dozat 2016), as torch.optim.NAdam 1.13. With μₜ = β1·(1 − ½·0.96^(t·ψ)) and Πₜ = μ₁…μₜ:
///   g = g + wd·p;  m = β1·m + (1 − β1)·g;  v = β2·v + (1 − β2)·g²;  d = √(v / (1 − β2ᵗ)) + ε
///   p = p − lr·(1 − μₜ)/(1 − Πₜ) · g/d − lr·μₜ₊₁/(1 − Πₜ·μₜ₊₁) · m/d
/// The caller keeps Πₜ and passes the two step coefficients, computed as PyTorch computes them.
/// </summary>
internal static class NAdamKernel
{
    /// <summary>One step with the gradient and momentum coefficients already folded (both negative).</summary>
    public static UpdateSums Step<T>(Span<T> param, ReadOnlySpan<T> grad, Span<T> expAvg, Span<T> expAvgSq,
        double beta1, double beta2, double eps, double weightDecay, double gradCoeff, double avgCoeff, long step, bool measure)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        UpdateLoop.CheckLength(nameof(NAdamKernel), param.Length, grad.Length, nameof(grad));
        UpdateLoop.CheckLength(nameof(NAdamKernel), param.Length, expAvg.Length, nameof(expAvg));
        UpdateLoop.CheckLength(nameof(NAdamKernel), param.Length, expAvgSq.Length, nameof(expAvgSq));
        var rule = new Rule<T>
        {
            Param = param, Grad = grad, M = expAvg, V = expAvgSq,
            Beta1 = T.CreateTruncating(beta1), OneMinusBeta1 = T.CreateTruncating(1 - beta1),
            Beta2 = T.CreateTruncating(beta2), OneMinusBeta2 = T.CreateTruncating(1 - beta2),
            Bc2 = T.CreateTruncating(1 - Math.Pow(beta2, step)), Eps = T.CreateTruncating(eps),
            WeightDecay = T.CreateTruncating(weightDecay), GradCoeff = T.CreateTruncating(gradCoeff), AvgCoeff = T.CreateTruncating(avgCoeff),
            HasWeightDecay = weightDecay != 0,
        };
        return UpdateLoop.Run<Rule<T>, T>(ref rule, param, measure, grad);
    }

    private ref struct Rule<T> : IUpdateRule<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public Span<T> Param, M, V;
        public ReadOnlySpan<T> Grad;
        public T Beta1, OneMinusBeta1, Beta2, OneMinusBeta2, Bc2, Eps, WeightDecay, GradCoeff, AvgCoeff;
        public bool HasWeightDecay;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly void Apply<TV>(nuint i, out TV before, out TV after) where TV : struct, IVec<TV, T>
        {
            ref T pr = ref MemoryMarshal.GetReference(Param);
            ref T mr = ref MemoryMarshal.GetReference(M);
            ref T vr = ref MemoryMarshal.GetReference(V);
            var p = TV.Load(ref pr, i);
            var g = TV.Load(ref MemoryMarshal.GetReference(Grad), i);
            if (HasWeightDecay) g += TV.Create(WeightDecay) * p;
            var m = TV.Load(ref mr, i) * TV.Create(Beta1) + TV.Create(OneMinusBeta1) * g;
            var v = TV.Load(ref vr, i) * TV.Create(Beta2) + TV.Create(OneMinusBeta2) * g * g;
            TV.Store(m, ref mr, i);
            TV.Store(v, ref vr, i);
            var denom = TV.Sqrt(v / TV.Create(Bc2)) + TV.Create(Eps);
            var np = p + TV.Create(GradCoeff) * g / denom;
            np += TV.Create(AvgCoeff) * m / denom;
            TV.Store(np, ref pr, i);
            before = p;
            after = np;
        }
    }
}
