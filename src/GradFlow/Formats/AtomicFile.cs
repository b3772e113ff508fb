using System.Runtime.InteropServices;

namespace GradFlow.Formats;

/// <summary>
/// Replaces a file so that a crash at any moment leaves either the old or the new content, never a
/// mixture: write a temporary file in the same directory (same file system, so the rename is atomic),
/// flush it to the disk, rename it over the target, then flush the directory (on Unix) so the rename
/// itself survives a power loss. A save killed before its rename leaves its temporary file behind; the
/// next save of the same file deletes such orphans (skipping any another live writer still holds).
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
        DeleteOrphans(dir, Path.GetFileName(full));
        string temp = Path.Combine(dir, $"{TempPrefix(Path.GetFileName(full))}{Guid.NewGuid():N}.tmp");
        try
        {
            // FileShare.None also locks the file (flock on Unix), which tells DeleteOrphans it is in use.
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
        FlushDirectory(dir);
    }

    private static string TempPrefix(string fileName) => $".{fileName}.";

    /// <summary>The temporary files of earlier saves of <paramref name="fileName"/> that no process holds open.</summary>
    internal static void DeleteOrphans(string dir, string fileName)
    {
        string prefix = TempPrefix(fileName);
        IEnumerable<string> candidates;
        try
        {
            candidates = Directory.EnumerateFiles(dir, prefix + "*.tmp").ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return;
        }
        foreach (string f in candidates)
        {
            // Exactly our pattern: prefix, 32 hex digits, ".tmp" (the glob alone also matches longer names).
            string middle = Path.GetFileName(f)[prefix.Length..^4];
            if (middle.Length != 32 || !middle.All(char.IsAsciiHexDigitLower)) continue;
            try
            {
                // A writer that is still running holds its file with FileShare.None, so this open fails for it.
                using var held = new FileStream(f, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
                File.Delete(f);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
    }

    // fsync of the directory makes the rename durable (POSIX leaves it in the page cache until then).
    // Windows has no directory handle to flush here; NTFS journals the rename with its metadata.
    private static unsafe void FlushDirectory(string dir)
    {
        if (!FlushesDirectory) return;
        var open = (delegate* unmanaged<byte*, int, int>)s_libc.Open;
        var fsync = (delegate* unmanaged<int, int>)s_libc.Fsync;
        var close = (delegate* unmanaged<int, int>)s_libc.Close;
        byte[] name = System.Text.Encoding.UTF8.GetBytes(dir + "\0");
        int fd;
        fixed (byte* p = name) fd = open(p, 0 /* O_RDONLY */);
        if (fd < 0) throw new IOException($"AtomicFile: cannot open directory '{dir}' to flush it (errno {Marshal.GetLastSystemError()}).");
        try
        {
            // EINVAL: the file system cannot sync a directory (some network and FUSE file systems); nothing more to do.
            if (fsync(fd) != 0 && Marshal.GetLastSystemError() is int errno && errno != EInval)
                throw new IOException($"AtomicFile: flushing directory '{dir}' failed (errno {errno}); the new file may not survive a power loss.");
        }
        finally
        {
            _ = close(fd);
        }
    }

    private const int EInval = 22;

    // The C library by name: "libc.so.6" on glibc (plain "libc.so" there is a linker script), "libc" elsewhere.
    private static readonly (nint Open, nint Fsync, nint Close) s_libc = LoadLibc();

    private static unsafe (nint, nint, nint) LoadLibc()
    {
        if (OperatingSystem.IsWindows()) return default;
        foreach (var name in new[] { "libc.so.6", "libc", "/usr/lib/libSystem.dylib" })
            if (NativeLibrary.TryLoad(name, out var lib) && NativeLibrary.TryGetExport(lib, "open", out var open)
                && NativeLibrary.TryGetExport(lib, "fsync", out var fsync) && NativeLibrary.TryGetExport(lib, "close", out var close))
                return (open, fsync, close);
        return default;
    }

    /// <summary>True if directories are flushed after a rename on this system (tests check the C library was found).</summary>
    internal static bool FlushesDirectory => !OperatingSystem.IsWindows() && s_libc.Open != 0;

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
