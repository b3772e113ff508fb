using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace GradFlow.Kernels.Optim;

/// <summary>
/// Adagrad (Duchi, Hazan and Singer 2011), as torch.optim.Adagrad 1.13 (dense gradients):
///   g = ±g + wd·p;  clr = lr / (1 + (t − 1)·lr_decay);  s = s + g²;  p = p − clr·g / (√s + ε)
/// </summary>
internal static class AdagradKernel
{
    /// <summary>One step at step number <paramref name="step"/> (1-based).</summary>
    public static UpdateSums Step<T>(Span<T> param, ReadOnlySpan<T> grad, Span<T> stateSum,
        double lr, double lrDecay, double eps, double weightDecay, bool maximize, long step, bool measure)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        UpdateLoop.CheckLength(nameof(AdagradKernel), param.Length, grad.Length, nameof(grad));
        UpdateLoop.CheckLength(nameof(AdagradKernel), param.Length, stateSum.Length, nameof(stateSum));
        double clr = lr / (1 + (step - 1) * lrDecay);
        var rule = new Rule<T>
        {
            Param = param, Grad = grad, S = stateSum,
            NegClr = T.CreateTruncating(-clr), Eps = T.CreateTruncating(eps), WeightDecay = T.CreateTruncating(weightDecay),
            HasWeightDecay = weightDecay != 0, Maximize = maximize,
        };
        return UpdateLoop.Run<Rule<T>, T>(ref rule, param, measure, grad);
    }

    private ref struct Rule<T> : IUpdateRule<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public Span<T> Param, S;
        public ReadOnlySpan<T> Grad;
        public T NegClr, Eps, WeightDecay;
        public bool HasWeightDecay, Maximize;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly void Apply<TV>(nuint i, out TV before, out TV after) where TV : struct, IVec<TV, T>
        {
            ref T pr = ref MemoryMarshal.GetReference(Param);
            ref T sr = ref MemoryMarshal.GetReference(S);
            var p = TV.Load(ref pr, i);
            var g = TV.Load(ref MemoryMarshal.GetReference(Grad), i);
            if (Maximize) g = -g;
            if (HasWeightDecay) g += TV.Create(WeightDecay) * p;
            var s = TV.Load(ref sr, i) + g * g;
            TV.Store(s, ref sr, i);
            var np = p + TV.Create(NegClr) * g / (TV.Sqrt(s) + TV.Create(Eps));
            TV.Store(np, ref pr, i);
            before = p;
            after = np;
        }
    }
}
