using GradFlow.NN;

namespace GradFlow.Tests.Architecture;

/// <summary>
/// The dependency arrows of docs/ARCHITECTURE.md, checked on the compiled assembly: no code in a lower
/// layer's folder names a method, field or type of a higher one.
/// </summary>
public class LayerTests
{
    private static readonly Lazy<ReferenceScanner> s_scan = new(() => new ReferenceScanner(typeof(Tensor).Assembly));

    [Fact]
    public void NoLowerLayerNamesAHigherOne()
    {
        var violations = s_scan.Value.References
            .Where(r => !LayerMap.Allowed(r.FromFolder, r.ToFolder))
            .Select(r => r.ToString())
            .Distinct()
            .Order(StringComparer.Ordinal)
            .ToList();
        Assert.True(violations.Count == 0,
            $"{violations.Count} references run against the layers (lower layer: member -> higher layer: what it names):\n" + string.Join("\n", violations));
    }

    [Fact]
    public void EverySourceFolderHasARank()
    {
        Assert.True(s_scan.Value.UnmappedFolders.Count == 0,
            "folders under src/GradFlow missing from LayerMap.Rank: " + string.Join(", ", s_scan.Value.UnmappedFolders));
    }

    // The scanner itself: without these, an empty reference list would pass the test above.
    [Fact]
    public void MethodsOfThePartialTensorAreMappedToTheirOwnFolders()
    {
        var scan = s_scan.Value;
        Assert.Equal("Tensors", scan.FolderOfMethod(typeof(Tensor), nameof(Tensor.Item)));
        Assert.Equal("Autograd", scan.FolderOfMethod(typeof(Tensor), nameof(Tensor.Backward)));
        Assert.Equal("Ops", scan.FolderOfMethod(typeof(Tensor), nameof(Tensor.Clone)));
        Assert.Equal("NN", scan.FolderOfMethod(typeof(Linear), nameof(Linear.Forward)));
    }

    [Fact]
    public void KnownReferencesOfEachKindAreFound()
    {
        var refs = s_scan.Value.References;
        // A call from one part of the partial Tensor to another folder: an op records itself into the graph.
        Assert.Contains(new Reference("Ops", "GradFlow.Tensor.Clone", "Autograd", "GradFlow.Autograd.Record"), refs);
        // A field read (ldfld) of the part of Tensor that lives in Tensors, from the part in Ops.
        Assert.Contains(new Reference("Ops", "GradFlow.Tensor.Clone", "Tensors", "GradFlow.Tensor.ShapeArray"), refs);
        // A base type and an interface.
        Assert.Contains(new Reference("Ops", "GradFlow.ReluBackward (base type)", "Autograd", "GradFlow.Node"), refs);
        Assert.Contains(new Reference("Diagnostics", "GradFlow.Diagnostics.AnomalyMode (interface)", "Autograd", "GradFlow.IAutogradObserver"), refs);
        // A field's type.
        Assert.Contains(new Reference("NN", "GradFlow.NN.Linear.<Weight>k__BackingField", "Tensors", "GradFlow.Tensor"), refs);
    }

    [Fact]
    public void TheRuleRejectsUpwardAndSiblingReferences()
    {
        Assert.False(LayerMap.Allowed("Tensors", "Autograd"));
        Assert.False(LayerMap.Allowed("Kernels", "Tensors"));
        Assert.False(LayerMap.Allowed("Optim", "Data"));
        Assert.False(LayerMap.Allowed("Diagnostics", "Reporting"));
        Assert.True(LayerMap.Allowed("Data", "Formats"));
        Assert.True(LayerMap.Allowed("Autograd", "Ops"));
        Assert.True(LayerMap.Allowed("Ops", "Autograd"));
        Assert.Equal("Diagnostics", LayerMap.FolderOf("/work/src/GradFlow/Diagnostics/Monitor/GradientMonitor.cs"));
        Assert.Null(LayerMap.FolderOf("/work/src/GradFlow.Cli/Program.cs"));
    }
}
