using System.Globalization;
using GradFlow.Diagnostics;

namespace GradFlow.Reporting.Html;

/// <summary>One run's records reshaped for the charts: bucketed series, per-layer matrices, layer order by depth.</summary>
internal sealed class RunView
{
    private readonly Downsample _buckets;
    private readonly int _maxPoints;
    private readonly Dictionary<string, int>[] _layerIndex; // per step: layer name -> index in that step's Layers

    public ReportRun Run { get; }
    public string Id { get; }
    public string[] Layers { get; }
    public string[] FlowLayers { get; }
    public double[] X { get; }
    public (double[] Mean, double[] Min, double[] Max) Loss { get; }
    public (double[] Mean, double[] Min, double[] Max) GradNorm { get; }
    public double[]? Clipped { get; }
    public double[]? Lr { get; }
    public bool LossPositive { get; }

    public RunView(ReportRun run, int index, int maxPoints)
    {
        Run = run;
        _maxPoints = Math.Max(2, maxPoints);
        Id = string.Create(CultureInfo.InvariantCulture, $"run{index}");
        var steps = run.Steps;
        _buckets = Downsample.For(steps.Count, maxPoints);
        X = _buckets.Last(steps.Select(s => (double)s.Step).ToArray());
        Layers = OrderedNames(steps.SelectMany(s => s.Layers.Select(l => (l.Layer, l.Depth))));
        FlowLayers = OrderedNames(steps.SelectMany(s => s.Flow.Select(f => (f.Layer, f.Depth))));
        _layerIndex = steps.Select(s =>
        {
            var d = new Dictionary<string, int>(s.Layers.Count);
            for (int i = 0; i < s.Layers.Count; i++) d[s.Layers[i].Layer] = i;
            return d;
        }).ToArray();
        var loss = steps.Select(s => s.Loss ?? double.NaN).ToArray();
        Loss = _buckets.Reduce(loss);
        LossPositive = loss.Where(double.IsFinite).All(l => l > 0);
        GradNorm = _buckets.Reduce(steps.Select(s => s.GlobalGradNorm).ToArray());
        if (steps.Any(s => s.ClippedGradNorm is not null)) Clipped = _buckets.Reduce(steps.Select(s => s.ClippedGradNorm ?? double.NaN).ToArray()).Mean;
        if (steps.Any(s => s.LearningRate is not null)) Lr = _buckets.Reduce(steps.Select(s => s.LearningRate ?? double.NaN).ToArray()).Mean;
    }

    // Names in depth order (the depth a name had when first seen), stable for equal depths.
    private static string[] OrderedNames(IEnumerable<(string Name, int Depth)> items)
    {
        var first = new Dictionary<string, (int Depth, int Seen)>();
        foreach (var (name, depth) in items) first.TryAdd(name, (depth, first.Count));
        return first.OrderBy(kv => kv.Value.Depth).ThenBy(kv => kv.Value.Seen).Select(kv => kv.Key).ToArray();
    }

    private LayerGradientStats? LayerAt(int step, string layer) =>
        _layerIndex[step].TryGetValue(layer, out int i) ? Run.Steps[step].Layers[i] : null;

    /// <summary>A per-layer figure for every step, bucketed (mean per bucket).</summary>
    public double[] LayerSeries(string layer, Func<LayerGradientStats, double> pick)
    {
        var values = new double[Run.Steps.Count];
        for (int s = 0; s < values.Length; s++) values[s] = LayerAt(s, layer) is { } l ? pick(l) : double.NaN;
        return _buckets.Reduce(values).Mean;
    }

    /// <summary>Layers by bucketed steps; a bucket with a non-finite value shows it (a NaN step must not vanish into a mean).</summary>
    public double[,] LayerMatrix(Func<LayerGradientStats, double> pick)
    {
        var m = new double[Layers.Length, _buckets.Count];
        for (int r = 0; r < Layers.Length; r++)
        {
            var values = new double[Run.Steps.Count];
            for (int s = 0; s < values.Length; s++) values[s] = LayerAt(s, Layers[r]) is { } l ? (l.Gradient.HasNonFinite ? double.PositiveInfinity : pick(l)) : double.NaN;
            FillRow(m, r, values);
        }
        return m;
    }

