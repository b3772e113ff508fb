using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text;
using GradFlow.Kernels;

namespace GradFlow.Diagnostics;

/// <summary>Where a NaN or Inf first appeared.</summary>
public enum AnomalyPhase
{
    /// <summary>An op's output in the forward pass.</summary>
    Forward,
    /// <summary>A gradient produced by a node's backward.</summary>
    Backward,
    /// <summary>A tensor no observed op produced (input data, a parameter), non-finite when an op first read it.</summary>
    Input,
}

/// <summary>The range of one tensor an anomalous op read.</summary>
public sealed record TensorRange(string Role, string Shape, double Min, double Max, long NonFinite)
{
    /// <inheritdoc />
    public override string ToString() => $"{Role} {Shape}: min {Min:G4}, max {Max:G4}, {NonFinite} non-finite";
}

/// <summary>The first op that produced a non-finite value from finite inputs, or that read a non-finite input (<see cref="AnomalyPhase.Input"/>: the counts are the input's).</summary>
public sealed record AnomalyReport(AnomalyPhase Phase, string Op, string? Module, long NaNCount, long InfCount,
    IReadOnlyList<TensorRange> Inputs, string? CreatedAt)
{
    /// <inheritdoc />
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append($"{Phase}: {Op}");
        if (!string.IsNullOrEmpty(Module)) sb.Append($" in module '{Module}'");
        sb.Append(Phase == AnomalyPhase.Input
            ? $" read a non-finite input ({NaNCount} NaN and {InfCount} Inf) that no op produced: the data or a parameter."
            : $" produced {NaNCount} NaN and {InfCount} Inf from finite inputs.");
        foreach (var r in Inputs) sb.Append("\n  ").Append(r);
        if (CreatedAt is not null) sb.Append("\n  created at: ").Append(CreatedAt);
        return sb.ToString();
    }
}

/// <summary>Thrown by anomaly mode at the first op that produces NaN or Inf from finite inputs.</summary>
public sealed class AnomalyException(AnomalyReport report) : Exception(report.ToString())
{
    /// <summary>What was found, and where.</summary>
    public AnomalyReport Report { get; } = report;
}

/// <summary>
/// Finds the first op that turns finite values into NaN or Inf, in forward (its output) and in
/// backward (the gradients it produces), and reports the op, the module path, the ranges of its
/// inputs and the line of user code that created it. A non-finite tensor that no op produced (a batch of data, a
/// parameter loaded so) is reported at the first op that reads it. Each event is reported once: ops downstream of an
/// origin, the backward of any op whose forward saw the non-finite value, and the parameters an optimiser step then
/// made non-finite are its consequences, not new origins. Unlike PyTorch's anomaly detection it checks
/// Inf as well as NaN, and forward as well as backward. Use as <c>using var _ = AnomalyMode.Enable();</c>.
/// The cost: one vectorised scan of each op's output and each gradient, plus a stack capture without
/// file information (about 5-10 µs) per recorded op, so that a backward anomaly can name where its op
/// was created; file and line are read from the PDB only for a report. Measured on a 784-256-256-10 MLP
/// training step (batch 64, one thread, 1.1 ms): +14% with stack capture, +10% without (PyTorch's
/// anomaly detection is quoted at 2-3x).
/// </summary>
public sealed class AnomalyMode : IAutogradObserver, IDisposable
{
    private readonly bool _throw;
    private readonly bool _captureStacks;
    private readonly List<AnomalyReport> _reports = [];
    // Reading a tensor's values for a report runs an op of its own (a copy), which this observer must not judge: a
    // copy of a non-finite input is non-finite too, and judging it would read it again, without end.
    [ThreadStatic] private static bool t_reading;
    private IDisposable? _registration;
    // Tensors known to hold a non-finite value: an origin's output and everything computed from it, inputs already
    // reported. An op that reads one is downstream of a reported event.
    private readonly ConditionalWeakTable<Tensor, object> _known = [];
    // Nodes whose forward read or made a non-finite value: their backward's non-finite gradients belong to that event.
    private readonly ConditionalWeakTable<Node, object> _tainted = [];
    private int _events;

    private AnomalyMode(bool throwOnAnomaly, bool captureStacks)
    {
        _throw = throwOnAnomaly;
        _captureStacks = captureStacks;
        _registration = Autograd.AddObserver(this);
    }

    /// <summary>
    /// Turns anomaly detection on until disposed. With <paramref name="throwOnAnomaly"/> the first anomaly throws an
    /// <see cref="AnomalyException"/>; otherwise every first-in-a-chain anomaly is collected in <see cref="Reports"/>.
    /// <paramref name="captureStacks"/> records each op's creation site for backward reports (the expensive part).
    /// </summary>
    public static AnomalyMode Enable(bool throwOnAnomaly = true, bool captureStacks = true) => new(throwOnAnomaly, captureStacks);

    /// <summary>Anomalies found so far (when not throwing).</summary>
    public IReadOnlyList<AnomalyReport> Reports => _reports;

