using System.Diagnostics;
using GradFlow.Bench.Cases;
using GradFlow.Diagnostics;

namespace GradFlow.Bench;

/// <summary>
/// Where a kept-graph HVP's time and allocations go, per op and per backward node (an observer stamps each event;
/// the time since the previous event is charged to it). Profiling only: the observer itself costs time.
/// </summary>
internal static class HvpProfile
{
    private sealed class Stamps : IAutogradObserver
    {
        public readonly Dictionary<string, (double Ms, long Bytes, int Calls)> Totals = [];
        private long _t = Stopwatch.GetTimestamp(), _b = GC.GetAllocatedBytesForCurrentThread();

        public void Reset() => (_t, _b) = (Stopwatch.GetTimestamp(), GC.GetAllocatedBytesForCurrentThread());

        public void Charge(string name)
        {
            long t = Stopwatch.GetTimestamp(), b = GC.GetAllocatedBytesForCurrentThread();
            var (ms, bytes, calls) = Totals.GetValueOrDefault(name);
            Totals[name] = (ms + ((t - _t) * 1000.0 / Stopwatch.Frequency), bytes + (b - _b), calls + 1);
            (_t, _b) = (Stopwatch.GetTimestamp(), GC.GetAllocatedBytesForCurrentThread());
        }

        public void OnForward(string op, ReadOnlySpan<Tensor> inputs, Tensor output, Node? node) =>
            Charge("op " + op + " " + string.Join("x", output.ShapeArray));

        public void OnBackward(Node node, ReadOnlySpan<Tensor?> gradOutputs, ReadOnlySpan<Tensor?> gradInputs) => Charge("node " + node.Name);
    }

    public static void Run(TrainingCase inner, int products)
    {
        inner.Setup();
        using var op = CurvatureOperator.Hessian(inner.BatchLoss, inner.BuiltModel);
        var gen = new Generator(1);
        var v = new double[op.Dimension];
        var result = new double[op.Dimension];
        for (int i = 0; i < v.Length; i++) v[i] = gen.NextNormal();
        for (int i = 0; i < 20; i++) op.Apply(v, result);
        var stamps = new Stamps();
        double total = 0;
        long bytes = 0;
        using (Autograd.AddObserver(stamps))
        {
            for (int i = 0; i < products; i++)
            {
                long b0 = GC.GetAllocatedBytesForCurrentThread();
                var sw = Stopwatch.StartNew();
                stamps.Reset();
                op.Apply(v, result);
                stamps.Charge("(after last event)");
                total += sw.Elapsed.TotalMilliseconds;
                bytes += GC.GetAllocatedBytesForCurrentThread() - b0;
            }
        }
        Console.WriteLine($"{inner.Name}: {total / products:F2} ms, {bytes / products} B per kept product (observed)");
        foreach (var (name, (ms, b, calls)) in stamps.Totals.OrderByDescending(kv => kv.Value.Ms))
            Console.WriteLine($"  {ms / products,8:F3} ms {b / products,9} B {calls / products,4}x  {name}");
    }
}
