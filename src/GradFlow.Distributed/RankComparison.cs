using GradFlow.Diagnostics;

namespace GradFlow.Distributed;

/// <summary>
/// Compares the ranks' gradients at each synchronised step. Each rank measures its own gradients as they go into the
/// buckets (squared norm over the finite values and the NaN/Inf count per parameter, in the same pass as the copy); one
/// small allreduce of a rank-by-parameter table, each rank filling only its own row, then gives every rank every
/// rank's figures (x + 0 is exact, so each cell arrives as its rank measured it, NaN and Inf included).
/// </summary>
internal sealed class RankComparison
{
    private readonly Communicator _comm;
    private readonly string[] _names;
    private readonly double _factor;
    private readonly double[] _squares;
    private readonly long[] _nonFinite;
    private readonly double[] _table; // Size rows of [squares per parameter, non-finite counts per parameter]
    private NonFiniteOrigin? _first;

    public RankComparison(Communicator comm, string[] names, double divergenceFactor)
    {
        _comm = comm;
        _names = names;
        _factor = divergenceFactor;
        _squares = new double[names.Length];
        _nonFinite = new long[names.Length];
        _table = new double[(long)comm.Size * 2 * names.Length <= Array.MaxLength ? comm.Size * 2 * names.Length
            : throw new ArgumentException($"DistributedDataParallel: comparing {names.Length} parameters across {comm.Size} ranks needs too large a table; set WatchRanks = false.")];
    }

    /// <summary>This rank's figures for parameter <paramref name="index"/> in this step.</summary>
    public void Local(int index, double squares, long nonFinite)
    {
        _squares[index] = squares;
        _nonFinite[index] = nonFinite;
    }

    /// <summary>
    /// Exchanges the step's figures (collective) and judges them. <paramref name="backwardOrder"/> lists the parameters
    /// in the order their gradients were sent, the order "first non-finite parameter" is judged in.
    /// </summary>
    public DistributedGradientStats Compare(long step, double globalNorm, int[] backwardOrder)
    {
        int p = _names.Length, size = _comm.Size;
        Array.Clear(_table);
        int row = _comm.Rank * 2 * p;
        for (int i = 0; i < p; i++)
        {
            _table[row + i] = _squares[i];
            _table[row + p + i] = _nonFinite[i];
        }
        _comm.Allreduce(_table.AsSpan(), ReduceOp.Sum);

        var ranks = new RankGradientStats[size];
        for (int r = 0; r < size; r++)
        {
            var norms = new double[p];
            var counts = new long[p];
            double total = 0;
            long bad = 0;
            for (int i = 0; i < p; i++)
            {
                double sq = _table[r * 2 * p + i];
                norms[i] = Math.Sqrt(sq);
                counts[i] = (long)_table[r * 2 * p + p + i];
                total += sq;
                bad += counts[i];
            }
            ranks[r] = new RankGradientStats(r, Math.Sqrt(total), bad, norms, counts);
        }
        if (_first is null) _first = FirstNonFinite(step, ranks, backwardOrder);
        return new DistributedGradientStats(size, globalNorm, _names, ranks, Divergent(ranks), _factor, _first);
    }

    private NonFiniteOrigin? FirstNonFinite(long step, RankGradientStats[] ranks, int[] backwardOrder)
    {
        var bad = ranks.Where(r => r.NonFinite > 0).Select(r => r.Rank).ToArray();
        if (bad.Length == 0) return null;
        var first = ranks[bad[0]];
        int parameter = backwardOrder.First(i => first.ParameterNonFinite[i] > 0);
        return new NonFiniteOrigin(step, first.Rank, _names[parameter], bad);
    }

    // A rank is divergent when its norm is more than the factor above or below the typical rank's: the median of all
    // ranks' norms, which one stray rank cannot drag towards itself (a mean of 2 ranks and 100x on one would be 50x
    // off for the healthy one too). With two ranks the median is their mean and can never be a factor 2 away, so each
    // is compared with the other and both are named: two numbers cannot tell which one strayed.
    private int[] Divergent(RankGradientStats[] ranks)
    {
        var norms = ranks.Select(r => r.GradNorm).Where(double.IsFinite).Order().ToArray();
        if (norms.Length < 2) return [];
        var result = new List<int>();
        foreach (var r in ranks)
        {
            if (!double.IsFinite(r.GradNorm)) continue;
            double reference = norms.Length == 2 ? (norms[0] == r.GradNorm ? norms[1] : norms[0])
                : norms.Length % 2 == 1 ? norms[norms.Length / 2] : (norms[norms.Length / 2 - 1] + norms[norms.Length / 2]) / 2;
            if (reference == 0 && r.GradNorm == 0) continue;
            if (r.GradNorm > _factor * reference || r.GradNorm * _factor < reference) result.Add(r.Rank);
        }
        return [.. result];
    }
}
