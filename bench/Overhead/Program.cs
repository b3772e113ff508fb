using System.Diagnostics;
using GradFlow;

// Per-op framework overhead: a chain of tiny ops, y = tanh(y * 1.0001 + 0.001) on a 4-element tensor
// requiring grad, so the arithmetic is negligible and the time is graph recording, allocation and dispatch.
// Compare with bench/overhead_torch.py (same chain, torch.set_num_threads(1)).
const int Steps = 1000, OpsPerStep = 3, Runs = 20, Warmup = 5;
const int Ops = Steps * OpsPerStep;

var fwd = new List<double>();
var bwd = new List<double>();
var fwdBytes = new List<double>();
var bwdBytes = new List<double>();
for (int run = 0; run < Warmup + Runs; run++)
{
    var x = Tensor.FromArray(new float[] { 0.1f, -0.2f, 0.3f, 0.4f }).RequireGrad();
    long b0 = GC.GetAllocatedBytesForCurrentThread();
    var sw = Stopwatch.StartNew();
    var y = x;
    for (int i = 0; i < Steps; i++) y = (y * 1.0001 + 0.001).Tanh();
    var loss = y.Sum();
    double tf = sw.Elapsed.TotalNanoseconds;
    long b1 = GC.GetAllocatedBytesForCurrentThread();
    sw.Restart();
    loss.Backward();
    double tb = sw.Elapsed.TotalNanoseconds;
    long b2 = GC.GetAllocatedBytesForCurrentThread();
    if (run < Warmup) continue;
    fwd.Add(tf / Ops); bwd.Add(tb / Ops);
    fwdBytes.Add((b1 - b0) / (double)Ops); bwdBytes.Add((b2 - b1) / (double)Ops);
}

static double Median(List<double> v) { v.Sort(); return (v[v.Count / 2] + v[(v.Count - 1) / 2]) / 2; }
Console.WriteLine($"GradFlow: chain of {Ops} ops (4 elements), median of {Runs} runs");
Console.WriteLine($"  forward : {Median(fwd),8:F0} ns/op  {Median(fwdBytes),6:F0} B/op");
Console.WriteLine($"  backward: {Median(bwd),8:F0} ns/op  {Median(bwdBytes),6:F0} B/op");
