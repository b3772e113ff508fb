using System.Globalization;
using System.Text;

namespace GradFlow.Distributed;

/// <summary>
/// Checks at every synchronised backward that all ranks are at the same one: each rank sends a small header (which
/// synchronised backward this is, how many backward passes it ran under NoSync since the previous one, a checksum of the
/// bucket layout, and whether it was asked to stop) in one allgather of four longs, before any gradient is averaged: at
/// the start of backward with MPI's allreduce, or, with the shared window on one machine, as the meeting at which each
/// bucket's segments become readable (the allgather synchronises the ranks as a barrier does, so the step costs no
/// collective of its own). Ranks that disagree on their NoSync scopes meet here at their next synchronised backward with
/// different headers, and every rank throws the same error naming the ranks and their counters, instead of pairing one
/// rank's gradients with another's micro-batch or waiting forever.
/// <para>
/// This holds while every rank runs the same number of backward passes: then the first synchronised backward at which
/// the ranks' counts differ is reached by all of them. A rank that stops calling backward altogether and moves on to
/// another collective meets the others in a different MPI call, which this check cannot see.
/// </para>
/// </summary>
internal sealed class StepAgreement
{
    private const int Fields = 4; // the last, a stop request, may differ: it is combined, not compared
    private readonly Communicator _comm;
    private readonly long _layout;
    private readonly long[] _mine = new long[Fields];
    private readonly long[] _all;

    public StepAgreement(Communicator comm, GradientBucket[] buckets)
    {
        _comm = comm;
        _layout = Checksum(buckets);
        _all = new long[Fields * comm.Size];
    }

    /// <summary>Whether any rank asked to stop, from the latest exchange (the same answer on every rank).</summary>
    public bool AnyStop { get; private set; }

    /// <summary>Sets this rank's header for the next <see cref="Exchange"/>.</summary>
    public void Prepare(long sync, long localPasses, bool stop)
    {
        _mine[0] = sync;
        _mine[1] = localPasses;
        _mine[2] = _layout;
        _mine[3] = stop ? 1 : 0;
    }

    /// <summary>
    /// Collective: throws <see cref="MpiException"/> on every rank when the ranks' headers differ; else returns whether
    /// any rank asked to stop (the same answer on every rank).
    /// </summary>
    public bool Check(long sync, long localPasses, bool stop)
    {
        Prepare(sync, localPasses, stop);
        return Exchange();
    }

    /// <summary>Collective: <see cref="Check"/> with the header of the latest <see cref="Prepare"/>.</summary>
    public bool Exchange()
    {
        if (_comm.Size == 1) return AnyStop = _mine[3] != 0;
        _comm.AllGather<long>(_mine, _all);
        bool anyStop = false;
        for (int r = 0; r < _comm.Size; r++)
        {
            for (int f = 0; f < Fields - 1; f++)
                if (_all[r * Fields + f] != _all[f]) throw new MpiException(Describe(), allRanks: true);
            anyStop |= _all[r * Fields + Fields - 1] != 0;
        }
        return AnyStop = anyStop;
    }

    private string Describe()
    {
        var text = new StringBuilder("DistributedDataParallel: the ranks are not at the same synchronised backward, so their gradients cannot be averaged: ");
        for (int r = 0; r < _comm.Size; r++)
        {
            long sync = _all[r * Fields], local = _all[r * Fields + 1], layout = _all[r * Fields + 2];
            if (r > 0) text.Append(", ");
            text.Append(CultureInfo.InvariantCulture, $"rank {r} at synchronised backward {sync} after {local} backward pass{(local == 1 ? "" : "es")} under NoSync");
            if (layout != _all[2]) text.Append(CultureInfo.InvariantCulture, $" with another bucket layout ({layout:x16}, rank 0 {_all[2]:x16})");
        }
        return text.Append(". Every rank must run the same backward passes with the same NoSync scopes, on the same DistributedDataParallel.").ToString();
    }

    // FNV-1a over each bucket's dtype and element count and each parameter's place: the same model and cap give the same
    // value on every rank; a rank synchronising another model (another DDP instance) gives another.
    private static long Checksum(GradientBucket[] buckets)
    {
        ulong h = 14695981039346656037;
        void Mix(long v)
        {
            h = (h ^ (ulong)v) * 1099511628211;
        }
        Mix(buckets.Length);
        foreach (var b in buckets)
        {
            Mix((long)b.DType);
            Mix(b.Count);
            foreach (int p in b.Parameters) Mix(p);
        }
        return (long)h;
    }
}
