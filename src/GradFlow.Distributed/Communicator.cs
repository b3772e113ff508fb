using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using System.Text;
using GradFlow.Distributed.Native;
using GradFlow.Kernels;

namespace GradFlow.Distributed;

/// <summary>
/// The processes of an MPI job (MPI_COMM_WORLD): this process's <see cref="Rank"/>, the <see cref="Size"/>, and the
/// collectives data-parallel training needs. <see cref="World"/> initialises MPI on first use (MPI_Init_thread,
/// serialized: one thread at a time calls MPI) and finalises it when disposed or at process exit. Collectives must be
/// called by every rank in the same order with the same counts; DistributedDataParallel checks its own
/// before starting them. Started outside mpirun, a process is a job of one (rank 0 of 1), so the same program runs
/// alone or under <c>mpirun -np N dotnet app.dll</c>.
/// </summary>
public sealed unsafe class Communicator : IDisposable
{
    private const int ThreadSerialized = 2; // MPI_THREAD_SERIALIZED, the same value in Open MPI and MPICH
    private static readonly Lock s_lock = new();
    private static Communicator? s_world;

    private readonly MpiBinding _mpi;
    private readonly nint _comm;
    private bool _finalized;
    private long _blocking, _started, _tests, _testsCompleted, _waits, _reducedBytes, _otherBytes;

    private Communicator(MpiBinding mpi, nint comm)
    {
        _mpi = mpi;
        _comm = comm;
        Check(mpi.CommRank(comm, out int rank), "MPI_Comm_rank");
        Check(mpi.CommSize(comm, out int size), "MPI_Comm_size");
        Rank = rank;
        Size = size;
    }

    /// <summary>
    /// MPI_COMM_WORLD, initialising MPI on first use; unless GRADFLOW_NUM_THREADS is set, this rank's kernels then take its
    /// share of the cores it may run on (those cores divided by the ranks on this machine). Throws <see cref="DllNotFoundException"/> naming the library and the
    /// Debian packages when Open MPI is not installed.
    /// </summary>
    public static Communicator World
    {
        get
        {
            lock (s_lock)
            {
                if (s_world is { _finalized: false } w) return w;
                if (s_world is not null) throw new ObjectDisposedException(nameof(Communicator), "MPI was finalised in this process; it cannot start again.");
                var mpi = MpiBinding.Load();
                Check(mpi, mpi.Initialized(out bool initialized), "MPI_Initialized");
                if (!initialized) Check(mpi, mpi.InitThread(ThreadSerialized, out _), "MPI_Init_thread");
                s_world = new Communicator(mpi, mpi.CommWorld);
                ShareCores(mpi);
                // A program that ends normally without disposing still finalises; one that exits with an error code
                // (a rank giving up mid-training) must not: MPI_Finalize would wait for ranks still in a collective.
                AppDomain.CurrentDomain.ProcessExit += (_, _) =>
                {
                    if (Environment.ExitCode == 0) s_world.Dispose();
                };
                return s_world;
            }
        }
    }

