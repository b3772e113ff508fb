using System.Collections.Concurrent;
using System.Diagnostics;
using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace GradFlow.Diagnostics;

/// <summary>
/// Names the first frame of user code in a stack captured without file information (the cheap kind,
/// ~5 µs instead of ~20 µs): the method, and its file and line read from the assembly's portable PDB
/// (embedded or beside the DLL) only when a report needs them.
/// </summary>
internal static class SourceLocator
{
    private static readonly ConcurrentDictionary<Assembly, MetadataReaderProvider?> s_pdbs = new();

    public static string? UserFrame(StackTrace trace)
    {
        foreach (var frame in trace.GetFrames())
        {
            var method = frame.GetMethod();
            var type = method?.DeclaringType;
            if (method is null || type is null || type.Assembly == typeof(Tensor).Assembly) continue;
            string name = $"{type.FullName}.{method.Name}";
            string? where = frame.GetFileName() is { } file ? $"{file}:line {frame.GetFileLineNumber()}" : Resolve(method, frame.GetILOffset());
            return where is null ? name : $"{name} in {where}";
        }
        return null;
    }

    private static string? Resolve(MethodBase method, int ilOffset)
    {
        if (ilOffset < 0) return null;
        try
        {
            var provider = s_pdbs.GetOrAdd(method.Module.Assembly, OpenPdb);
            if (provider is null) return null;
            var reader = provider.GetMetadataReader();
            var info = reader.GetMethodDebugInformation(MetadataTokens.MethodDebugInformationHandle(method.MetadataToken));
            SequencePoint? best = null;
            foreach (var sp in info.GetSequencePoints())
            {
                if (sp.IsHidden) continue;
                if (sp.Offset > ilOffset) break;
                best = sp;
            }
            if (best is not { } b) return null;
            return $"{reader.GetString(reader.GetDocument(b.Document).Name)}:line {b.StartLine}";
        }
        catch (Exception e) when (e is BadImageFormatException or IOException or InvalidOperationException or ArgumentException)
        {
            return null; // no usable symbols: the method name alone still points at the code
        }
    }

    private static MetadataReaderProvider? OpenPdb(Assembly assembly)
    {
        string path = assembly.Location;
        if (string.IsNullOrEmpty(path) || !File.Exists(path)) return null;
        using var pe = new PEReader(File.OpenRead(path));
        return pe.TryOpenAssociatedPortablePdb(path, p => File.Exists(p) ? File.OpenRead(p) : null, out var provider, out _) ? provider : null;
    }
}
