using System.Numerics;
using System.Runtime.InteropServices;

namespace GradFlow.Distributed;

/// <summary>
/// Brings the model's buffers into agreement across ranks (<see cref="BufferSync"/>): each dtype's buffers are copied into
/// one flat array, so a step costs at most one collective per dtype whatever the number of layers, and nothing is
/// allocated after construction. A buffer whose bits did not change is not rewritten, so its version stays and a
/// backward that saved it (BatchNorm in eval mode saves running_var) is not invalidated.
/// </summary>
internal sealed class BufferSynchronizer
{
    private readonly Communicator _comm;
    private readonly BufferSync _mode;
    private readonly Tensor[] _floats, _doubles, _words; // int64 and bool (stored as 0/1 words) travel as longs
    private readonly float[] _floatData;
    private readonly double[] _doubleData;
    private readonly long[] _wordData;

    public BufferSynchronizer(Communicator comm, BufferSync mode, IReadOnlyList<(string Name, Tensor Buffer)> buffers)
    {
        _comm = comm;
        _mode = mode;
        foreach (var (name, b) in buffers)
            if (!b.IsContiguous)
                throw new ArgumentException($"DistributedDataParallel: buffer '{name}' of shape {b.Shape} is not contiguous and cannot be sent through MPI.", nameof(buffers));
        _floats = buffers.Select(b => b.Buffer).Where(b => b.DType == DType.Float32).ToArray();
        _doubles = buffers.Select(b => b.Buffer).Where(b => b.DType == DType.Float64).ToArray();
        _words = buffers.Select(b => b.Buffer).Where(b => b.DType is not (DType.Float32 or DType.Float64)).ToArray();
        _floatData = new float[Total(_floats)];
        _doubleData = new double[Total(_doubles)];
        _wordData = new long[Total(_words)];
    }

    /// <summary>True when there is nothing to do (no buffers, one rank, or <see cref="BufferSync.None"/>).</summary>
    public bool Idle => _comm.Size == 1 || _mode == BufferSync.None || _floats.Length + _doubles.Length + _words.Length == 0;

    /// <summary>Collective: every rank calls it at the same point.</summary>
    public void Synchronize()
    {
        if (Idle) return;
        bool average = _mode == BufferSync.Average;
        Exchange(_floats, _floatData, average);
        Exchange(_doubles, _doubleData, average);
        Exchange(_words, _wordData, average: false);
    }

    private void Exchange<T>(Tensor[] buffers, T[] data, bool average) where T : unmanaged, INumber<T>
    {
        if (buffers.Length == 0) return;
        int offset = 0;
        foreach (var b in buffers)
        {
            b.Span<T>().CopyTo(data.AsSpan(offset));
            offset += b.NumEl;
        }
        if (average)
        {
            _comm.Allreduce<T>(data, ReduceOp.Sum);
            // A division, as the gradients' average does: with two ranks (a + b) / 2 is one rounding, the same on every rank.
            T n = T.CreateChecked(_comm.Size);
            for (int i = 0; i < data.Length; i++) data[i] /= n;
        }
        else
        {
            _comm.Broadcast<T>(data);
            if (_comm.IsRoot) return;
        }
        offset = 0;
        foreach (var b in buffers)
        {
            var received = data.AsSpan(offset, b.NumEl);
            offset += b.NumEl;
            var mine = b.Span<T>();
            if (MemoryMarshal.AsBytes(received).SequenceEqual(MemoryMarshal.AsBytes(mine))) continue; // bits: -0 is not +0 here
            received.CopyTo(mine);
            b.BumpVersion();
        }
    }

    private static int Total(Tensor[] buffers)
    {
        long n = buffers.Sum(b => (long)b.NumEl);
        return n <= Array.MaxLength ? (int)n : throw new ArgumentException($"DistributedDataParallel: the model's buffers hold {n} elements, more than one array holds.");
    }
}