    public double[,] FlowMatrix()
    {
        var m = new double[FlowLayers.Length, _buckets.Count];
        for (int r = 0; r < FlowLayers.Length; r++)
        {
            var values = new double[Run.Steps.Count];
            for (int s = 0; s < values.Length; s++)
            {
                var f = Run.Steps[s].Flow.FirstOrDefault(x => x.Layer == FlowLayers[r]);
                values[s] = f is null ? double.NaN : f.NonFinite > 0 ? double.PositiveInfinity : f.InputGradNorm;
            }
            FillRow(m, r, values);
        }
        return m;
    }

    private void FillRow(double[,] m, int r, double[] values)
    {
        var (mean, _, _) = _buckets.Reduce(values);
        for (int c = 0; c < _buckets.Count; c++)
        {
            bool nonFinite = false;
            for (int i = _buckets.Start[c]; i < _buckets.Start[c + 1]; i++) nonFinite |= double.IsInfinity(values[i]);
            m[r, c] = nonFinite ? double.PositiveInfinity : mean[c];
        }
    }

    /// <summary>Mean and max |g| of a layer over the last tenth of the run (at least one step).</summary>
    public (double Mean, double Max) FlowBars(string layer)
    {
        int n = Run.Steps.Count, from = n - Math.Max(1, n / 10);
        double sum = 0, max = double.NaN;
        int count = 0;
        for (int s = from; s < n; s++)
        {
            if (LayerAt(s, layer) is not { } l || !double.IsFinite(l.Gradient.MeanAbs)) continue;
            sum += l.Gradient.MeanAbs;
            count++;
            max = double.IsNaN(max) ? l.Gradient.MaxAbs : Math.Max(max, l.Gradient.MaxAbs);
        }
        return (count == 0 ? double.NaN : sum / count, max);
    }

    /// <summary>
    /// Sharpness (lambda_max, or lambda_max of P^-1 H for adaptive optimisers) and the stability threshold (2/lr for SGD) on
    /// the steps a probe measured; every probe is kept, thinned evenly to the point budget only beyond it.
    /// </summary>
    public List<Series> CurvatureSeries()
    {
        var probes = Run.Steps.Where(s => s.Curvature is not null).Select(s => s.Curvature!).ToList();
        if (probes.Count == 0) return [];
        if (probes.Count > _maxPoints)
            probes = Enumerable.Range(0, _maxPoints).Select(i => probes[(int)((long)i * (probes.Count - 1) / (_maxPoints - 1))]).ToList();
        var x = probes.Select(p => (double)p.Step).ToArray();
        bool preconditioned = probes.Any(p => p.PreconditionedSharpness is not null);
        var result = new List<Series>
        {
            new(preconditioned ? "λmax(P⁻¹H), preconditioned sharpness" : "λmax, sharpness", x,
                probes.Select(p => p.PreconditionedSharpness ?? p.Sharpness ?? double.NaN).ToArray()),
        };
        if (probes.Any(p => p.StabilityThreshold is not null))
            result.Add(new Series($"stability threshold ({probes.First(p => p.StabilityThreshold is not null).Rule})", x,
                probes.Select(p => p.StabilityThreshold ?? double.NaN).ToArray(), Dashed: true));
        return result;
    }

    /// <summary>The density of the Hessian's eigenvalues on a grid over its range, each Lanczos node smoothed by a Gaussian 1% of the range wide (floored at 1e-6 of the peak).</summary>
    public Series? DensitySeries()
    {
        if (Run.Density is not { } d || !double.IsFinite(d.Min) || !double.IsFinite(d.Max)) return null;
        double span = Math.Max(d.Max - d.Min, 1e-12), lo = d.Min - 0.05 * span, hi = d.Max + 0.05 * span;
        var grid = Enumerable.Range(0, 241).Select(i => lo + (hi - lo) * i / 240).ToArray();
        var density = d.Evaluate(grid, 0.01 * span);
        // Gaussian tails fall to 1e-30 and below between nodes; a floor six decades under the peak keeps the axis readable.
        double floor = density.Where(double.IsFinite).DefaultIfEmpty(0).Max() * 1e-6;
        return new Series("spectral density", grid, density.Select(v => double.IsFinite(v) ? Math.Max(v, floor) : v).ToArray());
    }

