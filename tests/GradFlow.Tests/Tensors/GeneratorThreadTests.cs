using GradFlow.Tests.Kernels;

namespace GradFlow.Tests.Tensors;

// Alone (no other test may draw from the default generator meanwhile).
[Collection(ParallelismCollection.Name)]
public class GeneratorThreadTests
{
    [Fact]
    public void ThreadsDrawingFromTheDefaultAtOnceShareOneSequence()
    {
        const int perThread = 200_000;
        Generator.Default.ManualSeed(123);
        var drawn = new ulong[2][];
        using var start = new Barrier(2);
        var threads = Enumerable.Range(0, 2).Select(t => new Thread(() =>
        {
            var mine = new ulong[perThread];
            start.SignalAndWait();
            for (int i = 0; i < perThread; i++) mine[i] = Generator.Default.NextUInt64();
            drawn[t] = mine;
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        // Together the threads consumed the sequence exactly: nothing repeated, nothing torn or skipped.
        var reference = new Generator(123);
        var expected = Enumerable.Range(0, 2 * perThread).Select(_ => reference.NextUInt64()).Order().ToArray();
        Assert.Equal(expected, drawn[0].Concat(drawn[1]).Order().ToArray());
    }

    [Fact]
    public void AThreadsOwnDefaultIsNotAdvancedByOtherThreads()
    {
        var drawn = new ulong[2][];
        using var start = new Barrier(2);
        var threads = Enumerable.Range(0, 2).Select(t => new Thread(() =>
        {
            using var own = Generator.UseAsDefault(new Generator(7));
            start.SignalAndWait();
            drawn[t] = [.. Enumerable.Range(0, 50_000).Select(_ => Generator.Default.NextUInt64())];
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        var reference = new Generator(7);
        var expected = Enumerable.Range(0, 50_000).Select(_ => reference.NextUInt64()).ToArray();
        Assert.Equal(expected, drawn[0]);
        Assert.Equal(expected, drawn[1]);
        var shared = Generator.Default;
        using (Generator.UseAsDefault(new Generator(1)))
        {
            using (Generator.UseAsDefault(new Generator(2))) Assert.NotSame(shared, Generator.Default);
            Assert.Equal(new Generator(1).NextUInt64(), Generator.Default.NextUInt64()); // the outer scope is back
        }
        Assert.Same(shared, Generator.Default);
    }
}