    void IAutogradObserver.OnForward(string op, ReadOnlySpan<Tensor> inputs, Tensor output, Node? node)
    {
        if (Autograd.IsInBackward || t_reading) return; // ops inside a backward are judged by the node's own backward check
        if (node is not null && _captureStacks) node.ObserverTag = new StackTrace(2, fNeedFileInfo: false);
        bool downstream = false;
        for (int i = 0; i < inputs.Length; i++)
        {
            var x = inputs[i];
            if (_known.TryGetValue(x, out _)) { downstream = true; continue; }
            // An op's output was judged when it was made; a tensor no observed op made is judged at its first reader.
            if (x.GradFn is not null || !x.DType.IsFloatingPoint()) continue;
            var (xNaN, xInf) = CountNonFinite(x);
            if (xNaN + xInf == 0) continue;
            _known.AddOrUpdate(x, x);
            downstream = true;
            // A parameter that turns non-finite after a reported event was carried there by the optimiser's step.
            if (_events > 0 && x.RequiresGrad) continue;
            Taint(node, output);
            Report(new AnomalyReport(AnomalyPhase.Input, op, Autograd.CurrentScope, xNaN, xInf, Ranges(inputs, "input"),
                SourceLocator.UserFrame(new StackTrace(1, true))));
        }
        if (!output.DType.IsFloatingPoint()) return;
        var (nan, inf) = CountNonFinite(output);
        if (nan + inf == 0)
        {
            if (downstream && node is not null) _tainted.AddOrUpdate(node, node); // its backward reads the non-finite input
            return;
        }
        Taint(node, output);
        if (downstream) return; // not the first: the non-finite value came in
        var ranges = Ranges(inputs, "input");
        if (ranges.Any(r => r.NonFinite > 0)) return; // an input changed in place after it was made, or made in a backward
        Report(new AnomalyReport(AnomalyPhase.Forward, op, Autograd.CurrentScope, nan, inf, ranges, SourceLocator.UserFrame(new StackTrace(1, true))));
    }

    private void Taint(Node? node, Tensor output)
    {
        _known.AddOrUpdate(output, output);
        if (node is not null) _tainted.AddOrUpdate(node, node);
    }

    private static List<TensorRange> Ranges(ReadOnlySpan<Tensor> inputs, string role)
    {
        var ranges = new List<TensorRange>(inputs.Length);
        for (int i = 0; i < inputs.Length; i++) ranges.Add(RangeOf($"{role} {i}", inputs[i]));
        return ranges;
    }

    void IAutogradObserver.OnBackward(Node node, ReadOnlySpan<Tensor?> gradOutputs, ReadOnlySpan<Tensor?> gradInputs)
    {
        if (_tainted.TryGetValue(node, out _)) return; // its forward already saw the event's non-finite values
        long nan = 0, inf = 0;
        foreach (var g in gradInputs)
        {
            if (g is null) continue;
            var (n, i) = CountNonFinite(g);
            nan += n; inf += i;
        }
        if (nan + inf == 0) return;
        var ranges = new List<TensorRange>();
        for (int k = 0; k < gradOutputs.Length; k++)
        {
            if (gradOutputs[k] is not { } g) continue;
            var r = RangeOf($"gradient of output {k}", g);
            if (r.NonFinite > 0) return;
            ranges.Add(r);
        }
        string op = node.Name.EndsWith("Backward", StringComparison.Ordinal) ? node.Name[..^"Backward".Length] : node.Name;
        Report(new AnomalyReport(AnomalyPhase.Backward, op, node.Scope, nan, inf, ranges, node.ObserverTag is StackTrace st ? SourceLocator.UserFrame(st) : null));
    }

    private void Report(AnomalyReport report)
    {
        _events++;
        if (_throw) throw new AnomalyException(report);
        _reports.Add(report);
    }

    private static (long NaN, long Inf) CountNonFinite(Tensor t)
    {
        // The common case, all finite, is one vectorised scan; counting happens only when something is wrong.
        if (t.DType == DType.Float32 && t.IsContiguous && !Statistics.HasNonFinite(t.Span<float>())) return (0, 0);
        var acc = new StatsAccumulator();
        TensorStats.Accumulate(t, ref acc, histogram: false);
        return (acc.NaNs, acc.Infs);
    }

    private static TensorRange RangeOf(string role, Tensor t)
    {
        if (!t.DType.IsFloatingPoint() || t.NumEl == 0) return new TensorRange(role, Guard.Shape(t), double.NaN, double.NaN, 0);
        double[] v;
        t_reading = true;
        try { v = t.ToDoubleArray(); }
        finally { t_reading = false; }
        double min = double.PositiveInfinity, max = double.NegativeInfinity;
        long nonFinite = 0;
        foreach (double x in v)
        {
            if (!double.IsFinite(x)) { nonFinite++; continue; }
            min = Math.Min(min, x); max = Math.Max(max, x);
        }
        return new TensorRange(role, Guard.Shape(t), min, max, nonFinite);
    }

    /// <summary>Turns anomaly detection off.</summary>
    public void Dispose()
    {
        _registration?.Dispose();
        _registration = null;
    }
}
