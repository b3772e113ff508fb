using GradFlow.Kernels;
using GradFlow.Optim;

namespace GradFlow.Diagnostics;

/// <summary>
/// The log2 histograms of the parameters' gradients, within a per-step budget of counted values
/// (<see cref="MonitorOptions.HistogramSampleSize"/>): counted right after the optimiser's update pass over each
/// gradient, while it is still in cache, or at the end of the step for a gradient the optimiser did not measure. The
/// <see cref="ParameterCollector"/> asks for them as it builds each parameter's statistics.
/// </summary>
internal sealed class HistogramCollector(MonitorContext context) : IMonitorCollector
{
    private readonly Log2Histogram?[] _early = new Log2Histogram?[context.Params.Length];
    private double _share; // this step's fraction of each gradient to histogram; 0: all of it
    private bool _shareKnown;

    public MonitorEvents Events => MonitorEvents.ParameterUpdated;

    public bool Detail => true;

    public void OnParameterUpdated(int index, in ParameterUpdate update)
    {
        // Count the histogram now: the update pass has just streamed this gradient, so its sampled runs are still in
        // cache; at the end of the step the later parameters' passes would have pushed them out (mlp: 22 MB of weights,
        // gradients and momentum), and each spread run would be a trip to memory.
        var g = update.Grad;
        if (ReferenceEquals(g, update.Param.Grad) && g.DType == DType.Float32 && g.IsContiguous) _early[index] = FloatHistogram(g, SampleFor(g));
    }

    /// <summary>
    /// True when <paramref name="g"/>'s histogram counts every value, so a pass measuring its statistics anyway can
    /// count it in the same pass (<see cref="TensorStats.Accumulate"/>) instead of asking <see cref="Histogram"/>.
    /// </summary>
    public bool CountsEveryValue(Tensor g) => g.DType != DType.Float32 || SampleFor(g) == 0;

    /// <summary>Parameter <paramref name="index"/>'s gradient histogram: the one counted after its update, or counted now.</summary>
    public Log2Histogram Histogram(int index, Tensor g)
    {
        if (_early[index] is { } early) return early;
        if (g.DType == DType.Float32) return FloatHistogram(g, SampleFor(g));
        var unused = new StatsAccumulator();
        return TensorStats.Accumulate(g, ref unused, histogram: true)!;
    }

    public void Reset()
    {
        Array.Clear(_early);
        _shareKnown = false;
    }

    // How many values of g to count (0: all): the step's budget split over the gradients in proportion to their sizes.
    private int SampleFor(Tensor g)
    {
        if (!_shareKnown)
        {
            long withGrad = 0;
            foreach (var q in context.Params) if (q.Param.Grad is { } qg) withGrad += qg.NumEl;
            int budget = context.Options.HistogramSampleSize;
            _share = budget == 0 || withGrad <= budget ? 0 : (double)budget / withGrad;
            _shareKnown = true;
        }
        int sample = _share == 0 ? 0 : Math.Max(256, (int)(g.NumEl * _share));
        return sample < g.NumEl ? sample : 0;
    }

    [System.Runtime.CompilerServices.SkipLocalsInit] // raw is cleared once, below
    private static Log2Histogram FloatHistogram(Tensor g, int sample)
    {
        Span<long> raw = stackalloc long[Statistics.FloatRawBins];
        raw.Clear();
        var span = g.ContiguousRaw().Span<float>();
        long counted = Statistics.Histogram(span, raw, sample, out long zeros);
        var hist = Log2Histogram.FromFloatBins(raw, zeros);
        hist.Scale((double)span.Length / Math.Max(counted, 1));
        return hist;
    }
}
