using System.Collections.Immutable;
using System.Reflection;
using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace GradFlow.Tests.Architecture;

/// <summary>One reference from code in one folder to code in another.</summary>
/// <param name="FromFolder">The top folder of the file holding the referring code.</param>
/// <param name="From">The referring member, as Type.Member.</param>
/// <param name="ToFolder">The folder the referenced member or type belongs to.</param>
/// <param name="To">The referenced member or type.</param>
internal sealed record Reference(string FromFolder, string From, string ToFolder, string To)
{
    public override string ToString() => $"{FromFolder}: {From} -> {ToFolder}: {To}";
}

/// <summary>
/// Reads which code of the GradFlow assembly names which other code, and in which source folder each
/// piece lives. Namespaces cannot tell the layers apart (Tensors, Autograd and Ops share GradFlow, and
/// Tensor is one partial class over the three folders), so a method's folder comes from its source file
/// in the portable PDB, and the IL of each body is scanned for the methods, fields and types it names.
/// A referenced method belongs to its own file's folder; a referenced type or field to the lowest folder
/// its type is declared in. Field types, base types and interfaces are charged to the highest folder of
/// the declaring type (the PDB does not say which partial file declares them).
/// </summary>
internal sealed class ReferenceScanner
{
    private static readonly OpCode[] s_oneByte = new OpCode[256];
    private static readonly OpCode[] s_twoByte = new OpCode[256];

    static ReferenceScanner()
    {
        foreach (var f in typeof(OpCodes).GetFields(BindingFlags.Public | BindingFlags.Static))
        {
            var op = (OpCode)f.GetValue(null)!;
            ushort v = (ushort)op.Value;
            if (op.Size == 1) s_oneByte[v] = op;
            else s_twoByte[v & 0xFF] = op;
        }
    }

    private readonly MetadataReader _md;
    private readonly MetadataReader _pdb;
    private readonly PEReader _pe;
    private readonly Dictionary<DocumentHandle, string?> _docFolder = [];
    private readonly Dictionary<MethodDefinitionHandle, string?> _methodFolder = [];
    private readonly Dictionary<TypeDefinitionHandle, SortedSet<string>> _typeFolders = [];
    private readonly TypeCollector _types;

    /// <summary>Folders of source files that are not in the layer map (a new folder must be ranked).</summary>
    public SortedSet<string> UnmappedFolders { get; } = [];

    /// <summary>Every reference that crosses a folder boundary.</summary>
    public List<Reference> References { get; } = [];

    public ReferenceScanner(Assembly assembly)
    {
        string path = assembly.Location;
        _pe = new PEReader(File.OpenRead(path));
        _md = _pe.GetMetadataReader();
        if (!_pe.TryOpenAssociatedPortablePdb(path, p => File.Exists(p) ? File.OpenRead(p) : null, out var provider, out _) || provider is null)
            throw new InvalidOperationException($"no portable PDB beside {path}: the architecture test needs one (DebugType portable or embedded).");
        _pdb = provider.GetMetadataReader();
        _types = new TypeCollector();
        MapFolders();
        Scan();
    }

    /// <summary>The source folder of a method of the assembly, by type and method name (the first overload found).</summary>
    public string? FolderOfMethod(Type type, string method)
    {
        foreach (var h in _md.MethodDefinitions)
        {
            var m = _md.GetMethodDefinition(h);
            if (_md.GetString(m.Name) == method && TypeName(m.GetDeclaringType()) == type.FullName!.Replace('+', '.'))
                return _methodFolder[h];
        }
        return null;
    }

