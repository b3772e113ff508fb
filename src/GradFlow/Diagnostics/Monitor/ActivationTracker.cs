using GradFlow.Kernels;

namespace GradFlow.Diagnostics;

/// <summary>
/// Accumulates one activation op's health over a step (every training forward of the step) and
/// keeps the per-unit dead streaks that make the sliding-window figure. What counts as a unit, as dead or as
/// saturated is the <see cref="ActivationPolicy"/>'s.
/// </summary>
internal sealed class ActivationTracker(string layer, string op, int depth, ActivationKind kind, ActivationPolicy policy)
{
    private readonly bool _rectifier = kind == ActivationKind.Rectifier;
    private float[] _unitMax = [];
    private int[] _deadStreak = [];
    private double _sum, _sumSquares;
    private long _count, _saturated;
    private int _units;

    public string Layer { get; } = layer;
    public string Op { get; } = op;
    public int Depth { get; } = depth;
    public bool SeenThisStep { get; private set; }

    /// <summary>Adds one forward's output; <paramref name="measured"/>: its sums as its kernel took them, if it did.</summary>
    public void Observe(Tensor output, ActivationMeasure? measured = null)
    {
        if (output.DType != DType.Float32 || output.NumEl == 0) return;
        var contiguous = output.ContiguousRaw();
        float[] data = contiguous.Data<float>();
        int offset = contiguous.Offset, length = contiguous.NumEl;
        var (outer, units, inner) = ActivationPolicy.UnitLayout(output);
        _units = units;
        if (_rectifier && (!SeenThisStep || _unitMax.Length != units))
        {
            if (_unitMax.Length != units) { _unitMax = new float[units]; _deadStreak = new int[units]; }
            Array.Fill(_unitMax, float.NegativeInfinity);
        }
        SeenThisStep = true;
        _count += length;
        if (_rectifier)
        {
            if (measured is { UnitMax: { } max } r && ReferenceEquals(r.Output, output) && r.Request == ActivationRequest.UnitMaxima(outer, units, inner))
            {
                for (int u = 0; u < units; u++) _unitMax[u] = MathF.Max(_unitMax[u], max[u]);
                _sum += r.Sum; _sumSquares += r.SumSquares;
                return;
            }
            var (s, q) = StatisticsParallel.UnitMaxAndMoments(data, offset, outer, units, inner, _unitMax);
            _sum += s; _sumSquares += q;
            return;
        }
        var (lo, hi) = policy.SaturationBand(Op);
        var (sum, sumSq, outside) = measured is { } m && ReferenceEquals(m.Output, output) && m.Request == ActivationRequest.Band(lo, hi)
            ? (m.Sum, m.SumSquares, m.Outside)
            : StatisticsParallel.MomentsAndOutside(data, offset, length, lo, hi);
        _sum += sum; _sumSquares += sumSq; _saturated += outside;
    }

    /// <summary>Closes the step: the statistics, and the trackers reset for the next step.</summary>
    public ActivationStats Finish(int window)
    {
        double mean = _count == 0 ? 0 : _sum / _count;
        double variance = _count == 0 ? 0 : Math.Max(0, _sumSquares / _count - mean * mean);
        double? dead = null, deadWindow = null, saturated = null;
        if (_rectifier && _unitMax.Length > 0)
        {
            int deadNow = 0, deadLong = 0;
            for (int u = 0; u < _unitMax.Length; u++)
            {
                bool isDead = !(_unitMax[u] > 0);
                _deadStreak[u] = isDead ? _deadStreak[u] + 1 : 0;
                if (isDead) deadNow++;
                if (_deadStreak[u] >= window) deadLong++;
            }
            dead = (double)deadNow / _unitMax.Length;
            deadWindow = (double)deadLong / _unitMax.Length;
        }
        else if (!_rectifier) saturated = _count == 0 ? 0 : (double)_saturated / _count;
        var stats = new ActivationStats(Layer, Op, Depth, _units, dead, deadWindow, saturated, mean, Math.Sqrt(variance));
        _sum = _sumSquares = 0; _count = _saturated = 0;
        SeenThisStep = false;
        return stats;
    }
}