    /// <summary>Whether the run's section has the chart with this id suffix (the same conditions the page uses to draw it).</summary>
    public bool Has(string chart) => chart switch
    {
        "lr" => Lr is not null,
        "backward" => FlowLayers.Length > 0,
        "ratio" => Layers.Any(l => LayerSeries(l, s => s.UpdateToWeight ?? double.NaN).Any(double.IsFinite)),
        "activations" => ActivationSeries().Count > 0,
        "sharpness" => Run.Steps.Any(s => s.Curvature is not null),
        "density" => DensitySeries() is not null,
        "landscape" => Run.Landscape is { Count: > 0 },
        _ => true,
    };

    public double FirstMeanAbs(string layer) => LayerAt(0, layer)?.Gradient.MeanAbs ?? double.NaN;

    public bool HasHistograms(string layer)
    {
        for (int s = 0; s < Run.Steps.Count; s++) if (LayerAt(s, layer)?.Gradient.Histogram is not null) return true;
        return false;
    }

    /// <summary>|g| histogram of a layer over time: rows are powers of two (largest on top, trimmed to the used span), cells the share of values.</summary>
    public (string[] Rows, double[,] Matrix) HistogramMatrix(string layer)
    {
        int buckets = Log2Histogram.BucketCount, cols = _buckets.Count;
        var counts = new double[buckets, cols];
        var totals = new double[cols];
        for (int c = 0; c < cols; c++)
            for (int s = _buckets.Start[c]; s < _buckets.Start[c + 1]; s++)
            {
                if (LayerAt(s, layer)?.Gradient.Histogram is not { } h) continue;
                for (int b = 0; b < buckets; b++) counts[b, c] += h.Positive[b] + h.Negative[b];
                totals[c] += h.Total;
            }
        int lo = buckets, hi = -1;
        for (int b = 0; b < buckets; b++)
            for (int c = 0; c < cols; c++)
                if (counts[b, c] > 0) { lo = Math.Min(lo, b); hi = Math.Max(hi, b); }
        if (hi < 0) (lo, hi) = (0, 0);
        int n = hi - lo + 1;
        var rows = new string[n];
        var m = new double[n, cols];
        for (int i = 0; i < n; i++)
        {
            int b = hi - i; // largest magnitude on top
            rows[i] = string.Create(CultureInfo.InvariantCulture, $"2^{Log2Histogram.MinExponent + b}");
            for (int c = 0; c < cols; c++) m[i, c] = totals[c] > 0 ? counts[b, c] / totals[c] : double.NaN;
        }
        return (rows, m);
    }

    /// <summary>Dead-unit fractions of ReLU layers and saturated fractions of sigmoid/tanh layers, one line each.</summary>
    public List<Series> ActivationSeries()
    {
        var keys = OrderedNames(Run.Steps.SelectMany(s => s.Activations.Select(a => (a.Layer + "\u0000" + a.Op, a.Depth))));
        var result = new List<Series>();
        foreach (var key in keys)
        {
            var parts = key.Split('\u0000');
            var values = new double[Run.Steps.Count];
            bool any = false, saturating = false;
            for (int s = 0; s < values.Length; s++)
            {
                var a = Run.Steps[s].Activations.FirstOrDefault(x => x.Layer == parts[0] && x.Op == parts[1]);
                double? v = a?.DeadFraction ?? a?.SaturatedFraction;
                saturating |= a?.SaturatedFraction is not null;
                values[s] = v ?? double.NaN;
                any |= v is not null;
            }
            if (any)
                result.Add(new Series($"{(parts[0].Length == 0 ? "(root)" : parts[0])} {parts[1]} {(saturating ? "saturated" : "dead")}", X, _buckets.Reduce(values).Mean));
        }
        return result;
    }
}
