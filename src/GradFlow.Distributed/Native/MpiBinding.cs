using System.Runtime.InteropServices;

namespace GradFlow.Distributed.Native;

/// <summary>The element types GradFlow sends through MPI.</summary>
internal enum MpiType
{
    Byte,
    Int32,
    Int64,
    Float32,
    Float64,
}

/// <summary>The reductions GradFlow asks of MPI.</summary>
internal enum MpiOp
{
    Sum,
    Max,
    Min,
}

/// <summary>
/// The MPI calls GradFlow uses, with every handle (communicator, request) widened to <see cref="nint"/>. What differs
/// between MPI implementations (the library's file name, whether a handle is a pointer or an int, the exported names
/// of MPI_COMM_WORLD and MPI_FLOAT, MPI_IN_PLACE, MPI_STATUS_IGNORE) lives in one subclass per implementation:
/// <see cref="OpenMpiBinding"/> today; MPICH's would be a sibling chosen by <see cref="Load"/>.
/// Every method returns MPI's error code (0 is MPI_SUCCESS); <see cref="Communicator"/> turns others into exceptions.
/// </summary>
internal abstract unsafe class MpiBinding
{
    /// <summary>Environment variable naming another libmpi to load (a full path, or a name the loader finds).</summary>
    public const string LibraryVariable = "GRADFLOW_MPI_LIBRARY";

    /// <summary>A short name of the implementation ("Open MPI 4.x").</summary>
    public abstract string Name { get; }

    /// <summary>The environment variable in which the launcher tells each rank how many ranks run on its machine.</summary>
    public abstract string LocalSizeVariable { get; }

    /// <summary>MPI_COMM_WORLD.</summary>
    public abstract nint CommWorld { get; }

    /// <summary>MPI_REQUEST_NULL, what a completed request reads as.</summary>
    public abstract nint RequestNull { get; }

    public abstract int Initialized(out bool initialized);
    public abstract int Finalized(out bool finalized);
    public abstract int InitThread(int required, out int provided);
    public abstract int Finalize();
    public abstract int CommRank(nint comm, out int rank);
    public abstract int CommSize(nint comm, out int size);
    public abstract int Allreduce(void* send, void* receive, int count, MpiType type, MpiOp op, nint comm);
    public abstract int Iallreduce(void* send, void* receive, int count, MpiType type, MpiOp op, nint comm, out nint request);
    public abstract int Wait(ref nint request);
    public abstract int Test(ref nint request, out bool done);
    public abstract int Bcast(void* buffer, int count, MpiType type, int root, nint comm);
    public abstract int Barrier(nint comm);
    public abstract int Allgather(void* send, int sendCount, MpiType sendType, void* receive, int receiveCount, MpiType receiveType, nint comm);
    public abstract int Allgatherv(void* send, int sendCount, MpiType sendType, void* receive, int* receiveCounts, int* displacements, MpiType receiveType, nint comm);
    public abstract int Abort(nint comm, int errorCode);

    // Node-local shared memory (MPI-3): the ranks on one machine, and a window each of them can load from and store to.
    /// <summary>MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, key, MPI_INFO_NULL): the ranks that share this machine's memory.</summary>
    public abstract int CommSplitShared(nint comm, int key, out nint node);
    /// <summary>MPI_Comm_split; a negative <paramref name="color"/> means MPI_UNDEFINED (the result is MPI_COMM_NULL).</summary>
    public abstract int CommSplit(nint comm, int color, int key, out nint result);
    public abstract int CommFree(ref nint comm);
    /// <summary>MPI_COMM_NULL.</summary>
    public abstract nint CommNull { get; }
    public abstract int WinAllocateShared(long bytes, nint comm, out void* baseAddress, out nint window);
    public abstract int WinSharedQuery(nint window, int rank, out long bytes, out void* baseAddress);
    /// <summary>MPI_Win_lock_all(MPI_MODE_NOCHECK): one passive-target epoch for the window's lifetime, inside which loads and stores are synchronised by <see cref="WinSync"/> and barriers.</summary>
    public abstract int WinLockAll(nint window);
    public abstract int WinUnlockAll(nint window);
    public abstract int WinSync(nint window);
    public abstract int WinFree(ref nint window);
    public abstract string ErrorString(int code);

    /// <summary>
    /// Loads the MPI library: <see cref="LibraryVariable"/> if set, else Open MPI's libmpi.so.40. Throws
    /// <see cref="DllNotFoundException"/> naming the library and the Debian packages that provide it.
    /// </summary>
    public static MpiBinding Load()
    {
        string? requested = Environment.GetEnvironmentVariable(LibraryVariable);
        string name = string.IsNullOrEmpty(requested) ? OpenMpiBinding.LibraryName : requested;
        if (!NativeLibrary.TryLoad(name, typeof(MpiBinding).Assembly, null, out nint handle))
            throw new DllNotFoundException(
                $"GradFlow.Distributed: could not load the MPI library '{name}'. It needs Open MPI 4.x: on Debian or Ubuntu, " +
                $"`apt-get install openmpi-bin libopenmpi-dev` (libmpi.so.40 is in libopenmpi3); or set {LibraryVariable} to the path of libmpi.so.40.");
        if (!NativeLibrary.TryGetExport(handle, OpenMpiBinding.CommWorldExport, out _))
            throw new DllNotFoundException(
                $"GradFlow.Distributed: '{name}' loaded but does not export {OpenMpiBinding.CommWorldExport}: only Open MPI is bound so far " +
                "(MPICH's handles are integers and need a binding of their own beside OpenMpiBinding).");
        return new OpenMpiBinding(handle, name);
    }
}
