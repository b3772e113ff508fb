using System.Numerics;
using System.Runtime.CompilerServices;
using GradFlow.Distributed.Native;

namespace GradFlow.Distributed;

/// <summary>
/// The gradient allreduce of the ranks on one machine through memory they all map (MPI-3: MPI_Comm_split_type with
/// MPI_COMM_TYPE_SHARED, MPI_Win_allocate_shared), instead of MPI messages. Each rank owns a segment of the window; a
/// bucket is written into it and the ranks meet once (<see cref="Publish"/>). With two ranks on the machine each rank
/// then adds both segments in rank order straight into its own gradients, divided by the world size
/// (<see cref="SumPair{T}"/>); with more, each reduces its share (1/L of the elements) from every segment in rank order,
/// meets the others again, and copies every share from its owner's segment (<see cref="ReduceShares{T}"/>,
/// <see cref="CopyAveraged{T}"/>). Either way the same additions in the same order: the same bits on every rank and run.
/// <para>
/// The window holds two sets of segments used by turns, so a rank that has passed the meeting of one reduction knows
/// every rank has finished reading the previous one, whose set it may now overwrite: no meeting is needed to release a
/// set. Where the machine's shared memory holds only one set, a last meeting releases it (<see cref="Release"/>).
/// </para>
/// <para>
/// Across machines (the world larger than one machine's ranks) the reduction is hierarchical: after the machine-local
/// sum, each rank allreduces its share with the ranks of the same local number on the other machines (MPI_Allreduce on
/// that "rail"), so every local rank drives the network at once, then divides. This needs the same number of ranks on
/// every machine; <see cref="TryCreate"/> returns null otherwise (on every rank alike) and the DDP keeps MPI's allreduce.
/// </para>
/// </summary>
internal sealed unsafe class SharedMemoryAllreduce : IDisposable
{
    /// <summary>Groups the ranks into "machines" of this many consecutive ranks instead of asking MPI which share memory: for tests of the hierarchical path on one machine.</summary>
    public const string RanksPerNodeVariable = "GRADFLOW_SHM_RANKS_PER_NODE";

    /// <summary>At most this many sets of segments (1 or 2) whatever /dev/shm holds: for tests of the one-set path.</summary>
    public const string SetsVariable = "GRADFLOW_SHM_SETS";

    private const int Align = 64; // shares start on cache lines of their own: no two ranks write one line
    private readonly Communicator _world;
    private readonly MpiBinding _mpi;
    private readonly byte*[] _segments; // each rank's first set; its second lies SegmentBytes further
    private nint _node, _rail, _window;
    private long _uses; // reductions begun: reduction u uses set u % Sets

    private SharedMemoryAllreduce(Communicator world, nint node, nint rail, nint window, byte*[] segments, int localRank, long bytes, int sets)
    {
        _world = world;
        _mpi = world.Binding;
        _node = node;
        _rail = rail;
        _window = window;
        _segments = segments;
        LocalRank = localRank;
        SegmentBytes = bytes;
        Sets = sets;
    }

    /// <summary>Stopwatch ticks spent copying gradients into the segment, meeting the other ranks (waiting for them), adding, and copying the averages out.</summary>
    public long CopyInTicks, MeetTicks, ReduceTicks, CopyOutTicks;

    /// <summary>This rank's number among the ranks of its machine.</summary>
    public int LocalRank { get; }

    /// <summary>Ranks on this machine.</summary>
    public int LocalSize => _segments.Length;

    /// <summary>Bytes of each rank's segment: the largest bucket.</summary>
    public long SegmentBytes { get; }

    /// <summary>Sets of segments used by turns: 2, or 1 where the machine's shared memory holds only one.</summary>
    public int Sets { get; }

    /// <summary>True when the world spans several machines (the shares then also travel between them by MPI).</summary>
    public bool Hierarchical => _rail != _mpi.CommNull;

    /// <summary>
    /// Whether a bucket is reduced by <see cref="SumPair{T}"/> (each rank adds every segment into its own gradients) rather
    /// than by shares. Per element and rank after the copy in, the sum reads L values and writes 1 (L + 1), the shares read
    /// 1 and write 1/L to add, then read 1 and write 1 to copy out (3 + 1/L) and meet once more: the sum moves less memory
    /// for L = 2 only (3 against 3.5; 4 against 3.33 for L = 3). Across machines the share must be summed on the machine
    /// before it travels, so the hierarchical path always uses shares.
    /// </summary>
    public bool Fused => LocalSize == 2 && !Hierarchical;

