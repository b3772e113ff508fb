using System.Numerics;
using System.Runtime.CompilerServices;

namespace GradFlow.Kernels.Optim;

/// <summary>
/// One optimiser update rule over flat spans: reads the parameter, gradient and state at lanes
/// [i, i + TV.Count), writes the new parameter and state, and hands back the parameter before and
/// after so the loop can measure the update in the same pass.
/// </summary>
internal interface IUpdateRule<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    void Apply<TV>(nuint i, out TV before, out TV after) where TV : struct, IVec<TV, T>;
}

/// <summary>Sums of squares measured while updating: of the applied update (new - old) and of the old parameter.</summary>
internal readonly record struct UpdateSums(double UpdateSumSq, double ParamSumSq);

internal interface IMeasure { static abstract bool On { get; } }
internal readonly struct Measure : IMeasure { public static bool On => true; }
internal readonly struct NoMeasure : IMeasure { public static bool On => false; }

/// <summary>
/// Drives an update rule over a whole parameter: 512-bit lanes, then 256-bit, then one lane at a time.
/// The rule is a struct, so each (rule, dtype, width) pair is its own specialised loop with no calls.
/// Measuring (for optimiser observers) is a type argument, so the unmeasured loop carries no cost.
/// </summary>
internal static class UpdateLoop
{
    public static UpdateSums Run<TRule, T>(scoped ref TRule rule, int length, bool measure)
        where TRule : struct, IUpdateRule<T>, allows ref struct
        where T : unmanaged, IFloatingPointIeee754<T> =>
        measure ? Run<TRule, T, Measure>(ref rule, length) : Run<TRule, T, NoMeasure>(ref rule, length);

    private static UpdateSums Run<TRule, T, TM>(scoped ref TRule rule, int length)
        where TRule : struct, IUpdateRule<T>, allows ref struct
        where T : unmanaged, IFloatingPointIeee754<T>
        where TM : struct, IMeasure
    {
        nuint n = (nuint)length, i = 0;
        double updateSq = 0, paramSq = 0;
        if (V512<T>.IsSupported) i = Body<TRule, T, V512<T>, TM>(ref rule, i, n, ref updateSq, ref paramSq);
        if (V256<T>.IsSupported) i = Body<TRule, T, V256<T>, TM>(ref rule, i, n, ref updateSq, ref paramSq);
        Body<TRule, T, V1<T>, TM>(ref rule, i, n, ref updateSq, ref paramSq);
        return new UpdateSums(updateSq, paramSq);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static nuint Body<TRule, T, TV, TM>(scoped ref TRule rule, nuint i, nuint n, ref double updateSq, ref double paramSq)
        where TRule : struct, IUpdateRule<T>, allows ref struct
        where T : unmanaged, IFloatingPointIeee754<T>
        where TV : struct, IVec<TV, T>
        where TM : struct, IMeasure
    {
        TV u = TV.Create(T.Zero), p = u;
        nuint w = (nuint)TV.Count;
        for (; i + w <= n; i += w)
        {
            rule.Apply(i, out TV before, out TV after);
            if (TM.On)
            {
                var d = after - before;
                u += d * d;
                p += before * before;
            }
        }
        if (TM.On)
        {
            updateSq += double.CreateTruncating(TV.Sum(u));
            paramSq += double.CreateTruncating(TV.Sum(p));
        }
        return i;
    }

    /// <summary>Checks that every state span matches the parameter's length (a kernel entry check, not a hot-path one).</summary>
    public static void CheckLength(string kernel, int expected, int actual, string name)
    {
        if (actual != expected)
            throw new ArgumentException($"{kernel}: {name} has {actual} elements, the parameter has {expected}.", name);
    }
}
