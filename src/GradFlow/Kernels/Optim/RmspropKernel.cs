using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace GradFlow.Kernels.Optim;

/// <summary>
/// RMSprop (Hinton's lecture 6e; centered variant of Graves 2013), as torch.optim.RMSprop 1.13:
///   g = ±g + wd·p;  s = α·s + (1 − α)·g²;  centered: a = α·a + (1 − α)·g, d = √(s − a²) + ε, else d = √s + ε
///   momentum: b = μ·b + g/d, p = p − lr·b;  otherwise p = p − lr·g/d
/// </summary>
internal static class RmspropKernel
{
    /// <summary>One step; <paramref name="gradAvg"/> is used only when centered, <paramref name="momentumBuffer"/> only with momentum.</summary>
    public static UpdateSums Step<T>(Span<T> param, ReadOnlySpan<T> grad, Span<T> squareAvg, Span<T> gradAvg, Span<T> momentumBuffer,
        double lr, double alpha, double eps, double weightDecay, double momentum, bool centered, bool maximize, bool measure)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        UpdateLoop.CheckLength(nameof(RmspropKernel), param.Length, grad.Length, nameof(grad));
        UpdateLoop.CheckLength(nameof(RmspropKernel), param.Length, squareAvg.Length, nameof(squareAvg));
        if (centered) UpdateLoop.CheckLength(nameof(RmspropKernel), param.Length, gradAvg.Length, nameof(gradAvg));
        if (momentum > 0) UpdateLoop.CheckLength(nameof(RmspropKernel), param.Length, momentumBuffer.Length, nameof(momentumBuffer));
        var rule = new Rule<T>
        {
            Param = param, Grad = grad, S = squareAvg, A = gradAvg, B = momentumBuffer,
            NegLr = T.CreateTruncating(-lr), Alpha = T.CreateTruncating(alpha), OneMinusAlpha = T.CreateTruncating(1 - alpha),
            Eps = T.CreateTruncating(eps), WeightDecay = T.CreateTruncating(weightDecay), Momentum = T.CreateTruncating(momentum),
            HasWeightDecay = weightDecay != 0, HasMomentum = momentum > 0, Centered = centered, Maximize = maximize,
        };
        return UpdateLoop.Run<Rule<T>, T>(ref rule, param, measure, grad);
    }

    private ref struct Rule<T> : IUpdateRule<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public Span<T> Param, S, A, B;
        public ReadOnlySpan<T> Grad;
        public T NegLr, Alpha, OneMinusAlpha, Eps, WeightDecay, Momentum;
        public bool HasWeightDecay, HasMomentum, Centered, Maximize;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly void Apply<TV>(nuint i, out TV before, out TV after) where TV : struct, IVec<TV, T>
        {
            ref T pr = ref MemoryMarshal.GetReference(Param);
            ref T sr = ref MemoryMarshal.GetReference(S);
            var p = TV.Load(ref pr, i);
            var g = TV.Load(ref MemoryMarshal.GetReference(Grad), i);
            if (Maximize) g = -g;
            if (HasWeightDecay) g += TV.Create(WeightDecay) * p;
            var s = TV.Load(ref sr, i) * TV.Create(Alpha) + TV.Create(OneMinusAlpha) * g * g;
            TV.Store(s, ref sr, i);
            TV avg;
            if (Centered)
            {
                ref T ar = ref MemoryMarshal.GetReference(A);
                var a = TV.Load(ref ar, i) * TV.Create(Alpha) + TV.Create(OneMinusAlpha) * g;
                TV.Store(a, ref ar, i);
                avg = TV.Sqrt(s - a * a);
            }
            else
            {
                avg = TV.Sqrt(s);
            }
            avg += TV.Create(Eps);
            TV np;
            if (HasMomentum)
            {
                ref T br = ref MemoryMarshal.GetReference(B);
                var b = TV.Load(ref br, i) * TV.Create(Momentum) + g / avg;
                TV.Store(b, ref br, i);
                np = p + TV.Create(NegLr) * b;
            }
            else
            {
                np = p + TV.Create(NegLr) * g / avg;
            }
            TV.Store(np, ref pr, i);
            before = p;
            after = np;
        }
    }
}