    /// <summary>This rank's segment in the set the next reduction uses, where a bucket is written before <see cref="Publish"/>.</summary>
    public void* Mine => Segment(LocalRank);

    private byte* Segment(int rank) => _segments[rank] + _uses % Sets * SegmentBytes;

    /// <summary>
    /// Collective over the world: splits it into machines, allocates two sets of segments of <paramref name="bytes"/> per
    /// rank (one where the shared memory holds no more) and maps every segment of the machine. Null, on every rank alike,
    /// when the machines hold different numbers of ranks or a machine's shared memory cannot hold one set.
    /// </summary>
    public static SharedMemoryAllreduce? TryCreate(Communicator world, long bytes)
    {
        var mpi = world.Binding;
        nint node;
        string? grouping = Environment.GetEnvironmentVariable(RanksPerNodeVariable);
        if (int.TryParse(grouping, out int perNode) && perNode > 0) world.Check(mpi.CommSplit(world.Handle, world.Rank / perNode, world.Rank, out node), "MPI_Comm_split");
        else world.Check(mpi.CommSplitShared(world.Handle, world.Rank, out node), "MPI_Comm_split_type");
        world.Check(mpi.CommRank(node, out int localRank), "MPI_Comm_rank");
        world.Check(mpi.CommSize(node, out int localSize), "MPI_Comm_size");
        int[] sizes = world.AllGather(localSize);
        if (sizes.Any(s => s != localSize))
        {
            world.Check(mpi.CommFree(ref node), "MPI_Comm_free");
            return null;
        }
        long rounded = Math.Max(Align, (bytes + Align - 1) / Align * Align);
        // Open MPI backs the window with a file in /dev/shm; where that cannot hold the machine's segments (a container's
        // small --shm-size) the allocation would end the job, so every rank takes the fewest sets any machine holds, and
        // keeps MPI's allreduce, all alike, where one machine holds none.
        int most = int.TryParse(Environment.GetEnvironmentVariable(SetsVariable), out int cap) && cap is 1 ? 1 : 2;
        int sets = world.AllGather(SetsThatFit(rounded * localSize, FreeBytes(SharedMemoryDirectory), most)).Min();
        if (sets == 0)
        {
            world.Check(mpi.CommFree(ref node), "MPI_Comm_free");
            return null;
        }
        nint rail = mpi.CommNull;
        if (localSize < world.Size) world.Check(mpi.CommSplit(world.Handle, localRank, world.Rank, out rail), "MPI_Comm_split");
        world.Check(mpi.WinAllocateShared(rounded * sets, node, out _, out nint window), "MPI_Win_allocate_shared");
        var segments = new byte*[localSize];
        for (int r = 0; r < localSize; r++)
        {
            world.Check(mpi.WinSharedQuery(window, r, out _, out void* address), "MPI_Win_shared_query");
            segments[r] = (byte*)address;
        }
        world.Check(mpi.WinLockAll(window), "MPI_Win_lock_all");
        return new SharedMemoryAllreduce(world, node, rail, window, segments, localRank, rounded, sets);
    }

    /// <summary>
    /// How many sets (at most <paramref name="most"/>) of a machine's segments, <paramref name="setBytes"/> each, fit in
    /// <paramref name="freeBytes"/> of shared memory (<see cref="WindowFits"/>); 0 when not even one does.
    /// </summary>
    internal static int SetsThatFit(long setBytes, long? freeBytes, int most = 2)
    {
        for (int sets = most; sets > 0; sets--)
            if (WindowFits(setBytes * sets, freeBytes)) return sets;
        return 0;
    }

    /// <summary>Where Open MPI's shared-memory files live by default (its shmem_mmap backing directory).</summary>
    internal const string SharedMemoryDirectory = "/dev/shm";

    /// <summary>
    /// Whether a machine's window of <paramref name="windowBytes"/> fits in <paramref name="freeBytes"/> of shared memory,
    /// with a quarter to spare for MPI's own segments; unknown space (null) is assumed to fit, as MPI would.
    /// </summary>
    internal static bool WindowFits(long windowBytes, long? freeBytes) =>
        freeBytes is not { } free || windowBytes <= free - (free / 4);

