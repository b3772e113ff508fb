using GradFlow.Diagnostics;

namespace GradFlow.Bench;

/// <summary>
/// Where the time, the GEMM work and the allocations of a Hessian-vector product go, per op and per backward node,
/// beside a training step of the same model: the training step, the operator's making (forward and the gradient with
/// createGraph), and a product on the kept graph. An observer stamps each event and charges the thread CPU time since
/// the previous event to it; it also counts each MatMul's and Linear's multiply-accumulates (m k n, from the shapes),
/// which do not depend on the machine's load. HVP_TRACE=1 also prints the last repeat's events in order, nodes with their gradients'
/// shapes (T: strided). Profiling only: the observer itself costs time.
/// </summary>
internal static class HvpProfile
{
    private sealed class Stamps : IAutogradObserver
    {
        public readonly Dictionary<string, (double Ms, long Bytes, int Calls, long Macs)> Totals = [];
        public long Macs, Gemms;
        public bool Trace;
        private double _t = ThreadCpu.NowMs();
        private long _b = GC.GetAllocatedBytesForCurrentThread();

        public void Reset()
        {
            Totals.Clear();
            (Macs, Gemms) = (0, 0);
            Restart();
        }

        public void Restart() => (_t, _b) = (ThreadCpu.NowMs(), GC.GetAllocatedBytesForCurrentThread());

        public void Charge(string name, long macs = 0)
        {
            double t = ThreadCpu.NowMs();
            long b = GC.GetAllocatedBytesForCurrentThread();
            var (ms, bytes, calls, m) = Totals.GetValueOrDefault(name);
            Totals[name] = (ms + (t - _t), bytes + (b - _b), calls + 1, m + macs);
            if (Trace) Console.WriteLine($"    trace {t - _t,8:F3} ms  {name}");
            Restart();
        }

        public void OnForward(string op, ReadOnlySpan<Tensor> inputs, Tensor output, Node? node)
        {
            long macs = GemmMacs(op, inputs, output);
            if (macs > 0) (Macs, Gemms) = (Macs + macs, Gemms + 1);
            string shapes = string.Join(" ", inputs.ToArray().Select(t => string.Join("x", t.ShapeArray) + (t.IsContiguous ? "" : "T")));
            Charge($"op {op} {shapes} -> {string.Join("x", output.ShapeArray)}{(node is null ? "" : " (recorded)")}", macs);
        }

        public void OnBackward(Node node, ReadOnlySpan<Tensor?> gradOutputs, ReadOnlySpan<Tensor?> gradInputs) =>
            Charge("node " + node.Name + " [" + string.Join(" ", gradOutputs.ToArray().Select(S)) + "] -> [" + string.Join(" ", gradInputs.ToArray().Select(S)) + "]");

        private static string S(Tensor? t) => t is null ? "-" : string.Join("x", t.ShapeArray) + (t.IsContiguous ? "" : "T");
    }

    // Multiply-accumulates of a matrix product op, from its operands' shapes (0 for other ops).
    private static long GemmMacs(string op, ReadOnlySpan<Tensor> inputs, Tensor output)
    {
        if (op == OpNames.MatMul && inputs.Length == 2 && inputs[0].Rank >= 1 && inputs[1].Rank >= 1)
            return (long)output.NumEl * inputs[0].ShapeArray[^1];
        if (op == OpNames.Linear && inputs.Length >= 2) return (long)output.NumEl * inputs[1].ShapeArray[^1];
        return 0;
    }

    public static void Run(TrainingCase inner, int repeats)
    {
        inner.Setup();
        var gen = new Generator(1);
        int n = (int)inner.BuiltModel.Parameters().Sum(p => (long)p.NumEl);
        var v = new double[n];
        var result = new double[n];
        for (int i = 0; i < n; i++) v[i] = gen.NextNormal();
        for (int i = 0; i < 10; i++)
        {
            inner.Step();
            using var warm = CurvatureOperator.Hessian(inner.BatchLoss, inner.BuiltModel);
            warm.Apply(v, result);
        }
        var stamps = new Stamps();
        Section(inner.Name + " training step", stamps, repeats, inner.Step);
        CurvatureOperator? op = null;
        Section(inner.Name + " operator made (forward + createGraph backward)", stamps, repeats, () =>
        {
            op?.Dispose();
            op = CurvatureOperator.Hessian(inner.BatchLoss, inner.BuiltModel);
        });
        Section(inner.Name + " kept product (double backward)", stamps, repeats, () => op!.Apply(v, result));
        op!.Dispose();
    }

    private static void Section(string title, Stamps stamps, int repeats, Action body)
    {
        double total = 0;
        long bytes = 0;
        var totals = new Dictionary<string, (double Ms, long Bytes, int Calls, long Macs)>();
        long macs = 0, gemms = 0;
        for (int r = 0; r < repeats; r++)
        {
            stamps.Trace = r == repeats - 1 && Environment.GetEnvironmentVariable("HVP_TRACE") == "1";
            using (Autograd.AddObserver(stamps))
            {
                stamps.Reset();
                long b0 = GC.GetAllocatedBytesForCurrentThread();
                double t0 = ThreadCpu.NowMs();
                body();
                stamps.Charge("(after last event)");
                total += ThreadCpu.NowMs() - t0;
                bytes += GC.GetAllocatedBytesForCurrentThread() - b0;
            }
            foreach (var (name, e) in stamps.Totals)
            {
                var s = totals.GetValueOrDefault(name);
                totals[name] = (s.Ms + e.Ms, s.Bytes + e.Bytes, s.Calls + e.Calls, s.Macs + e.Macs);
            }
            (macs, gemms) = (macs + stamps.Macs, gemms + stamps.Gemms);
        }
        Console.WriteLine($"{title}: {total / repeats:F2} ms thread CPU, {bytes / repeats} B, {gemms / repeats} GEMM ops, " +
            $"{macs / repeats / 1e6:F1} M MACs (observed)");
        foreach (var (name, (ms, b, calls, m)) in totals.OrderByDescending(kv => kv.Value.Ms))
            Console.WriteLine($"  {ms / repeats,8:F3} ms {b / repeats,9} B {(double)calls / repeats,5:F1}x {m / repeats / 1e6,8:F1} MMAC  {name}");
    }
}
