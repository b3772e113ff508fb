using System.Runtime.InteropServices;

namespace GradFlow.Distributed.Native;

/// <summary>
/// Open MPI 4.x (libmpi.so.40), the only file that knows its ABI: every handle is a pointer; MPI_COMM_WORLD,
/// the datatypes and the ops are the addresses of exported globals (<c>ompi_mpi_comm_world</c>,
/// <c>ompi_mpi_float</c>, <c>ompi_mpi_op_sum</c>, ...); MPI_IN_PLACE is <c>(void*)1</c> and MPI_STATUS_IGNORE null.
/// (MPICH differs in all of these: int handles with fixed values such as 0x44000000 for MPI_COMM_WORLD,
/// MPI_IN_PLACE <c>(void*)-1</c>, MPI_STATUS_IGNORE <c>(MPI_Status*)1</c>.)
/// </summary>
internal sealed unsafe class OpenMpiBinding : MpiBinding
{
    public const string LibraryName = "libmpi.so.40";
    public const string CommWorldExport = "ompi_mpi_comm_world";
    private const int MaxErrorString = 256;

    private readonly string _library;
    private readonly nint _commWorld, _requestNull;
    private readonly nint[] _types, _ops;

    private readonly delegate* unmanaged<int*, int> _initialized, _finalized;
    private readonly delegate* unmanaged<int*, byte***, int, int*, int> _initThread;
    private readonly delegate* unmanaged<int> _finalize;
    private readonly delegate* unmanaged<nint, int*, int> _commRank, _commSize;
    private readonly delegate* unmanaged<void*, void*, int, nint, nint, nint, int> _allreduce;
    private readonly delegate* unmanaged<void*, void*, int, nint, nint, nint, nint*, int> _iallreduce;
    private readonly delegate* unmanaged<nint*, void*, int> _wait;
    private readonly delegate* unmanaged<nint*, int*, void*, int> _test;
    private readonly delegate* unmanaged<void*, int, nint, int, nint, int> _bcast;
    private readonly delegate* unmanaged<nint, int> _barrier;
    private readonly delegate* unmanaged<void*, int, nint, void*, int, nint, nint, int> _allgather;
    private readonly delegate* unmanaged<void*, int, nint, void*, int*, int*, nint, nint, int> _allgatherv;
    private readonly delegate* unmanaged<nint, int, int> _abort;
    private readonly delegate* unmanaged<int, byte*, int*, int> _errorString;
    private readonly nint _commNull, _infoNull;
    private readonly delegate* unmanaged<nint, int, int, nint, nint*, int> _commSplitType;
    private readonly delegate* unmanaged<nint, int, int, nint*, int> _commSplit;
    private readonly delegate* unmanaged<nint*, int> _commFree, _winFree;
    private readonly delegate* unmanaged<nint, int, nint, nint, void**, nint*, int> _winAllocateShared;
    private readonly delegate* unmanaged<nint, int, nint*, int*, void**, int> _winSharedQuery;
    private readonly delegate* unmanaged<int, nint, int> _winLockAll;
    private readonly delegate* unmanaged<nint, int> _winUnlockAll, _winSync;