    // Ranks on one machine share its cores. Unless GRADFLOW_NUM_THREADS says otherwise, a rank's kernels take the cores it
    // may run on divided by the ranks on this machine: 1 when mpirun bound it to one core (as Open MPI does for up to two
    // ranks), cores / N when unbound (with more ranks than cores). GradFlow's default, every core the process may use,
    // would give N unbound ranks N times as many threads as cores, all spinning in each other's way.
    private static void ShareCores(MpiBinding mpi)
    {
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable(Parallelism.EnvironmentVariable))) return;
        if (!int.TryParse(Environment.GetEnvironmentVariable(mpi.LocalSizeVariable), out int local) || local <= 1) return;
        Parallelism.NumThreads = Math.Max(1, Environment.ProcessorCount / local);
    }

    /// <summary>This process's number, 0 to <see cref="Size"/> - 1.</summary>
    public int Rank { get; }

    /// <summary>How many processes the job has.</summary>
    public int Size { get; }

    /// <summary>True on rank 0, the one that writes files and logs.</summary>
    public bool IsRoot => Rank == 0;

    /// <summary>The MPI implementation in use.</summary>
    public string Implementation => _mpi.Name;

    internal MpiBinding Binding => _mpi;

    internal nint Handle => _comm;

    /// <summary>The MPI calls and bytes this process has made through this communicator so far (subtract two snapshots for a step's).</summary>
    public MpiCallCounts Counts => new(_blocking, _started, _tests, _testsCompleted, _waits, _reducedBytes, _otherBytes);

    private static int SizeOf(MpiType type) => type switch
    {
        MpiType.Byte => 1,
        MpiType.Int32 or MpiType.Float32 => 4,
        _ => 8,
    };

    /// <summary>Combines <paramref name="buffer"/> across all ranks element by element; every rank receives the result in place.</summary>
    public void Allreduce<T>(Span<T> buffer, ReduceOp op = ReduceOp.Sum) where T : unmanaged
    {
        var type = TypeOf<T>(nameof(Allreduce));
        ThrowIfFinalized();
        _blocking++;
        _reducedBytes += (long)buffer.Length * sizeof(T);
        fixed (T* p = buffer) Check(_mpi.Allreduce(p, p, buffer.Length, type, (MpiOp)op, _comm), "MPI_Allreduce");
    }

    /// <summary>
    /// Starts an allreduce of <paramref name="buffer"/> in place and returns at once (MPI_Iallreduce): the buffer stays pinned and
    /// must not be read or written until the request completes (<see cref="MpiRequest.Wait"/>).
    /// </summary>
    public MpiRequest StartAllreduce<T>(Memory<T> buffer, ReduceOp op = ReduceOp.Sum) where T : unmanaged
    {
        var type = TypeOf<T>(nameof(StartAllreduce));
        ThrowIfFinalized();
        var pin = buffer.Pin();
        _started++;
        _reducedBytes += (long)buffer.Length * sizeof(T);
        try
        {
            Check(_mpi.Iallreduce(pin.Pointer, pin.Pointer, buffer.Length, type, (MpiOp)op, _comm, out nint request), "MPI_Iallreduce");
            return new MpiRequest(this, request, pin);
        }
        catch
        {
            pin.Dispose();
            throw;
        }
    }

    /// <summary>Starts an in-place allreduce of <paramref name="count"/> elements at a pinned address (the DDP's buckets).</summary>
    internal nint StartAllreduce(void* buffer, int count, MpiType type, MpiOp op = MpiOp.Sum)
    {
        ThrowIfFinalized();
        _started++;
        _reducedBytes += (long)count * SizeOf(type);
        Check(_mpi.Iallreduce(buffer, buffer, count, type, op, _comm, out nint request), "MPI_Iallreduce");
        return request;
    }

    /// <summary>An in-place allreduce of <paramref name="count"/> elements at an address.</summary>
    internal void Allreduce(void* buffer, int count, MpiType type, MpiOp op = MpiOp.Sum)
    {
        ThrowIfFinalized();
        _blocking++;
        _reducedBytes += (long)count * SizeOf(type);
        Check(_mpi.Allreduce(buffer, buffer, count, type, op, _comm), "MPI_Allreduce");
    }

    /// <summary>An in-place allreduce on another communicator made from this one (a shared-memory reduction's rail between machines).</summary>
    internal void AllreduceOn(nint comm, void* buffer, int count, MpiType type)
    {
        ThrowIfFinalized();
        _blocking++;
        _reducedBytes += (long)count * SizeOf(type);
        Check(_mpi.Allreduce(buffer, buffer, count, type, MpiOp.Sum, comm), "MPI_Allreduce");
    }

    /// <summary>Waits for a request; it reads as MPI_REQUEST_NULL after.</summary>
    internal void Wait(ref nint request)
    {
        if (request == _mpi.RequestNull) return;
        _waits++;
        Check(_mpi.Wait(ref request), "MPI_Wait");
    }

    /// <summary>Lets MPI progress a request (non-blocking collectives advance only inside MPI calls); true once it completed.</summary>
    internal bool Test(ref nint request)
    {
        if (request == _mpi.RequestNull) return true;
        Check(_mpi.Test(ref request, out bool done), "MPI_Test");
        _tests++;
        if (done) _testsCompleted++;
        return done;
    }

    internal nint RequestNull => _mpi.RequestNull;

    /// <summary>Copies <paramref name="buffer"/> from rank <paramref name="root"/> into every other rank's.</summary>
    public void Broadcast<T>(Span<T> buffer, int root = 0) where T : unmanaged
    {
        var type = TypeOf<T>(nameof(Broadcast));
        CheckRoot(root, nameof(Broadcast));
        ThrowIfFinalized();
        _blocking++;
        _otherBytes += (long)buffer.Length * sizeof(T);
        fixed (T* p = buffer) Check(_mpi.Bcast(p, buffer.Length, type, root, _comm), "MPI_Bcast");
    }

    /// <summary>Waits until every rank has called it.</summary>
    public void Barrier()
    {
        ThrowIfFinalized();
        _blocking++;
        Check(_mpi.Barrier(_comm), "MPI_Barrier");
    }

    /// <summary>Every rank's value, indexed by rank.</summary>
    public T[] AllGather<T>(T value) where T : unmanaged
    {
        var type = TypeOf<T>(nameof(AllGather));
        ThrowIfFinalized();
        var all = new T[Size];
        _blocking++;
        _otherBytes += (long)Size * sizeof(T);
        fixed (T* r = all) Check(_mpi.Allgather(&value, 1, type, r, 1, type, _comm), "MPI_Allgather");
        return all;
    }

    /// <summary>Every rank's <paramref name="mine"/> (the same length on all), rank after rank in <paramref name="all"/>: no allocation.</summary>
    internal void AllGather<T>(ReadOnlySpan<T> mine, Span<T> all) where T : unmanaged
    {
        var type = TypeOf<T>(nameof(AllGather));
        if (all.Length != mine.Length * Size) throw new ArgumentException($"{nameof(AllGather)}: {Size} ranks of {mine.Length} elements need {mine.Length * Size}, got room for {all.Length}.", nameof(all));
        ThrowIfFinalized();
        _blocking++;
        _otherBytes += (long)all.Length * sizeof(T);
        fixed (T* s = mine)
        fixed (T* r = all)
            Check(_mpi.Allgather(s, mine.Length, type, r, mine.Length, type, _comm), "MPI_Allgather");
    }

    /// <summary>Every rank's bytes (of any length), indexed by rank: small per-rank data such as a model's parameter list.</summary>
    public byte[][] AllGatherBytes(ReadOnlySpan<byte> mine)
    {
        int[] lengths = AllGather(mine.Length);
        var displacements = new int[Size];
        long total = 0;
        for (int r = 0; r < Size; r++)
        {
            displacements[r] = (int)total;
            total += lengths[r];
        }
        if (total > Array.MaxLength) throw new MpiException($"{nameof(AllGatherBytes)}: the ranks' data add up to {total} bytes, more than one array holds.");
        var all = new byte[total];
        _blocking++;
        _otherBytes += total;
        fixed (byte* s = mine)
        fixed (byte* r = all)
        fixed (int* c = lengths)
        fixed (int* d = displacements)
            Check(_mpi.Allgatherv(s, mine.Length, MpiType.Byte, r, c, d, MpiType.Byte, _comm), "MPI_Allgatherv");
        var result = new byte[Size][];
        for (int i = 0; i < Size; i++) result[i] = all.AsSpan(displacements[i], lengths[i]).ToArray();
        return result;
    }

    /// <summary>Ends every process of the job with <paramref name="errorCode"/> (MPI_Abort): the way out when one rank fails and the others would wait for it forever.</summary>
    [DoesNotReturn]
    public void Abort(int errorCode = 1)
    {
        Console.Out.Flush();
        Console.Error.Flush();
        _mpi.Abort(_comm, errorCode);
        Environment.Exit(errorCode); // MPI_Abort does not return; this is for an implementation that does
    }

    /// <summary>
    /// Runs a distributed program's body on <see cref="World"/>: an exception on any rank is printed with its rank and ends
    /// the whole job through MPI_Abort, so the other ranks never wait for it in a collective; an error every rank raised
    /// alike (<see cref="MpiException.AllRanks"/>) is printed by each and returns 1. Returns the body's exit code.
    /// </summary>
    public static int Run(Func<Communicator, int> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        var world = World;
        int code = 1;
        try
        {
            code = body(world);
        }
        catch (MpiException e) when (e.AllRanks)
        {
            // Every rank failed the same check at the same point: each says so and the job ends without killing anyone.
            WriteError($"rank {world.Rank} of {world.Size}: {e.Message}\n");
            code = 1;
        }
        catch (Exception e)
        {
            WriteError($"rank {world.Rank} of {world.Size}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}\n");
            world.Abort(1);
        }
        world.Dispose();
        return code;
    }

    // Console.Error flushes every 256 characters, so a longer message would leave this process in several writes, and
    // mpirun, which forwards every rank's stderr into one stream, may put another rank's words between them. One write
    // of the whole message (a pipe keeps writes up to 4 KB whole) keeps each rank's message in one piece.
    private static void WriteError(string message)
    {
        Console.Error.Flush();
        using var stderr = Console.OpenStandardError();
        stderr.Write(Encoding.UTF8.GetBytes(message));
        stderr.Flush();
    }

    /// <summary>Finalises MPI (MPI_Finalize): after it no rank may call MPI again in this process.</summary>
    public void Dispose()
    {
        lock (s_lock)
        {
            if (_finalized) return;
            _finalized = true;
            if (_mpi.Finalized(out bool done) == 0 && !done) _mpi.Finalize();
        }
    }

    private void ThrowIfFinalized() => ObjectDisposedException.ThrowIf(_finalized, this);

    private void CheckRoot(int root, string op)
    {
        if ((uint)root >= (uint)Size) throw new ArgumentOutOfRangeException(nameof(root), $"{op}: root {root} is not a rank of this job of {Size}.");
    }

    internal static MpiType TypeOf<T>(string op) where T : unmanaged =>
        typeof(T) == typeof(float) ? MpiType.Float32
        : typeof(T) == typeof(double) ? MpiType.Float64
        : typeof(T) == typeof(long) ? MpiType.Int64
        : typeof(T) == typeof(int) ? MpiType.Int32
        : typeof(T) == typeof(byte) ? MpiType.Byte
        : throw new NotSupportedException($"{op}: element type {typeof(T).Name} is not sent through MPI; use float, double, long, int or byte.");

    internal void Check(int rc, string call) => Check(_mpi, rc, call);

    private static void Check(MpiBinding mpi, int rc, string call)
    {
        if (rc != 0) throw new MpiException($"{call} failed with MPI error {rc}: {mpi.ErrorString(rc)}");
    }
}
