namespace GradFlow.Tests.Formats;

/// <summary>
/// Several thousand damaged copies per reader of files GradFlow wrote itself; every read must succeed or
/// throw InvalidDataException naming the file. Bounded by a case count, not by time, so a loaded machine
/// runs the same cases. GRADFLOW_FUZZ_CASES raises the count; tests/GradFlow.Fuzz runs 100,000 and more
/// with hang and crash detection.
/// </summary>
public sealed class DamagedFileFuzzTests : IDisposable
{
    private readonly DamagedFiles _files = new();

    public void Dispose() => _files.Dispose();

    private static int Cases => int.TryParse(Environment.GetEnvironmentVariable("GRADFLOW_FUZZ_CASES"), out int n) && n > 0 ? n : 3000;

    public static TheoryData<string> Readers => new(DamagedFiles.Readers);

    [Theory]
    [MemberData(nameof(Readers))]
    public void DamagedFilesGiveInvalidDataExceptionNamingTheFile(string reader)
    {
        var failures = new List<string>();
        for (int seed = 0; seed < Cases && failures.Count < 5; seed++)
        {
            try
            {
                _files.ReadCase(reader, seed);
            }
            catch (Exception ex)
            {
                failures.Add($"case {seed}: {ex}");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void MutationsDamageTheFile()
    {
        // A mutator that returned the original would make the test above pass without reading anything damaged.
        foreach (var reader in DamagedFiles.Readers)
        {
            var original = _files.Original(reader);
            int changed = Enumerable.Range(0, 200).Count(seed => !FileMutator.Mutate(original, seed, reader is "SafeTensors" or "SafeTensorsAllTypes" or "Checkpoint").SequenceEqual(original));
            Assert.True(changed >= 190, $"{reader}: only {changed} of 200 mutations changed the file.");
        }
    }
}
