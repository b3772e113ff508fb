using GradFlow.Kernels;
using GradFlow.Optim;

namespace GradFlow.Diagnostics;

/// <summary>
/// Every watched parameter's and layer's gradient statistics, parameter norm and update norm, and the global gradient
/// norm before and after clipping. Gradients are measured once per step, after accumulation and clipping, inside the
/// optimiser's own update pass (<see cref="UpdateStats"/>), so a monitored step reads no weight or gradient twice; a
/// gradient the optimiser did not measure gets one fused pass at the end of the step. Histograms, when kept, come from
/// the <see cref="HistogramCollector"/>.
/// </summary>
internal sealed class ParameterCollector(MonitorContext context, HistogramCollector? histograms) : IMonitorCollector
{
    private readonly HistogramCollector? _histograms = histograms;
    private readonly double?[] _updateSquares = new double?[context.Params.Length];
    private readonly UpdateStats?[] _measured = new UpdateStats?[context.Params.Length];
    private readonly LayerSums[] _layerAcc = new LayerSums[context.LayerNames.Length]; // a step's per-layer sums (reused)
    // Each layer's histogram counts, summed over its parameters at full width (negative then positive; reused): the
    // record's layer histogram is made once from them, in the compact form.
    private readonly long[] _layerHist = new long[context.LayerNames.Length * 2 * Log2Histogram.BucketCount];
    private readonly long[] _layerHistZero = new long[context.LayerNames.Length * 2];
    private double? _clipBefore, _clipAfter;

    private struct LayerSums
    {
        public StatsAccumulator Acc;
        public bool HasHist;
        public double ParamSq;
        public double? UpdateSq;
    }

    public MonitorEvents Events => MonitorEvents.ParameterUpdated;

    /// <summary>Adds the squared norm of an update an optimiser applied to watched parameter <paramref name="index"/>.</summary>
    public void ObserveUpdate(int index, double updateSquaredNorm) => _updateSquares[index] = (_updateSquares[index] ?? 0) + updateSquaredNorm;

    /// <summary>The global gradient norm a clipper saw, and the norm after clipping.</summary>
    public void ObserveClip(double totalNorm, double clippedNorm) => (_clipBefore, _clipAfter) = (totalNorm, clippedNorm);

    public void OnParameterUpdated(int index, in ParameterUpdate update)
    {
        ObserveUpdate(index, update.Stats.UpdateSumSq);
        // The update pass also measured the gradient and the weights: Complete then needs no pass of its own.
        if (ReferenceEquals(update.Grad, update.Param.Grad)) _measured[index] = update.Stats;
    }