    public OpenMpiBinding(nint library, string name)
    {
        _library = name;
        nint Export(string symbol) => NativeLibrary.TryGetExport(library, symbol, out nint address)
            ? address
            : throw new EntryPointNotFoundException($"GradFlow.Distributed: {name} does not export {symbol} (Open MPI 4.x expected).");
        _commWorld = Export(CommWorldExport);
        _requestNull = Export("ompi_request_null");
        // In MpiType order: Byte, Int32, Int64, Float32, Float64.
        _types = [Export("ompi_mpi_byte"), Export("ompi_mpi_int"), Export("ompi_mpi_int64_t"), Export("ompi_mpi_float"), Export("ompi_mpi_double")];
        // In MpiOp order: Sum, Max, Min.
        _ops = [Export("ompi_mpi_op_sum"), Export("ompi_mpi_op_max"), Export("ompi_mpi_op_min")];
        _initialized = (delegate* unmanaged<int*, int>)Export("MPI_Initialized");
        _finalized = (delegate* unmanaged<int*, int>)Export("MPI_Finalized");
        _initThread = (delegate* unmanaged<int*, byte***, int, int*, int>)Export("MPI_Init_thread");
        _finalize = (delegate* unmanaged<int>)Export("MPI_Finalize");
        _commRank = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_rank");
        _commSize = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_size");
        _allreduce = (delegate* unmanaged<void*, void*, int, nint, nint, nint, int>)Export("MPI_Allreduce");
        _iallreduce = (delegate* unmanaged<void*, void*, int, nint, nint, nint, nint*, int>)Export("MPI_Iallreduce");
        _wait = (delegate* unmanaged<nint*, void*, int>)Export("MPI_Wait");
        _test = (delegate* unmanaged<nint*, int*, void*, int>)Export("MPI_Test");
        _bcast = (delegate* unmanaged<void*, int, nint, int, nint, int>)Export("MPI_Bcast");
        _barrier = (delegate* unmanaged<nint, int>)Export("MPI_Barrier");
        _allgather = (delegate* unmanaged<void*, int, nint, void*, int, nint, nint, int>)Export("MPI_Allgather");
        _allgatherv = (delegate* unmanaged<void*, int, nint, void*, int*, int*, nint, nint, int>)Export("MPI_Allgatherv");
        _abort = (delegate* unmanaged<nint, int, int>)Export("MPI_Abort");
        _errorString = (delegate* unmanaged<int, byte*, int*, int>)Export("MPI_Error_string");
        _commNull = Export("ompi_mpi_comm_null");
        _infoNull = Export("ompi_mpi_info_null");
        _commSplitType = (delegate* unmanaged<nint, int, int, nint, nint*, int>)Export("MPI_Comm_split_type");
        _commSplit = (delegate* unmanaged<nint, int, int, nint*, int>)Export("MPI_Comm_split");
        _commFree = (delegate* unmanaged<nint*, int>)Export("MPI_Comm_free");
        _winFree = (delegate* unmanaged<nint*, int>)Export("MPI_Win_free");
        _winAllocateShared = (delegate* unmanaged<nint, int, nint, nint, void**, nint*, int>)Export("MPI_Win_allocate_shared");
        _winSharedQuery = (delegate* unmanaged<nint, int, nint*, int*, void**, int>)Export("MPI_Win_shared_query");
        _winLockAll = (delegate* unmanaged<int, nint, int>)Export("MPI_Win_lock_all");
        _winUnlockAll = (delegate* unmanaged<nint, int>)Export("MPI_Win_unlock_all");
        _winSync = (delegate* unmanaged<nint, int>)Export("MPI_Win_sync");
    }

    public override string Name => $"Open MPI ({_library})";
    public override string LocalSizeVariable => "OMPI_COMM_WORLD_LOCAL_SIZE"; // MPICH's Hydra says MPI_LOCALNRANKS
    public override nint CommWorld => _commWorld;
    public override nint RequestNull => _requestNull;

    // MPI_IN_PLACE: a send buffer equal to the receive buffer means in place (MPI forbids aliasing them otherwise).
    private static void* Send(void* send, void* receive) => send == receive ? (void*)1 : send;

    public override int Initialized(out bool initialized)
    {
        int flag;
        int rc = _initialized(&flag);
        initialized = flag != 0;
        return rc;
    }

    public override int Finalized(out bool finalized)
    {
        int flag;
        int rc = _finalized(&flag);
        finalized = flag != 0;
        return rc;
    }

    public override int InitThread(int required, out int provided)
    {
        int p;
        int rc = _initThread(null, null, required, &p);
        provided = p;
        return rc;
    }

    public override int Finalize() => _finalize();

    public override int CommRank(nint comm, out int rank)
    {
        int r;
        int rc = _commRank(comm, &r);
        rank = r;
        return rc;
    }

    public override int CommSize(nint comm, out int size)
    {
        int s;
        int rc = _commSize(comm, &s);
        size = s;
        return rc;
    }

