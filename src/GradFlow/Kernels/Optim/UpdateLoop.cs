using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

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

/// <summary>
/// Sums measured while updating: squares of the applied update (new - old) and of the parameter after it, and
/// the gradient's statistics (over its finite values: squares, |g| sum and max; counts of zeros, NaN, Inf).
/// </summary>
internal record struct UpdateSums(double UpdateSumSq, double ParamSumSq)
{
    public double GradSumSq, GradSumAbs, GradMaxAbs;
    public long GradZeros, GradNaNs, GradInfs;

    public void Add(in UpdateSums b)
    {
        UpdateSumSq += b.UpdateSumSq; ParamSumSq += b.ParamSumSq;
        GradSumSq += b.GradSumSq; GradSumAbs += b.GradSumAbs; GradMaxAbs = Math.Max(GradMaxAbs, b.GradMaxAbs);
        GradZeros += b.GradZeros; GradNaNs += b.GradNaNs; GradInfs += b.GradInfs;
    }
}

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
    /// <summary>Runs the rule over <paramref name="param"/> (the span the rule writes); with <paramref name="measure"/>, also measures the update and <paramref name="grad"/> (the rule's gradient) in the same pass.</summary>
    public static UpdateSums Run<TRule, T>(scoped ref TRule rule, ReadOnlySpan<T> param, bool measure, ReadOnlySpan<T> grad)
        where TRule : struct, IUpdateRule<T>, allows ref struct
        where T : unmanaged, IFloatingPointIeee754<T> =>
        measure ? Run<TRule, T, Measure>(ref rule, param, grad) : Run<TRule, T, NoMeasure>(ref rule, param, grad);

    // Never inlined: inlined into a caller that is itself inlined into a parallel body, the loop ran out of the JIT's
    // inlining budget and called the vector operations one by one (the measured update at two threads: +26% a step).
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static UpdateSums Run<TRule, T, TM>(scoped ref TRule rule, ReadOnlySpan<T> param, ReadOnlySpan<T> grad)
        where TRule : struct, IUpdateRule<T>, allows ref struct
        where T : unmanaged, IFloatingPointIeee754<T>
        where TM : struct, IMeasure
    {
        nuint n = (nuint)param.Length, i = 0;
        var sums = new UpdateSums();
        ref T g = ref MemoryMarshal.GetReference(grad);
        // Blocks keep the per-lane float sums and counts short enough to stay accurate (counts exact below 2^24).
        for (nuint start = 0; start < n; start += Block)
        {
            nuint end = Math.Min(n, start + Block);
            i = start;
            var block = new UpdateSums();
            if (V512<T>.IsSupported) i = Body<TRule, T, V512<T>, TM>(ref rule, ref g, i, end, ref block);
            if (V256<T>.IsSupported) i = Body<TRule, T, V256<T>, TM>(ref rule, ref g, i, end, ref block);
            // The scalar loop is the tail on vector hardware and the whole block without it: its one float lane is
            // flushed every 4,096 terms, as many as each lane of the 512-bit loop sums in a block.
            for (; i < end; i = Math.Min(end, i + 4096)) Body<TRule, T, V1<T>, TM>(ref rule, ref g, i, Math.Min(end, i + 4096), ref block);
            // The fast pass summed raw squares: a NaN or Inf shows there as a non-finite sum. Only then is the
            // block's gradient read again to count them and to keep them out of the sums.
            if (TM.On && !double.IsFinite(block.GradSumSq + block.GradSumAbs)) Recount(grad.Slice((int)start, (int)(end - start)), ref block);
            // Finite weights whose squares overflow the float lanes (|w| above ~1e17 in float32) are summed again in
            // double from the parameter, which now holds them; a non-finite weight keeps its non-finite sum.
            if (TM.On && !double.IsFinite(block.ParamSumSq)) block.ParamSumSq = SumSquares(param.Slice((int)start, (int)(end - start)));
            sums.Add(block);
        }
        return sums;
    }

    private static void Recount<T>(ReadOnlySpan<T> grad, ref UpdateSums s) where T : unmanaged, IFloatingPointIeee754<T>
    {
        double sq = 0, abs = 0, max = 0;
        long nan = 0, inf = 0;
        foreach (var v in grad)
        {
            if (T.IsNaN(v)) { nan++; continue; }
            if (T.IsInfinity(v)) { inf++; continue; }
            double a = double.CreateTruncating(T.Abs(v));
            sq += a * a; abs += a; max = Math.Max(max, a);
        }
        (s.GradSumSq, s.GradSumAbs, s.GradMaxAbs, s.GradNaNs, s.GradInfs) = (sq, abs, max, nan, inf);
    }

    private static double SumSquares<T>(ReadOnlySpan<T> x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        double sq = 0;
        foreach (var v in x)
        {
            double d = double.CreateTruncating(v);
            sq += d * d;
        }
        return sq;
    }

    private const nuint Block = 1 << 16;

    // Squares of updates at this scale stay finite in float lanes for any finite before and after: |after - before|
    // 2^-76 is at most 2^53, its square 2^106, 8,192 of them (a 256-bit lane's share of a block) 2^119, and the lanes'
    // horizontal sum below 2^123 < float.MaxValue. The plain sum keeps small updates, which the scaled one underflows.
    private const double UpdateScale = 1.0 / (1L << 38) / (1L << 38);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static nuint Body<TRule, T, TV, TM>(scoped ref TRule rule, ref T grad, nuint i, nuint n, ref UpdateSums sums)
        where TRule : struct, IUpdateRule<T>, allows ref struct
        where T : unmanaged, IFloatingPointIeee754<T>
        where TV : struct, IVec<TV, T>
        where TM : struct, IMeasure
    {
        // Eight vector operations a lane group: fused squares, the parameter after the step squared directly, and
        // the zero count on the integer side (compare to a mask, pop-count), off the busy floating-point pipes.
        // (Two lane groups an iteration with separate accumulators measured slower: the rule's out values spill.)
        TV zero = TV.Create(T.Zero), scale = TV.Create(T.CreateTruncating(UpdateScale));
        TV u = zero, uScaled = zero, p = zero, gsq = zero, gabs = zero, gmax = zero;
        long zeros = 0;
        nuint w = (nuint)TV.Count;
        for (; i + w <= n; i += w)
        {
            rule.Apply(i, out TV before, out TV after);
            if (TM.On)
            {
                var d = after - before;
                u = TV.MultiplyAdd(d, d, u);
                var ds = (scale * after) - (scale * before); // after - before itself may overflow
                uScaled = TV.MultiplyAdd(ds, ds, uScaled);
                p = TV.MultiplyAdd(after, after, p);
                var g = TV.Load(ref grad, i); // just read by the rule: in L1
                gsq = TV.MultiplyAdd(g, g, gsq);
                var a = TV.Abs(g);
                gabs += a;
                gmax = TV.MaxNative(gmax, a); // a NaN block is recounted below
                zeros += TV.CountZeros(g);
            }
        }
        if (TM.On)
        {
            double plain = double.CreateTruncating(TV.Sum(u));
            sums.UpdateSumSq += double.IsFinite(plain) ? plain : double.CreateTruncating(TV.Sum(uScaled)) / (UpdateScale * UpdateScale);
            sums.ParamSumSq += double.CreateTruncating(TV.Sum(p));
            sums.GradSumSq += double.CreateTruncating(TV.Sum(gsq));
            sums.GradSumAbs += double.CreateTruncating(TV.Sum(gabs));
            sums.GradMaxAbs = Math.Max(sums.GradMaxAbs, MaxLane<T, TV>(gmax));
            sums.GradZeros += zeros;
        }
        return i;
    }

    private static double MaxLane<T, TV>(TV v) where T : unmanaged, IFloatingPointIeee754<T> where TV : struct, IVec<TV, T>
    {
        // No horizontal max in IVec: spill the lanes (once per block).
        Span<T> lanes = stackalloc T[TV.Count];
        TV.Store(v, ref MemoryMarshal.GetReference(lanes), 0);
        double m = 0;
        foreach (var x in lanes) m = Math.Max(m, double.CreateTruncating(x));
        return m;
    }

    /// <summary>Checks that every state span matches the parameter's length (a kernel entry check, not a hot-path one).</summary>
    public static void CheckLength(string kernel, int expected, int actual, string name)
    {
        if (actual != expected)
            Guard.ThrowArg(kernel, name, $"{name} has {actual} elements, the parameter has {expected}.");
    }
}
