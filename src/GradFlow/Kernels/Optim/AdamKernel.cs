using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace GradFlow.Kernels.Optim;

/// <summary>
/// Adam and AdamW (Kingma and Ba 2015; Loshchilov and Hutter 2019), as torch.optim.Adam/AdamW 1.13
/// (_single_tensor_adam/_adamw, non-capturable branch):
///   AdamW: p = p·(1 − lr·wd);  Adam: g = g + wd·p
///   m = β1·m + (1 − β1)·g;  v = β2·v + (1 − β2)·g²;  v̂ = max(v̂, v) with AMSGrad
///   p = p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
/// </summary>
internal static class AdamKernel
{
    /// <summary>One step; <paramref name="maxExpAvgSq"/> is used only with AMSGrad. <paramref name="decoupled"/> selects AdamW.</summary>
    public static UpdateSums Step<T>(Span<T> param, ReadOnlySpan<T> grad, Span<T> expAvg, Span<T> expAvgSq, Span<T> maxExpAvgSq,
        double lr, double beta1, double beta2, double eps, double weightDecay, bool decoupled, bool amsgrad, bool maximize,
        long step, bool measure)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        UpdateLoop.CheckLength(nameof(AdamKernel), param.Length, grad.Length, nameof(grad));
        UpdateLoop.CheckLength(nameof(AdamKernel), param.Length, expAvg.Length, nameof(expAvg));
        UpdateLoop.CheckLength(nameof(AdamKernel), param.Length, expAvgSq.Length, nameof(expAvgSq));
        if (amsgrad) UpdateLoop.CheckLength(nameof(AdamKernel), param.Length, maxExpAvgSq.Length, nameof(maxExpAvgSq));
        double bc1 = 1 - Math.Pow(beta1, step), bc2 = 1 - Math.Pow(beta2, step);
        var rule = new Rule<T>
        {
            Param = param, Grad = grad, M = expAvg, V = expAvgSq, VMax = maxExpAvgSq,
            Beta1 = T.CreateTruncating(beta1), OneMinusBeta1 = T.CreateTruncating(1 - beta1),
            Beta2 = T.CreateTruncating(beta2), OneMinusBeta2 = T.CreateTruncating(1 - beta2),
            Eps = T.CreateTruncating(eps), NegStepSize = T.CreateTruncating(-(lr / bc1)), Bc2Sqrt = T.CreateTruncating(Math.Sqrt(bc2)),
            WeightDecay = T.CreateTruncating(weightDecay), DecayFactor = T.CreateTruncating(1 - lr * weightDecay),
            L2 = !decoupled && weightDecay != 0, Decoupled = decoupled, Amsgrad = amsgrad, Maximize = maximize,
        };
        return UpdateLoop.Run<Rule<T>, T>(ref rule, param, measure, grad);
    }

    private ref struct Rule<T> : IUpdateRule<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public Span<T> Param, M, V, VMax;
        public ReadOnlySpan<T> Grad;
        public T Beta1, OneMinusBeta1, Beta2, OneMinusBeta2, Eps, NegStepSize, Bc2Sqrt, WeightDecay, DecayFactor;
        public bool L2, Decoupled, Amsgrad, Maximize;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly void Apply<TV>(nuint i, out TV before, out TV after) where TV : struct, IVec<TV, T>
        {
            ref T pr = ref MemoryMarshal.GetReference(Param);
            ref T mr = ref MemoryMarshal.GetReference(M);
            ref T vr = ref MemoryMarshal.GetReference(V);
            var p = TV.Load(ref pr, i);
            before = p;
            var g = TV.Load(ref MemoryMarshal.GetReference(Grad), i);
            if (Maximize) g = -g;
            if (L2) g += TV.Create(WeightDecay) * p;
            if (Decoupled) p *= TV.Create(DecayFactor);
            var m = TV.Load(ref mr, i) * TV.Create(Beta1) + TV.Create(OneMinusBeta1) * g;
            var v = TV.Load(ref vr, i) * TV.Create(Beta2) + TV.Create(OneMinusBeta2) * g * g;
            TV.Store(m, ref mr, i);
            TV.Store(v, ref vr, i);
            if (Amsgrad)
            {
                ref T xr = ref MemoryMarshal.GetReference(VMax);
                v = TV.Max(TV.Load(ref xr, i), v);
                TV.Store(v, ref xr, i);
            }
            var denom = TV.Sqrt(v) / TV.Create(Bc2Sqrt) + TV.Create(Eps);
            p += TV.Create(NegStepSize) * m / denom;
            TV.Store(p, ref pr, i);
            after = p;
        }
    }
}