    private void MapFolders()
    {
        foreach (var h in _md.MethodDefinitions)
        {
            string? folder = null;
            var info = _pdb.GetMethodDebugInformation(h.ToDebugInformationHandle());
            if (!info.Document.IsNil) folder = DocFolder(info.Document);
            else
            {
                foreach (var sp in info.GetSequencePoints())
                {
                    folder = DocFolder(sp.Document);
                    if (folder is not null) break;
                }
            }
            _methodFolder[h] = folder;
            if (folder is not null) FoldersOf(_md.GetMethodDefinition(h).GetDeclaringType()).Add(folder);
        }

        // Types with no method body (interfaces, enums, delegates) are placed by the compiler's TypeDefinitionDocuments record.
        var typeDocs = new Guid("932E74BC-DBA9-4478-8D46-0F32A7BAB3D3");
        foreach (var ch in _pdb.CustomDebugInformation)
        {
            var cdi = _pdb.GetCustomDebugInformation(ch);
            if (cdi.Parent.Kind != HandleKind.TypeDefinition || _pdb.GetGuid(cdi.Kind) != typeDocs) continue;
            var blob = _pdb.GetBlobReader(cdi.Value);
            while (blob.RemainingBytes > 0)
            {
                var doc = MetadataTokens.DocumentHandle(blob.ReadCompressedInteger());
                if (DocFolder(doc) is { } f) FoldersOf((TypeDefinitionHandle)cdi.Parent).Add(f);
            }
        }

        // Nested types with no source of their own (compiler-generated, or field-only) take their enclosing type's folders.
        foreach (var h in _md.TypeDefinitions)
        {
            if (FoldersOf(h).Count > 0) continue;
            for (var outer = _md.GetTypeDefinition(h).GetDeclaringType(); !outer.IsNil; outer = _md.GetTypeDefinition(outer).GetDeclaringType())
            {
                if (FoldersOf(outer).Count == 0) continue;
                FoldersOf(h).UnionWith(FoldersOf(outer));
                break;
            }
        }
    }

    private SortedSet<string> FoldersOf(TypeDefinitionHandle h)
    {
        if (!_typeFolders.TryGetValue(h, out var set)) _typeFolders[h] = set = new SortedSet<string>(Comparer<string>.Create((a, b) =>
        {
            int c = LayerMap.Rank[a].CompareTo(LayerMap.Rank[b]);
            return c != 0 ? c : string.CompareOrdinal(a, b);
        }));
        return set;
    }

    private string? DocFolder(DocumentHandle doc)
    {
        if (doc.IsNil) return null;
        if (_docFolder.TryGetValue(doc, out var known)) return known;
        string path = _pdb.GetString(_pdb.GetDocument(doc).Name);
        string? folder = LayerMap.FolderOf(path);
        if (folder is "obj" or "bin") folder = null; // generated sources (assembly attributes, global usings)
        if (folder is not null && !LayerMap.Rank.ContainsKey(folder))
        {
            UnmappedFolders.Add(folder);
            folder = null;
        }
        return _docFolder[doc] = folder;
    }

    private string? LowestFolder(TypeDefinitionHandle h) => FoldersOf(h).Count > 0 ? FoldersOf(h).Min : null;

    private string? HighestFolder(TypeDefinitionHandle h) => FoldersOf(h).Count > 0 ? FoldersOf(h).Max : null;

    private void Scan()
    {
        foreach (var th in _md.TypeDefinitions)
        {
            var type = _md.GetTypeDefinition(th);
            string? declaring = HighestFolder(th);
            if (declaring is not null)
            {
                string name = TypeName(th);
                if (!type.BaseType.IsNil) AddTypes(declaring, name + " (base type)", type.BaseType);
                foreach (var ih in type.GetInterfaceImplementations())
                    AddTypes(declaring, name + " (interface)", _md.GetInterfaceImplementation(ih).Interface);
                foreach (var fh in type.GetFields())
                {
                    var field = _md.GetFieldDefinition(fh);
                    AddType(declaring, $"{name}.{_md.GetString(field.Name)}", field.DecodeSignature(_types, null));
                }
            }
            foreach (var mh in type.GetMethods()) ScanMethod(mh);
        }
    }