    public void Complete(StepRecordBuilder record)
    {
        // Per-layer sums in arrays indexed by the layer's slot (fixed at attach): after a training step has pushed the
        // monitor's own objects out of cache, a dictionary keyed by name costs a miss per probe.
        var ps = context.Params;
        var parameters = new ParameterStats[ps.Length];
        var layerAcc = _layerAcc;
        Array.Clear(layerAcc);
        const int width = 2 * Log2Histogram.BucketCount;
        var global = new StatsAccumulator();
        for (int i = 0; i < ps.Length; i++)
        {
            var (name, layer, p) = ps[i];
            ref var la = ref layerAcc[context.LayerOf[i]];
            TensorStats? gradStats = null;
            if (p.Grad is { } g)
            {
                if (p.GradCarriedOver) record.GradientsCarriedOver++;
                var (acc, hist) = GradientStatistics(i, g);
                gradStats = TensorStats.From(acc, hist);
                Merge(ref la.Acc, acc);
                Merge(ref global, acc);
                if (hist is not null)
                {
                    int l = context.LayerOf[i];
                    if (!la.HasHist)
                    {
                        Array.Clear(_layerHist, l * width, width);
                        _layerHistZero[2 * l] = _layerHistZero[2 * l + 1] = 0;
                        la.HasHist = true;
                    }
                    hist.AddTo(_layerHist.AsSpan(l * width, width));
                    _layerHistZero[2 * l] += hist.Zero;
                    _layerHistZero[2 * l + 1] += hist.NonFinite;
                }
            }
            // After the step: the optimiser's pass summed the new parameter's squares.
            double paramNorm = _measured[i] is { } m ? Math.Sqrt(m.ParamSumSq) : ParamNorm(p);
            la.ParamSq += paramNorm * paramNorm;
            if (_updateSquares[i] is { } u) la.UpdateSq = (la.UpdateSq ?? 0) + u;
            parameters[i] = new ParameterStats(name, layer, gradStats, paramNorm, _updateSquares[i] is { } uu ? Math.Sqrt(uu) : null);
        }
        var layers = new LayerGradientStats[context.LayerNames.Length];
        for (int l = 0; l < layers.Length; l++)
        {
            ref var la = ref layerAcc[l];
            string name = context.LayerNames[l];
            var hist = la.HasHist ? Log2Histogram.FromCounts(_layerHist.AsSpan(l * width, width), _layerHistZero[2 * l], _layerHistZero[2 * l + 1]) : null;
            layers[l] = new LayerGradientStats(name, context.DepthOf(name), TensorStats.From(la.Acc, hist),
                Math.Sqrt(la.ParamSq), la.UpdateSq is { } u ? Math.Sqrt(u) : null);
        }
        MonitorContext.SortByDepth(layers, static l => l.Depth);
        record.Parameters = parameters;
        record.Layers = layers;
        record.GlobalGradNorm = _clipBefore ?? Math.Sqrt(global.SumSquares + (global.NaNs + global.Infs > 0 ? double.NaN : 0));
        record.ClippedGradNorm = _clipAfter;
    }

    public void Reset()
    {
        Array.Clear(_updateSquares);
        Array.Clear(_measured);
        _clipBefore = _clipAfter = null;
    }

    /// <summary>
    /// A gradient's statistics: taken from the optimiser's update pass when it measured them (no pass here), else one
    /// fused pass, which also counts the histogram when every value is counted.
    /// </summary>
    private (StatsAccumulator Acc, Log2Histogram? Hist) GradientStatistics(int index, Tensor g)
    {
        var acc = new StatsAccumulator();
        var histograms = context.Detailed ? _histograms : null; // histograms are details (MonitorOptions.DetailEvery)
        if (_measured[index] is { } m && g.IsContiguous)
        {
            acc.Count = g.NumEl; acc.SumSquares = m.GradSumSq; acc.SumAbs = m.GradSumAbs; acc.MaxAbs = m.GradMaxAbs;
            acc.Zeros = m.GradZeros; acc.NaNs = m.GradNaNs; acc.Infs = m.GradInfs;
            return (acc, histograms?.Histogram(index, g));
        }
        if (histograms is null || histograms.CountsEveryValue(g))
        {
            var full = TensorStats.Accumulate(g, ref acc, histograms is not null); // before the tuple copies acc
            return (acc, full);
        }
        TensorStats.Accumulate(g, ref acc, histogram: false);
        return (acc, histograms.Histogram(index, g));
    }

    // Sum of squares straight off the span (the tensor op Norm allocated a result tensor per parameter per step).
    private static double ParamNorm(Tensor p) =>
        p.DType == DType.Float32 && p.IsContiguous ? Math.Sqrt(ActivationKernels.Moments(p.Span<float>()).SumSquares) : p.Norm().Item();

    private static void Merge(ref StatsAccumulator into, in StatsAccumulator from)
    {
        into.Count += from.Count; into.SumSquares += from.SumSquares; into.SumAbs += from.SumAbs;
        into.MaxAbs = Math.Max(into.MaxAbs, from.MaxAbs); into.Zeros += from.Zeros; into.NaNs += from.NaNs; into.Infs += from.Infs;
    }
}