    /// <summary>Free bytes of the file system at <paramref name="directory"/>, or null where it cannot be read.</summary>
    internal static long? FreeBytes(string directory)
    {
        try
        {
            return Directory.Exists(directory) ? new DriveInfo(directory).AvailableFreeSpace : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null;
        }
    }

    /// <summary>The first element and the end of local rank <paramref name="rank"/>'s share of <paramref name="count"/> elements.</summary>
    public (int Start, int End) Share<T>(int rank, int count) where T : unmanaged
    {
        int perLine = Align / sizeof(T);
        int share = (count + LocalSize - 1) / LocalSize;
        share = (share + perLine - 1) / perLine * perLine;
        int start = Math.Min(count, rank * share);
        return (start, Math.Min(count, start + share));
    }

    /// <summary>
    /// Collective over the machine: every rank has written its bucket into <see cref="Mine"/>; on return every rank's is
    /// readable. With <paramref name="header"/> the ranks meet in the step header's allgather over the world (one machine:
    /// not <see cref="Hierarchical"/>), which throws on every rank alike when the ranks are not at the same step; else at a
    /// barrier of the machine.
    /// </summary>
    public void Publish(StepAgreement? header)
    {
        if (header is not null && Hierarchical) throw new InvalidOperationException($"{nameof(SharedMemoryAllreduce)}: the step header meets only the ranks of one machine.");
        Meet(header);
    }

    /// <summary>
    /// After <see cref="Publish"/> with two ranks on the machine (<see cref="Fused"/>): writes rank 0's plus rank 1's
    /// elements from <paramref name="index"/> on, divided by <paramref name="worldSize"/>, into <paramref name="destination"/>.
    /// This rank's elements are read from <paramref name="destination"/> itself when <paramref name="destinationIsMine"/>
    /// (the gradient the segment was filled from: one read of memory fewer), else from its segment.
    /// </summary>
    public void SumPair<T>(int index, Span<T> destination, bool destinationIsMine, int worldSize) where T : unmanaged, INumber<T>
    {
        if (!Fused) throw new InvalidOperationException($"{nameof(SharedMemoryAllreduce)}.{nameof(SumPair)}: {LocalSize} ranks on the machine{(Hierarchical ? " of several" : "")} reduce by shares.");
        var mine = destinationIsMine ? destination : new Span<T>((T*)Mine + index, destination.Length);
        var peer = new ReadOnlySpan<T>((T*)Segment(1 - LocalRank) + index, destination.Length);
        // Rank 0's value first on both ranks: a + b and b + a differ only in which NaN's payload survives, but they differ.
        if (LocalRank == 0) AddDivide<T>(mine, peer, destination, worldSize);
        else AddDivide<T>(peer, mine, destination, worldSize);
    }

    /// <summary>
    /// Collective over the machine (and the world when hierarchical), after <see cref="Publish"/>: on return each segment's
    /// share of <paramref name="count"/> elements holds the sum over all ranks divided by <paramref name="worldSize"/>,
    /// readable through <see cref="CopyAveraged{T}"/> until <see cref="Release"/>.
    /// </summary>
    public void ReduceShares<T>(int count, int worldSize) where T : unmanaged, INumber<T>
    {
        if ((long)count * sizeof(T) > SegmentBytes) throw new ArgumentOutOfRangeException(nameof(count), $"{nameof(SharedMemoryAllreduce)}: {count} elements exceed the segment of {SegmentBytes} bytes.");
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        var (start, end) = Share<T>(LocalRank, count);
        T* mine = (T*)Mine;
        bool divide = !Hierarchical;
        const int Block = 1024; // a block of the share stays in L1 while the segments are added into it
        // Ranks 0 and 1 may add into their own segment (each element is read before it is written); a rank above them
        // would overwrite its own contribution with rank 0's and 1's before adding it, so it adds in a scratch block.
        Span<T> scratch = LocalRank >= 2 ? stackalloc T[Block] : default;
        for (int b = start; b < end; b += Block)
        {
            int n = Math.Min(Block, end - b);
            var dst = new Span<T>(mine + b, n);
            var sum = LocalRank >= 2 ? scratch[..n] : dst;
            if (LocalSize > 1) Add(new Span<T>((T*)Segment(0) + b, n), new Span<T>((T*)Segment(1) + b, n), sum);
            for (int r = 2; r < LocalSize; r++) Add(sum, new Span<T>((T*)Segment(r) + b, n), sum);
            if (LocalRank >= 2) sum.CopyTo(dst);
            if (divide) Divide(dst, worldSize);
        }
        if (!divide && end > start)
        {
            _world.AllreduceOn(_rail, mine + start, end - start, Communicator.TypeOf<T>(nameof(ReduceShares)));
            for (int b = start; b < end; b += Block) Divide(new Span<T>(mine + b, Math.Min(Block, end - b)), worldSize);
        }
        ReduceTicks += System.Diagnostics.Stopwatch.GetTimestamp() - t0;
        Meet(null);
    }

