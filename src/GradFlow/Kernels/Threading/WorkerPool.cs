using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;

namespace GradFlow.Kernels;

/// <summary>
/// Persistent worker threads behind <see cref="Parallelism.For{TBody}(int, ref TBody)"/>. One job runs at
/// a time: the caller publishes it by bumping <see cref="generation"/>, every worker wakes, the first
/// <c>threads - 1</c> of them claim indices from a shared counter alongside the caller, and the caller
/// returns as soon as every index has finished. A worker that wakes late only finds the counter exhausted;
/// the next job waits for such stragglers before it rewrites the job fields.
/// </summary>
internal sealed unsafe class WorkerPool
{
    public static readonly WorkerPool Shared = new();

    // Workers spin this long after a job before blocking: long enough to catch the next kernel of a
    // training step without a kernel wake-up (~10-50 us), short enough not to starve other processes.
    private static readonly long SpinTicks = Stopwatch.Frequency / 5000; // 200 us

    private readonly object gate = new();
    private readonly List<Thread> workers = [];
    private int busy;
    private int generation;
    private int sleepers;
    private int activeWorkers;

    // The current job; written only while no worker is inside a job (activeWorkers == 0).
    private delegate*<void*, int, void> job;
    private void* body;
    private int count;
    private int participants;
    private int next;
    private int finished;
    private Exception? error;

    /// <summary>Runs the loop on the pool; false when another thread owns the pool (the caller then runs inline).</summary>
    public bool TryRun<TBody>(int itemCount, int threads, ref TBody loopBody) where TBody : struct, IParallelBody
    {
        if (Interlocked.CompareExchange(ref busy, 1, 0) != 0)
        {
            return false;
        }

        try
        {
            EnsureWorkers(threads - 1);
            WaitUntil(ref activeWorkers, 0);
            TBody copy = loopBody;
            Start(Parallelism.Trampoline<TBody>.Pointer, Unsafe.AsPointer(ref copy), itemCount, threads - 1);
            Parallelism.EnterRegion();
            try
            {
                Work();
            }
            finally
            {
                Parallelism.ExitRegion();
            }

            WaitUntil(ref finished, itemCount);
            Exception? failure = error;
            error = null;
            if (failure is not null)
            {
                ExceptionDispatchInfo.Throw(failure);
            }
        }
        finally
        {
            Volatile.Write(ref busy, 0);
        }

        return true;
    }

    private void Start(delegate*<void*, int, void> function, void* state, int itemCount, int workerCount)
    {
        job = function;
        body = state;
        count = itemCount;
        participants = workerCount;
        next = 0;
        finished = 0;
        error = null;
        Volatile.Write(ref activeWorkers, workers.Count);
        Interlocked.Increment(ref generation);
        if (Volatile.Read(ref sleepers) > 0)
        {
            lock (gate)
            {
                Monitor.PulseAll(gate);
            }
        }
    }

    private void Work()
    {
        while (true)
        {
            int index = Interlocked.Increment(ref next) - 1;
            if (index >= count)
            {
                return;
            }

            try
            {
                job(body, index);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref error, e, null);
            }

            Interlocked.Increment(ref finished);
        }
    }

    private static void WaitUntil(ref int counter, int value)
    {
        var spinner = default(SpinWait);
        while (Volatile.Read(ref counter) != value)
        {
            spinner.SpinOnce(sleep1Threshold: -1);
        }
    }

    private void EnsureWorkers(int wanted)
    {
        if (workers.Count >= wanted)
        {
            return;
        }

        lock (gate)
        {
            while (workers.Count < wanted)
            {
                int id = workers.Count;
                int startGeneration = Volatile.Read(ref generation);
                var thread = new Thread(() => WorkerLoop(id, startGeneration))
                {
                    IsBackground = true,
                    Name = $"GradFlow worker {id}",
                };
                workers.Add(thread);
                thread.Start();
            }
        }
    }

    private void WorkerLoop(int id, int seen)
    {
        Parallelism.EnterRegion();
        while (true)
        {
            seen = WaitForJob(seen);
            if (id < participants)
            {
                Work();
            }

            Interlocked.Decrement(ref activeWorkers);
        }
    }

    private int WaitForJob(int seen)
    {
        long deadline = Stopwatch.GetTimestamp() + SpinTicks;
        int current;
        while ((current = Volatile.Read(ref generation)) == seen)
        {
            if (Stopwatch.GetTimestamp() > deadline)
            {
                return Sleep(seen);
            }

            Thread.SpinWait(20);
        }

        return current;
    }

    // Dekker pairing with Start: the worker bumps sleepers then rereads generation; Start bumps generation
    // then reads sleepers. Both are full fences, so either the worker sees the job or Start pulses the gate.
    private int Sleep(int seen)
    {
        lock (gate)
        {
            Interlocked.Increment(ref sleepers);
            int current;
            while ((current = Volatile.Read(ref generation)) == seen)
            {
                Monitor.Wait(gate);
            }

            Interlocked.Decrement(ref sleepers);
            return current;
        }
    }
}
