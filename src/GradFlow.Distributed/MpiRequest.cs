using System.Buffers;

namespace GradFlow.Distributed;

/// <summary>A non-blocking collective in flight (<see cref="Communicator.StartAllreduce{T}(Memory{T}, ReduceOp)"/>); its buffer stays pinned until it completes.</summary>
public sealed class MpiRequest
{
    private readonly Communicator _comm;
    private nint _request;
    private MemoryHandle _pin;
    private bool _done;

    internal MpiRequest(Communicator comm, nint request, MemoryHandle pin)
    {
        _comm = comm;
        _request = request;
        _pin = pin;
    }

    /// <summary>True once the collective completed (after <see cref="Wait"/> or a <see cref="Test"/> that said so).</summary>
    public bool IsCompleted => _done;

    /// <summary>Blocks until the collective completed; the buffer holds the result after.</summary>
    public void Wait()
    {
        if (_done) return;
        _comm.Wait(ref _request);
        Complete();
    }

    /// <summary>Lets MPI progress the collective without blocking; true once it completed.</summary>
    public bool Test()
    {
        if (_done) return true;
        if (!_comm.Test(ref _request)) return false;
        Complete();
        return true;
    }

    private void Complete()
    {
        _done = true;
        _pin.Dispose();
    }
}