    private void ScanMethod(MethodDefinitionHandle mh)
    {
        var method = _md.GetMethodDefinition(mh);
        string? folder = _methodFolder[mh] ?? HighestFolder(method.GetDeclaringType());
        if (folder is null) return;
        string name = MethodName(mh);
        var sig = method.DecodeSignature(_types, null);
        AddType(folder, name, sig.ReturnType);
        foreach (var p in sig.ParameterTypes) AddType(folder, name, p);
        if (method.RelativeVirtualAddress == 0) return;

        var body = _pe.GetMethodBody(method.RelativeVirtualAddress);
        if (!body.LocalSignature.IsNil)
        {
            var locals = _md.GetStandaloneSignature(body.LocalSignature).DecodeLocalSignature(_types, null);
            foreach (var t in locals) AddType(folder, name, t);
        }

        // Each instruction is charged to the file of the sequence point before it (a constructor may hold
        // field initialisers from several partial files).
        var points = new List<(int Offset, string? Folder)>();
        foreach (var sp in _pdb.GetMethodDebugInformation(mh.ToDebugInformationHandle()).GetSequencePoints())
            points.Add((sp.Offset, DocFolder(sp.Document) ?? folder));
        int next = 0;
        string here = folder;

        var il = body.GetILReader();
        while (il.RemainingBytes > 0)
        {
            int offset = il.Offset;
            while (next < points.Count && points[next].Offset <= offset) here = points[next++].Folder ?? folder;
            byte b = il.ReadByte();
            var op = b == 0xFE ? s_twoByte[il.ReadByte()] : s_oneByte[b];
            switch (op.OperandType)
            {
                case OperandType.InlineNone: break;
                case OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar: il.Offset += 1; break;
                case OperandType.InlineVar: il.Offset += 2; break;
                case OperandType.InlineI8 or OperandType.InlineR: il.Offset += 8; break;
                case OperandType.InlineSwitch: il.Offset += 4 * il.ReadInt32(); break;
                case OperandType.InlineMethod or OperandType.InlineField or OperandType.InlineType or OperandType.InlineTok:
                    AddToken(here, name, MetadataTokens.EntityHandle(il.ReadInt32()));
                    break;
                default: il.Offset += 4; break; // InlineBrTarget, InlineI, ShortInlineR, InlineString, InlineSig
            }
        }
    }

    private void AddToken(string from, string fromName, EntityHandle h)
    {
        switch (h.Kind)
        {
            case HandleKind.MethodDefinition:
                {
                    var mh = (MethodDefinitionHandle)h;
                    if ((_methodFolder[mh] ?? LowestFolder(_md.GetMethodDefinition(mh).GetDeclaringType())) is { } to)
                        Add(from, fromName, to, MethodName(mh));
                    break;
                }
            case HandleKind.MethodSpecification:
                {
                    var spec = _md.GetMethodSpecification((MethodSpecificationHandle)h);
                    AddToken(from, fromName, spec.Method);
                    foreach (var t in spec.DecodeSignature(_types, null)) AddType(from, fromName, t);
                    break;
                }
            case HandleKind.MemberReference:
                {
                    var member = _md.GetMemberReference((MemberReferenceHandle)h);
                    if (member.Parent.Kind is HandleKind.TypeSpecification or HandleKind.TypeDefinition) AddTypes(from, fromName, member.Parent);
                    else if (member.Parent.Kind == HandleKind.MethodDefinition) AddToken(from, fromName, member.Parent);
                    break;
                }
            case HandleKind.FieldDefinition:
                {
                    var field = _md.GetFieldDefinition((FieldDefinitionHandle)h);
                    if (LowestFolder(field.GetDeclaringType()) is { } to)
                        Add(from, fromName, to, $"{TypeName(field.GetDeclaringType())}.{_md.GetString(field.Name)}");
                    break;
                }
            default: AddTypes(from, fromName, h); break;
        }
    }

    private void AddTypes(string from, string fromName, EntityHandle h)
    {
        switch (h.Kind)
        {
            case HandleKind.TypeDefinition: AddType(from, fromName, [(TypeDefinitionHandle)h]); break;
            case HandleKind.TypeSpecification:
                AddType(from, fromName, _md.GetTypeSpecification((TypeSpecificationHandle)h).DecodeSignature(_types, null));
                break;
        }
    }

