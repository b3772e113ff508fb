namespace GradFlow.Formats;

/// <summary>
/// Replaces a file so that a crash at any moment leaves either the old or the new content, never a
/// mixture: write a temporary file in the same directory (same file system, so the rename is atomic),
/// flush it to the disk, then rename it over the target.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> through <paramref name="write"/>, atomically.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        Guard.NotEmpty(path, "AtomicFile.Write", nameof(path));
        Guard.NotNull(write, "AtomicFile.Write", nameof(write));
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full) ?? throw new ArgumentException($"AtomicFile: '{path}' has no directory.", nameof(path));
        Directory.CreateDirectory(dir);
        string temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