    public override int Allreduce(void* send, void* receive, int count, MpiType type, MpiOp op, nint comm) =>
        _allreduce(Send(send, receive), receive, count, _types[(int)type], _ops[(int)op], comm);

    public override int Iallreduce(void* send, void* receive, int count, MpiType type, MpiOp op, nint comm, out nint request)
    {
        nint r;
        int rc = _iallreduce(Send(send, receive), receive, count, _types[(int)type], _ops[(int)op], comm, &r);
        request = r;
        return rc;
    }

    public override int Wait(ref nint request)
    {
        nint r = request;
        int rc = _wait(&r, null);
        request = r;
        return rc;
    }

    public override int Test(ref nint request, out bool done)
    {
        nint r = request;
        int flag;
        int rc = _test(&r, &flag, null);
        request = r;
        done = flag != 0;
        return rc;
    }

    public override int Bcast(void* buffer, int count, MpiType type, int root, nint comm) => _bcast(buffer, count, _types[(int)type], root, comm);

    public override int Barrier(nint comm) => _barrier(comm);

    public override int Allgather(void* send, int sendCount, MpiType sendType, void* receive, int receiveCount, MpiType receiveType, nint comm) =>
        _allgather(send, sendCount, _types[(int)sendType], receive, receiveCount, _types[(int)receiveType], comm);

    public override int Allgatherv(void* send, int sendCount, MpiType sendType, void* receive, int* receiveCounts, int* displacements, MpiType receiveType, nint comm) =>
        _allgatherv(send, sendCount, _types[(int)sendType], receive, receiveCounts, displacements, _types[(int)receiveType], comm);

    public override int Abort(nint comm, int errorCode) => _abort(comm, errorCode);

    private const int CommTypeShared = 0;  // MPI_COMM_TYPE_SHARED, the first of Open MPI's split types (MPICH: 1)
    private const int Undefined = -32766;  // MPI_UNDEFINED (MPICH: -32766 as well)
    private const int ModeNoCheck = 1;     // MPI_MODE_NOCHECK (MPICH: 1024)

    public override nint CommNull => _commNull;

    public override int CommSplitShared(nint comm, int key, out nint node)
    {
        nint n;
        int rc = _commSplitType(comm, CommTypeShared, key, _infoNull, &n);
        node = n;
        return rc;
    }

    public override int CommSplit(nint comm, int color, int key, out nint result)
    {
        nint n;
        int rc = _commSplit(comm, color < 0 ? Undefined : color, key, &n);
        result = n;
        return rc;
    }

    public override int CommFree(ref nint comm)
    {
        nint c = comm;
        int rc = _commFree(&c);
        comm = c;
        return rc;
    }

    // MPI_Aint is ptrdiff_t in Open MPI: nint on 64-bit Linux. disp_unit 1: offsets are in bytes.
    public override int WinAllocateShared(long bytes, nint comm, out void* baseAddress, out nint window)
    {
        void* b;
        nint w;
        int rc = _winAllocateShared((nint)bytes, 1, _infoNull, comm, &b, &w);
        baseAddress = b;
        window = w;
        return rc;
    }

    public override int WinSharedQuery(nint window, int rank, out long bytes, out void* baseAddress)
    {
        nint size;
        int unit;
        void* b;
        int rc = _winSharedQuery(window, rank, &size, &unit, &b);
        bytes = size;
        baseAddress = b;
        return rc;
    }

    public override int WinLockAll(nint window) => _winLockAll(ModeNoCheck, window);
    public override int WinUnlockAll(nint window) => _winUnlockAll(window);
    public override int WinSync(nint window) => _winSync(window);

    public override int WinFree(ref nint window)
    {
        nint w = window;
        int rc = _winFree(&w);
        window = w;
        return rc;
    }

    public override string ErrorString(int code)
    {
        byte* text = stackalloc byte[MaxErrorString + 1];
        int length;
        if (_errorString(code, text, &length) != 0) return $"MPI error {code}";
        return System.Text.Encoding.ASCII.GetString(text, Math.Clamp(length, 0, MaxErrorString));
    }
}
