using GradFlow.Kernels;

namespace GradFlow.Tests.Kernels;

[Collection(ParallelismCollection.Name)]
public class ParallelismTests
{
    [Theory]
    [InlineData(1, 1000)]
    [InlineData(2, 1)]
    [InlineData(2, 2)]
    [InlineData(2, 1001)]
    [InlineData(4, 37)]
    public void EveryIndexRunsExactlyOnce(int threads, int count)
    {
        WithThreads(threads, () =>
        {
            for (int repeat = 0; repeat < 50; repeat++)
            {
                var body = new CountingBody(new int[count]);
                Parallelism.For(count, ref body);
                Assert.All(body.Hits, h => Assert.Equal(1, h));
            }
        });
    }

    [Fact]
    public void TwoThreadsShareTheWork()
    {
        WithThreads(2, () =>
        {
            var body = new ThreadRecordingBody(new int[40], sleepMs: 2);
            Parallelism.For(40, ref body);
            Assert.True(body.ThreadIds.Distinct().Count() == 2, "expected the worker and the caller to take items");
        });
    }

    [Fact]
    public void OneThreadRunsInlineOnTheCaller()
    {
        WithThreads(1, () =>
        {
            var body = new ThreadRecordingBody(new int[20], sleepMs: 0);
            Parallelism.For(20, ref body);
            Assert.All(body.ThreadIds, id => Assert.Equal(Environment.CurrentManagedThreadId, id));
        });
    }

    [Fact]
    public void WorkerExceptionIsRethrownOnTheCallerAfterAllItemsFinish()
    {
        WithThreads(2, () =>
        {
            var body = new ThrowingBody(new int[100], throwAt: 57);
            var e = Assert.Throws<InvalidOperationException>(() => Parallelism.For(100, ref body));
            Assert.Equal("item 57", e.Message);
            Assert.Equal(99, body.Hits.Sum());

            var next = new CountingBody(new int[10]);
            Parallelism.For(10, ref next);
            Assert.All(next.Hits, h => Assert.Equal(1, h));
        });
    }

    [Fact]
    public void NestedLoopRunsInlineOnTheItemsThread()
    {
        WithThreads(2, () =>
        {
            var body = new NestingBody(new int[16 * 8], new bool[16]);
            Parallelism.For(16, ref body);
            Assert.All(body.Hits, h => Assert.Equal(1, h));
            Assert.All(body.InnerStayedOnThread, Assert.True);
        });
    }

    [Fact]
    public void NumThreadsBelowOneIsRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Parallelism.NumThreads = 0);
    }

    private static void WithThreads(int threads, Action action)
    {
        int saved = Parallelism.NumThreads;
        Parallelism.NumThreads = threads;
        try
        {
            action();
        }
        finally
        {
            Parallelism.NumThreads = saved;
        }
    }

    private readonly struct CountingBody(int[] hits) : IParallelBody
    {
        public int[] Hits { get; } = hits;

        public void Invoke(int index) => Interlocked.Increment(ref Hits[index]);
    }

    private readonly struct ThreadRecordingBody(int[] ids, int sleepMs) : IParallelBody
    {
        public int[] ThreadIds { get; } = ids;

        public void Invoke(int index)
        {
            ThreadIds[index] = Environment.CurrentManagedThreadId;
            Thread.Sleep(sleepMs);
        }
    }

    private readonly struct ThrowingBody(int[] hits, int throwAt) : IParallelBody
    {
        public int[] Hits { get; } = hits;

        public void Invoke(int index)
        {
            if (index == throwAt)
            {
                throw new InvalidOperationException($"item {index}");
            }

            Interlocked.Increment(ref Hits[index]);
        }
    }

    private readonly struct NestingBody(int[] hits, bool[] stayed) : IParallelBody
    {
        public int[] Hits { get; } = hits;

        public bool[] InnerStayedOnThread { get; } = stayed;

        public void Invoke(int index)
        {
            var inner = new ThreadRecordingBody(new int[8], sleepMs: 0);
            Parallelism.For(8, ref inner);
            int me = Environment.CurrentManagedThreadId;
            InnerStayedOnThread[index] = inner.ThreadIds.All(id => id == me);
            for (int j = 0; j < 8; j++)
            {
                Interlocked.Increment(ref Hits[(index * 8) + j]);
            }
        }
    }
}
