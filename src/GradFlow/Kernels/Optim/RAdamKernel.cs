using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace GradFlow.Kernels.Optim;

/// <summary>
/// RAdam (Liu et al. 2020), as torch.optim.RAdam 1.13. With ρ∞ = 2/(1 − β2) − 1 and ρₜ = ρ∞ − 2t·β2ᵗ/(1 − β2ᵗ):
///   g = g + wd·p;  m = β1·m + (1 − β1)·g;  v = β2·v + (1 − β2)·g²;  m̂ = m / (1 − β1ᵗ)
///   ρₜ > 5: r = √((ρₜ−4)(ρₜ−2)ρ∞ / ((ρ∞−4)(ρ∞−2)ρₜ)), p = p − m̂·lr·(√(1 − β2ᵗ)/(√v + ε))·r;  else p = p − m̂·lr
/// </summary>
internal static class RAdamKernel
{
    /// <summary>One step at step number <paramref name="step"/> (1-based).</summary>
    public static UpdateSums Step<T>(Span<T> param, ReadOnlySpan<T> grad, Span<T> expAvg, Span<T> expAvgSq,
        double lr, double beta1, double beta2, double eps, double weightDecay, long step, bool measure)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        UpdateLoop.CheckLength(nameof(RAdamKernel), param.Length, grad.Length, nameof(grad));
        UpdateLoop.CheckLength(nameof(RAdamKernel), param.Length, expAvg.Length, nameof(expAvg));
        UpdateLoop.CheckLength(nameof(RAdamKernel), param.Length, expAvgSq.Length, nameof(expAvgSq));
        double bc1 = 1 - Math.Pow(beta1, step), bc2 = 1 - Math.Pow(beta2, step);
        double rhoInf = 2 / (1 - beta2) - 1;
        double rhoT = rhoInf - 2 * step * Math.Pow(beta2, step) / bc2;
        bool rectify = rhoT > 5;
        double rect = rectify ? Math.Sqrt((rhoT - 4) * (rhoT - 2) * rhoInf / ((rhoInf - 4) * (rhoInf - 2) * rhoT)) : 0;
        var rule = new Rule<T>
        {
            Param = param, Grad = grad, M = expAvg, V = expAvgSq,
            Beta1 = T.CreateTruncating(beta1), OneMinusBeta1 = T.CreateTruncating(1 - beta1),
            Beta2 = T.CreateTruncating(beta2), OneMinusBeta2 = T.CreateTruncating(1 - beta2),
            Bc1 = T.CreateTruncating(bc1), Bc2Sqrt = T.CreateTruncating(Math.Sqrt(bc2)), Lr = T.CreateTruncating(lr),
            Rect = T.CreateTruncating(rect), Eps = T.CreateTruncating(eps), WeightDecay = T.CreateTruncating(weightDecay),
            HasWeightDecay = weightDecay != 0, Rectify = rectify,
        };
        return UpdateLoop.Run<Rule<T>, T>(ref rule, param, measure, grad);
    }

    private ref struct Rule<T> : IUpdateRule<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public Span<T> Param, M, V;
        public ReadOnlySpan<T> Grad;
        public T Beta1, OneMinusBeta1, Beta2, OneMinusBeta2, Bc1, Bc2Sqrt, Lr, Rect, Eps, WeightDecay;
        public bool HasWeightDecay, Rectify;

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
            var step = m / TV.Create(Bc1) * TV.Create(Lr);
            if (Rectify)
            {
                // PyTorch evaluates scalar / tensor as reciprocal(tensor) * scalar.
                var adaptive = TV.Create(T.One) / (TV.Sqrt(v) + TV.Create(Eps)) * TV.Create(Bc2Sqrt);
                step = step * adaptive * TV.Create(Rect);
            }
            var np = p - step;
            TV.Store(np, ref pr, i);
            before = p;
            after = np;
        }
    }
}
