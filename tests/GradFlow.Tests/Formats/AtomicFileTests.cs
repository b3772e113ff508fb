using GradFlow.Formats;

namespace GradFlow.Tests.Formats;

public sealed class AtomicFileTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "gradflow-atomic-" + Guid.NewGuid().ToString("N"));

    public AtomicFileTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Temp(string target) => Path.Combine(_dir, $".{target}.{Guid.NewGuid():N}.tmp");

    [Fact]
    public void TheNextSaveDeletesTheTemporaryFilesOfKilledSaves()
    {
        string target = Path.Combine(_dir, "model.safetensors");
        var orphans = Enumerable.Range(0, 3).Select(_ => Temp("model.safetensors")).ToList();
        foreach (var o in orphans) File.WriteAllBytes(o, new byte[1000]);
        string otherFiles = Temp("other.safetensors"), notOurs = Path.Combine(_dir, ".model.safetensors.notahexname.tmp");
        File.WriteAllText(otherFiles, "x");
        File.WriteAllText(notOurs, "x");

        AtomicFile.Write(target, s => s.WriteByte(42));

        Assert.All(orphans, o => Assert.False(File.Exists(o), o));
        Assert.True(File.Exists(otherFiles));
        Assert.True(File.Exists(notOurs));
        Assert.Equal([42], File.ReadAllBytes(target));
    }

    [Fact]
    public void ATemporaryFileAnotherWriterHoldsIsLeftAlone()
    {
        string target = Path.Combine(_dir, "run.safetensors");
        string live = Temp("run.safetensors");
        using (var held = new FileStream(live, FileMode.CreateNew, FileAccess.Write, FileShare.None))
        {
            AtomicFile.Write(target, s => s.WriteByte(1));
            Assert.True(File.Exists(live));
        }
        AtomicFile.Write(target, s => s.WriteByte(2));
        Assert.False(File.Exists(live));
    }

    [Fact]
    public void DirectoriesAreFlushedOnUnix()
    {
        // The rename is durable only once the directory is flushed; a C library not found would skip that silently.
        Assert.Equal(!OperatingSystem.IsWindows(), AtomicFile.FlushesDirectory);
    }

    [Fact]
    public void AFailedWriteLeavesTheOldFileAndNoTemporaryFile()
    {
        string target = Path.Combine(_dir, "a.bin");
        AtomicFile.Write(target, s => s.WriteByte(7));
        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(target, s => { s.WriteByte(8); throw new InvalidOperationException("disk gone"); }));
        Assert.Equal([7], File.ReadAllBytes(target));
        Assert.Single(Directory.GetFiles(_dir));
    }
}