    private void AddType(string from, string fromName, ImmutableArray<TypeDefinitionHandle> types)
    {
        foreach (var th in types)
            if (LowestFolder(th) is { } to) Add(from, fromName, to, TypeName(th));
    }

    private void Add(string from, string fromName, string to, string toName)
    {
        if (from != to) References.Add(new Reference(from, fromName, to, toName));
    }

    private string MethodName(MethodDefinitionHandle h)
    {
        var m = _md.GetMethodDefinition(h);
        return $"{TypeName(m.GetDeclaringType())}.{_md.GetString(m.Name)}";
    }

    private string TypeName(TypeDefinitionHandle h)
    {
        var t = _md.GetTypeDefinition(h);
        string name = _md.GetString(t.Name);
        var outer = t.GetDeclaringType();
        if (!outer.IsNil) return $"{TypeName(outer)}.{name}";
        string ns = _md.GetString(t.Namespace);
        return ns.Length == 0 ? name : $"{ns}.{name}";
    }

    /// <summary>Decodes signatures into the assembly's own type definitions they mention (generic arguments, arrays, pointers included).</summary>
    private sealed class TypeCollector : ISignatureTypeProvider<ImmutableArray<TypeDefinitionHandle>, object?>
    {
        private static readonly ImmutableArray<TypeDefinitionHandle> s_none = [];

        public ImmutableArray<TypeDefinitionHandle> GetPrimitiveType(PrimitiveTypeCode typeCode) => s_none;
        public ImmutableArray<TypeDefinitionHandle> GetTypeFromDefinition(MetadataReader reader, TypeDefinitionHandle handle, byte rawTypeKind) => [handle];
        public ImmutableArray<TypeDefinitionHandle> GetTypeFromReference(MetadataReader reader, TypeReferenceHandle handle, byte rawTypeKind) => s_none;
        public ImmutableArray<TypeDefinitionHandle> GetTypeFromSpecification(MetadataReader reader, object? context, TypeSpecificationHandle handle, byte rawTypeKind) =>
            reader.GetTypeSpecification(handle).DecodeSignature(this, context);
        public ImmutableArray<TypeDefinitionHandle> GetSZArrayType(ImmutableArray<TypeDefinitionHandle> elementType) => elementType;
        public ImmutableArray<TypeDefinitionHandle> GetArrayType(ImmutableArray<TypeDefinitionHandle> elementType, ArrayShape shape) => elementType;
        public ImmutableArray<TypeDefinitionHandle> GetByReferenceType(ImmutableArray<TypeDefinitionHandle> elementType) => elementType;
        public ImmutableArray<TypeDefinitionHandle> GetPointerType(ImmutableArray<TypeDefinitionHandle> elementType) => elementType;
        public ImmutableArray<TypeDefinitionHandle> GetPinnedType(ImmutableArray<TypeDefinitionHandle> elementType) => elementType;
        public ImmutableArray<TypeDefinitionHandle> GetModifiedType(ImmutableArray<TypeDefinitionHandle> modifier, ImmutableArray<TypeDefinitionHandle> unmodifiedType, bool isRequired) => unmodifiedType;
        public ImmutableArray<TypeDefinitionHandle> GetGenericInstantiation(ImmutableArray<TypeDefinitionHandle> genericType, ImmutableArray<ImmutableArray<TypeDefinitionHandle>> typeArguments)
        {
            var all = genericType.ToBuilder();
            foreach (var a in typeArguments) all.AddRange(a);
            return all.ToImmutable();
        }
        public ImmutableArray<TypeDefinitionHandle> GetGenericMethodParameter(object? genericContext, int index) => s_none;
        public ImmutableArray<TypeDefinitionHandle> GetGenericTypeParameter(object? genericContext, int index) => s_none;
        public ImmutableArray<TypeDefinitionHandle> GetFunctionPointerType(MethodSignature<ImmutableArray<TypeDefinitionHandle>> signature)
        {
            var all = signature.ReturnType.ToBuilder();
            foreach (var p in signature.ParameterTypes) all.AddRange(p);
            return all.ToImmutable();
        }
    }
}
