using GradFlow.Cli;
using GradFlow.Formats;
using GradFlow.Reporting;

namespace GradFlow.Cli.Tests;

/// <summary>The gradflow verbs, run in-process: exit codes, one-line errors, files written.</summary>
public sealed class CliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gf-cli").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        int code = CliApp.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Theory]
    [InlineData("--help")]
    [InlineData("demo", "--help")]
    [InlineData("report", "--help")]
    [InlineData("inspect", "--help")]
    [InlineData("doctor", "--help")]
    [InlineData("train", "--help")]
    public void EveryVerbHasHelp(params string[] args)
    {
        var (code, output, _) = Run(args);
        Assert.Equal(0, code);
        Assert.Contains("Usage:", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("demo", "--epoch", "3")]
    [InlineData("demo", "--bogus", "1")]
    [InlineData("demo", "--epochs", "0")]
    [InlineData("demo", "--epochs", "many")]
    [InlineData("demo", "nonsense")]
    [InlineData("frobnicate")]
    public void BadCommandLinesAreOneLineAndExitCode2(params string[] args)
    {
        var (code, output, error) = Run(args);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        var lines = error.TrimEnd().Split('\n');
        Assert.Equal(2, lines.Length); // the problem, then where to find help
        Assert.StartsWith("gradflow: ", lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
    }

    [Fact]
    public void DemoTrainsAndWritesRunLogAndReport()
    {
        var logDir = Path.Combine(_dir, "run");
        var report = Path.Combine(_dir, "demo.html");
        var (code, output, error) = Run("demo", "--epochs", "2", "--log-dir", logDir, "--report", report);
        Assert.True(code == 0, error);
        Assert.Contains("test accuracy", output, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(logDir, "runlog.jsonl")));
        Assert.Contains("id=\"run0-heat\"", File.ReadAllText(report), StringComparison.Ordinal);
    }

    [Fact]
    public void ScenarioDemoTrainsEveryVariantIntoOneReport()
    {
        var report = Path.Combine(_dir, "saddle.html");
        var (code, output, error) = Run("demo", "saddle", "--epochs", "1", "--report", report);
        Assert.True(code == 0, error);
        Assert.Contains("all-zero start", output, StringComparison.Ordinal);
        Assert.Contains("random start", output, StringComparison.Ordinal);
        Assert.Contains("id=\"compare\"", File.ReadAllText(report), StringComparison.Ordinal);
    }

    [Fact]
    public void UnwritableLogDirIsOneLine()
    {
        var (code, _, error) = Run("demo", "--epochs", "1", "--log-dir", "/proc/gradflow-nope");
        Assert.Equal(2, code);
        Assert.StartsWith("gradflow: --log-dir '/proc/gradflow-nope' cannot be written", error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
    }

    [Fact]
    public void ReportOfSeveralRunLogsAndOfAHalfWrittenOne()
    {
        var a = Path.Combine(_dir, "a");
        var b = Path.Combine(_dir, "b");
        Assert.Equal(0, Run("demo", "--epochs", "1", "--log-dir", a).Code);
        Assert.Equal(0, Run("demo", "--epochs", "1", "--seed", "3", "--log-dir", b).Code);
        // Tear b's last line, as a killed training run would leave it: the report still comes out.
        var log = Path.Combine(b, "runlog.jsonl");
        var bytes = File.ReadAllBytes(log);
        File.WriteAllBytes(log, bytes[..^40]);
        var html = Path.Combine(_dir, "r.html");
        var (code, output, error) = Run("report", a, log, "-o", html);
        Assert.True(code == 0, error);
        Assert.Contains("2 runs", output, StringComparison.Ordinal);
        var page = File.ReadAllText(html);
        Assert.Contains(">a</a>", page, StringComparison.Ordinal);
        Assert.Contains(">b</a>", page, StringComparison.Ordinal);
    }

    [Fact]
    public void ReportRefusesMissingAndDamagedRunLogsInOneLine()
    {
        var (code, _, error) = Run("report", Path.Combine(_dir, "missing.jsonl"));
        Assert.Equal(2, code);
        Assert.Contains("does not exist", error, StringComparison.Ordinal);
        var bad = Path.Combine(_dir, "bad.jsonl");
        File.WriteAllText(bad, "this is not a run log\n");
        (code, _, error) = Run("report", bad, "-o", Path.Combine(_dir, "x.html"));
        Assert.Equal(2, code);
        Assert.Contains("bad.jsonl", error, StringComparison.Ordinal);
        Assert.Single(error.TrimEnd().Split('\n'));
    }

    [Fact]
    public void DoctorGatesOnErrorFindingsAndSpeaksJson()
    {
        var healthy = Path.Combine(_dir, "healthy");
        var broken = Path.Combine(_dir, "broken");
        Assert.Equal(0, Run("demo", "--epochs", "3", "--log-dir", healthy).Code);
        Assert.Equal(0, Run("demo", "--epochs", "2", "--lr", "5", "--log-dir", broken).Code);
        var (code, output, error) = Run("doctor", healthy);
        Assert.True(code == 0, output + error);
        Assert.DoesNotContain("not judged", output, StringComparison.Ordinal);
        // The same log from step 11 on, as a run resumed at step 10 would have written it: no claim about its initialisation.
        var resumed = Path.Combine(_dir, "resumed.jsonl");
        File.WriteAllLines(resumed, File.ReadLines(ReportCommand.Resolve(healthy)).Where(line =>
        {
            using var json = System.Text.Json.JsonDocument.Parse(line);
            return json.RootElement.GetProperty("type").GetString() != "step" || json.RootElement.GetProperty("step").GetInt64() > 10;
        }));
        (code, output, error) = Run("doctor", resumed);
        Assert.True(code == 0, output + error);
        Assert.Contains("The log starts at step 11, after training began (a resumed run): the initialisation was not judged.", output, StringComparison.Ordinal);
        Assert.Equal(0, Run("report", resumed, "-o", Path.Combine(_dir, "resumed.html")).Code);
        Assert.Contains("The records start at step 11, after training began (a resumed run): the initialisation was not judged.",
            File.ReadAllText(Path.Combine(_dir, "resumed.html")), StringComparison.Ordinal);
        (code, output, _) = Run("doctor", broken);
        Assert.Equal(1, code);
        Assert.Contains("[error]", output, StringComparison.Ordinal);
        (code, output, _) = Run("doctor", broken, "--json");
        Assert.Equal(1, code);
        using var doc = System.Text.Json.JsonDocument.Parse(output);
        Assert.Contains(doc.RootElement.EnumerateArray(), f => f.GetProperty("Severity").GetString() == "Error");
        Assert.Equal(2, Run("doctor", Path.Combine(_dir, "nothing")).Code);
    }

    [Fact]
    public void InspectListsTensorsWithNormsAndNonFiniteCounts()
    {
        var file = Path.Combine(_dir, "w.safetensors");
        var w = Tensor.FromArray(new float[] { 3, 4, float.NaN, 0 }, [2, 2]);
        SafeTensors.Save(file, new Dictionary<string, Tensor> { ["layer.weight"] = w, ["layer.bias"] = Tensor.FromArray(new float[] { 1, 1 }) },
            new Dictionary<string, string> { ["note"] = "test" });
        var (code, output, error) = Run("inspect", file);
        Assert.True(code == 0, error);
        Assert.Contains("2 tensors, 6 values, 1 with NaN/Inf", output, StringComparison.Ordinal);
        Assert.Contains("layer.weight", output, StringComparison.Ordinal);
        Assert.Contains("[2, 2]", output, StringComparison.Ordinal);
        Assert.Contains("1.4142", output, StringComparison.Ordinal); // the bias's norm
        Assert.Equal(2, Run("inspect", Path.Combine(_dir, "none.safetensors")).Code);
        File.WriteAllBytes(file, [1, 2, 3]);
        (code, _, error) = Run("inspect", file);
        Assert.Equal(2, code);
        Assert.Contains("w.safetensors", error, StringComparison.Ordinal);
    }
}
