using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace GradFlow.Kernels.Optim;

/// <summary>
/// SGD with momentum, dampening, Nesterov and L2 weight decay, as torch.optim.SGD (1.13, _single_tensor_sgd):
///   d = ±g + wd·p;  b = d (first step) or μ·b + (1 − τ)·d;  d = d + μ·b (Nesterov) or b;  p = p − lr·d.
/// </summary>
internal static class SgdKernel
{
    /// <summary>One step over a flat parameter. <paramref name="momentumBuffer"/> is ignored when momentum is 0.</summary>
    public static UpdateSums Step<T>(Span<T> param, ReadOnlySpan<T> grad, Span<T> momentumBuffer,
        double lr, double momentum, double dampening, double weightDecay, bool nesterov, bool maximize, bool firstStep, bool measure)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        UpdateLoop.CheckLength(nameof(SgdKernel), param.Length, grad.Length, nameof(grad));
        if (momentum != 0) UpdateLoop.CheckLength(nameof(SgdKernel), param.Length, momentumBuffer.Length, nameof(momentumBuffer));
        var rule = new Rule<T>
        {
            Param = param, Grad = grad, Buffer = momentumBuffer,
            NegLr = T.CreateTruncating(-lr), Momentum = T.CreateTruncating(momentum),
            OneMinusDampening = T.CreateTruncating(1 - dampening), WeightDecay = T.CreateTruncating(weightDecay),
            HasMomentum = momentum != 0, HasWeightDecay = weightDecay != 0, Nesterov = nesterov, Maximize = maximize, FirstStep = firstStep,
        };
        return UpdateLoop.Run<Rule<T>, T>(ref rule, param, measure, grad);
    }

    private ref struct Rule<T> : IUpdateRule<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public Span<T> Param, Buffer;
        public ReadOnlySpan<T> Grad;
        public T NegLr, Momentum, OneMinusDampening, WeightDecay;
        public bool HasMomentum, HasWeightDecay, Nesterov, Maximize, FirstStep;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly void Apply<TV>(nuint i, out TV before, out TV after) where TV : struct, IVec<TV, T>
        {
            ref T pr = ref MemoryMarshal.GetReference(Param);
            var p = TV.Load(ref pr, i);
            var d = TV.Load(ref MemoryMarshal.GetReference(Grad), i);
            if (Maximize) d = -d;
            if (HasWeightDecay) d += TV.Create(WeightDecay) * p;
            if (HasMomentum)
            {
                ref T br = ref MemoryMarshal.GetReference(Buffer);
                var b = FirstStep ? d : TV.Load(ref br, i) * TV.Create(Momentum) + TV.Create(OneMinusDampening) * d;
                TV.Store(b, ref br, i);
                d = Nesterov ? d + TV.Create(Momentum) * b : b;
            }
            var np = p + TV.Create(NegLr) * d;
            TV.Store(np, ref pr, i);
            before = p;
            after = np;
        }
    }
}