    /// <summary>
    /// Copies the averaged elements from <paramref name="index"/> on (of a bucket of <paramref name="count"/>) into
    /// <paramref name="destination"/>, each from its share owner's segment, after <see cref="ReduceShares{T}"/>.
    /// </summary>
    public void CopyAveraged<T>(int index, int count, Span<T> destination) where T : unmanaged
    {
        int share = Math.Max(1, Share<T>(0, count).End);
        int done = 0;
        while (done < destination.Length)
        {
            int at = index + done, owner = at / share;
            int run = Math.Min(destination.Length - done, (owner + 1) * share - at);
            new ReadOnlySpan<T>((T*)Segment(owner) + at, run).CopyTo(destination.Slice(done, run));
            done += run;
        }
    }

    /// <summary>
    /// Ends this rank's reading of the reduction: the next one writes the other set, which every rank finished reading
    /// before it passed this reduction's first meeting. With one set, collective over the machine: a barrier, after which
    /// every rank has read the averages and the segments may be written again.
    /// </summary>
    public void Release()
    {
        if (Sets == 1) Meet(null);
        _uses++;
    }

    // Stores before the meeting are seen by every rank's loads after it: MPI_Win_sync orders this rank's memory accesses
    // against the window (a full fence in Open MPI's osc/sm), the barrier (or the header's allgather, which no rank leaves
    // before every rank has entered it) orders the ranks.
    private void Meet(StepAgreement? header)
    {
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        _world.Check(_mpi.WinSync(_window), "MPI_Win_sync");
        if (header is null) _world.Check(_mpi.Barrier(_node), "MPI_Barrier");
        else header.Exchange();
        _world.Check(_mpi.WinSync(_window), "MPI_Win_sync");
        MeetTicks += System.Diagnostics.Stopwatch.GetTimestamp() - t0;
    }

    // (a + b) / n, a division as the MPI path's average does, so both give the same bits; dst may be a or b.
    private static void AddDivide<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> dst, int worldSize) where T : unmanaged, INumber<T>
    {
        T n = T.CreateChecked(worldSize);
        var vn = new Vector<T>(n);
        int i = 0;
        if (Vector.IsHardwareAccelerated)
            for (; i <= a.Length - Vector<T>.Count; i += Vector<T>.Count)
                ((new Vector<T>(a[i..]) + new Vector<T>(b[i..])) / vn).CopyTo(dst[i..]);
        for (; i < a.Length; i++) dst[i] = (a[i] + b[i]) / n;
    }

    private static void Add<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> dst) where T : unmanaged, INumber<T>
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
            for (; i <= a.Length - Vector<T>.Count; i += Vector<T>.Count)
                (new Vector<T>(a[i..]) + new Vector<T>(b[i..])).CopyTo(dst[i..]);
        for (; i < a.Length; i++) dst[i] = a[i] + b[i];
    }

    // A division, as the MPI path's average does, so both give the same bits.
    private static void Divide<T>(Span<T> x, int worldSize) where T : unmanaged, INumber<T>
    {
        T n = T.CreateChecked(worldSize);
        var vn = new Vector<T>(n);
        int i = 0;
        if (Vector.IsHardwareAccelerated)
            for (; i <= x.Length - Vector<T>.Count; i += Vector<T>.Count)
                (new Vector<T>(x[i..]) / vn).CopyTo(x[i..]);
        for (; i < x.Length; i++) x[i] /= n;
    }

    /// <summary>Frees the window and the communicators (collective over the machine).</summary>
    public void Dispose()
    {
        if (_window == 0) return;
        _mpi.WinUnlockAll(_window);
        _mpi.WinFree(ref _window);
        _window = 0;
        if (_rail != _mpi.CommNull) _mpi.CommFree(ref _rail);
        _mpi.CommFree(ref _node);
    }
}
