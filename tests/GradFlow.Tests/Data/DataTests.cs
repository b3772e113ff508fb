using GradFlow.Data;

namespace GradFlow.Tests.Data;

public class DataTests
{
    private static TensorDataset Range(int n) =>
        new(Tensor.Arange(n * 2, DType.Float32).Reshape(n, 2), Tensor.Arange(n, DType.Int64));

    [Fact]
    public void DigitsLoadsAllRowsWithLabelsAndScaledPixels()
    {
        var all = Digits.LoadAll();
        Assert.Equal(1797, all.Count);
        Assert.Equal([1797, 64], all.Inputs.Shape.ToArray());
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (long)i), all.Targets.ToArray<long>().Distinct().Order());
        Assert.Equal(0.0, all.Inputs.Min().Item());
        Assert.Equal(1.0, all.Inputs.Max().Item());
        var (train, test) = Digits.Load();
        Assert.Equal(1437, train.Count);
        Assert.Equal(360, test.Count);
        var (train2, _) = Digits.Load();
        Assert.Equal(train.Targets.ToArray<long>(), train2.Targets.ToArray<long>());
        Assert.Equal(all.Inputs.Sum().Item(), train.Inputs.Sum().Item() + test.Inputs.Sum().Item(), 1e-2);
    }

    [Fact]
    public void BatchShapesAndDropLast()
    {
        var ds = Range(10);
        var batches = new DataLoader(ds, batchSize: 4).ToList();
        Assert.Equal(3, batches.Count);
        Assert.Equal([4, 2], batches[0].Input.Shape.ToArray());
        Assert.Equal([2, 2], batches[2].Input.Shape.ToArray());
        Assert.Equal([8L, 9], batches[2].Target.ToArray<long>());
        var dropped = new DataLoader(ds, batchSize: 4, dropLast: true);
        Assert.Equal(2, dropped.Count);
        Assert.Equal(2, dropped.Count());
        var full = new DataLoader(ds, batchSize: 100).Single();
        Assert.Equal([10, 2], full.Input.Shape.ToArray());
        var stochastic = new DataLoader(ds, batchSize: 1).ToList();
        Assert.Equal(10, stochastic.Count);
        Assert.Equal([1, 2], stochastic[0].Input.Shape.ToArray());
        Assert.Empty(new DataLoader(Range(3), batchSize: 4, dropLast: true));
    }

    [Fact]
    public void ShufflingIsReproducibleAndChangesEachEpoch()
    {
        var ds = Range(50);
        long[] Epoch(DataLoader l) => l.SelectMany(b => b.Target.ToArray<long>()).ToArray();
        var a = new DataLoader(ds, 8, shuffle: true, generator: new Generator(5));
        var b = new DataLoader(ds, 8, shuffle: true, generator: new Generator(5));
        var a1 = Epoch(a);
        Assert.Equal(a1, Epoch(b));
        Assert.Equal(Enumerable.Range(0, 50).Select(i => (long)i), a1.Order());
        Assert.NotEqual(Enumerable.Range(0, 50).Select(i => (long)i), a1);
        Assert.NotEqual(a1, Epoch(a));
        // Inputs travel with their targets.
        foreach (var (x, y) in new DataLoader(ds, 7, shuffle: true, generator: new Generator(1)))
            Assert.Equal(y.ToArray<long>().Select(v => 2.0 * v), x.Select(1, 0).ToDoubleArray());
    }

    [Fact]
    public void RandomSplitIsADisjointCoverAndSeeded()
    {
        var ds = Range(20);
        var parts = Dataset.RandomSplit(ds, [12, 5, 3], new Generator(3));
        Assert.Equal([12, 5, 3], parts.Select(p => p.Count));
        Assert.Equal(Enumerable.Range(0, 20), parts.SelectMany(p => p.Indices).Order());
        var again = Dataset.RandomSplit(ds, [12, 5, 3], new Generator(3));
        Assert.Equal(parts[1].Indices, again[1].Indices);
        var byFraction = Dataset.RandomSplit(ds, [0.5, 0.3, 0.2], new Generator(3));
        Assert.Equal([10, 6, 4], byFraction.Select(p => p.Count));
        var (x, y) = parts[0].GetBatch([0, 1]);
        Assert.Equal([2, 2], x.Shape.ToArray());
        Assert.Equal(parts[0][1].Target.Item(), y.GetFlat(1));
        Assert.Throws<ArgumentException>(() => Dataset.RandomSplit(ds, [10, 5], new Generator(1)));
    }

    [Fact]
    public void GenericDatasetStacksExamples()
    {
        var sub = new Subset(Range(6), [5, 0]);
        var loader = new DataLoader(sub.WithTransform(new Normalize([1.0], [2.0])), batchSize: 2);
        var (x, y) = loader.Single();
        Assert.Equal([5L, 0], y.ToArray<long>());
        Assert.Equal([4.5, 5, -0.5, 0], x.ToDoubleArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => sub.Get(2));
    }

    [Fact]
    public void CsvReadsFeaturesAndLabelsAndNamesBadCells()
    {
        var ds = Csv.Read(new StringReader("a,b,label\n1,2.5,0\n-3,4e1,2\n"), hasHeader: true);
        Assert.Equal([1.0, 2.5, -3, 40], ds.Inputs.ToDoubleArray());
        Assert.Equal([0L, 2], ds.Targets.ToArray<long>());
        var first = Csv.Read(new StringReader("1,2,3\n0,5,6\n"), labelColumn: 0);
        Assert.Equal([2.0, 3, 5, 6], first.Inputs.ToDoubleArray());
        var ex = Assert.Throws<InvalidDataException>(() => Csv.Read(new StringReader("1,2\n1,x\n")));
        Assert.Contains("line 2, column 2", ex.Message);
        Assert.Contains("3 columns", Assert.Throws<InvalidDataException>(() => Csv.Read(new StringReader("1,2\n1,2,3\n"))).Message);
        Assert.Contains("class label", Assert.Throws<InvalidDataException>(() => Csv.Read(new StringReader("1,2.5\n"))).Message);
    }

    [Fact]
    public void TransformsAreSeededAndShapePreserving()
    {
        var img = Tensor.Arange(2 * 4 * 4, DType.Float32).Reshape(2, 4, 4);
        var crop1 = new RandomCrop(4, padding: 2, generator: new Generator(7));
        var crop2 = new RandomCrop(4, padding: 2, generator: new Generator(7));
        for (int i = 0; i < 5; i++)
        {
            var a = crop1.Apply(img);
            Assert.Equal([2, 4, 4], a.Shape.ToArray());
            Assert.Equal(a.ToDoubleArray(), crop2.Apply(img).ToDoubleArray());
        }
        var noPad = new RandomCrop(4, 0, new Generator(1)).Apply(img);
        Assert.Equal(img.ToDoubleArray(), noPad.ToDoubleArray());
        var small = new RandomCrop(2, 0, new Generator(2)).Apply(img.Select(0, 0));
        Assert.Equal([2, 2], small.Shape.ToArray());

        var flip = new RandomHorizontalFlip(1.0).Apply(img);
        Assert.Equal([3.0, 2, 1, 0], flip.Select(0, 0).Select(0, 0).ToDoubleArray());
        Assert.Same(img, new RandomHorizontalFlip(0.0).Apply(img));

        var norm = new Normalize([1, 2], [2, 4]).Apply(img);
        Assert.Equal((img.GetFlat(16) - 2) / 4, norm.GetFlat(16), 6);
        Assert.Throws<ArgumentException>(() => new Normalize([1, 2, 3], [1, 1, 1]).Apply(img));
    }
}
