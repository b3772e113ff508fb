using System.Text.RegularExpressions;
using GradFlow.Reporting;
using GradFlow.Reporting.Html;

namespace GradFlow.Tests.Reporting.Html;

public class HtmlReportTests
{
    [Fact]
    public void ReportOfARunHasEveryChartWithData()
    {
        var html = HtmlReport.Render([ReportTestRuns.Trained("relu", sigmoid: false)]);
        foreach (var id in new[] { "run0-loss", "run0-gradnorm", "run0-lr", "run0-flow", "run0-heat", "run0-backward", "run0-ratio", "run0-activations", "run0-hist-0" })
        {
            var m = Regex.Match(html, $"<figure class=\"chart [a-z]+\" id=\"{id}\" data-points=\"(\\d+)\"");
            Assert.True(m.Success, $"chart {id} missing");
            Assert.True(int.Parse(m.Groups[1].Value) > 0, $"chart {id} has no data");
        }
        Assert.Contains("<title>4: mean |g| ", html, StringComparison.Ordinal); // bars carry their layer and value as a tooltip
    }

    [Fact]
    public void CurvatureIsChartedWhereMeasured()
    {
        var run = ReportTestRuns.Trained("relu", sigmoid: false, curvature: true);
        var probed = run.Steps.Where(s => s.Curvature is not null).ToList();
        Assert.Equal(3, probed.Count); // steps 10, 20 and 30
        var html = HtmlReport.Render([run]);
        foreach (var id in new[] { "run0-sharpness", "run0-density", "run0-landscape" })
        {
            var m = Regex.Match(html, $"<figure class=\"chart [a-z]+\" id=\"{id}\" data-points=\"(\\d+)\"");
            Assert.True(m.Success, $"chart {id} missing");
            Assert.True(int.Parse(m.Groups[1].Value) > 0, $"chart {id} has no data");
        }
        // Sharpness and SGD's threshold, 2(1 + momentum)/lr = 38 at lr 0.1 and momentum 0.9, at each probed step.
        var data = Regex.Match(html, "id=\"run0-sharpness\".*?<script type=\"application/json\" class=\"gf-data\">(.*?)</script>", RegexOptions.Singleline);
        using var doc = System.Text.Json.JsonDocument.Parse(data.Groups[1].Value);
        Assert.Equal([10.0, 20, 30], doc.RootElement.GetProperty("x")[0].EnumerateArray().Select(e => e.GetDouble()));
        var charted = doc.RootElement.GetProperty("y")[0].EnumerateArray().Select(e => e.GetDouble()).ToArray();
        for (int i = 0; i < probed.Count; i++) Assert.Equal(probed[i].Curvature!.Sharpness!.Value, charted[i], probed[i].Curvature!.Sharpness!.Value * 1e-5); // 6 digits in the page
        Assert.All(doc.RootElement.GetProperty("y")[1].EnumerateArray(), e => Assert.Equal(38, e.GetDouble(), 6));
        // A run without curvature has none of these charts.
        var plain = HtmlReport.Render([ReportTestRuns.Trained("relu", sigmoid: false)]);
        Assert.DoesNotContain("-sharpness\"", plain, StringComparison.Ordinal);
        Assert.DoesNotContain("-density\"", plain, StringComparison.Ordinal);
    }

    [Fact]
    public void ReportIsSelfContained()
    {
        var html = HtmlReport.Render([ReportTestRuns.Trained("a", false), ReportTestRuns.Trained("b", true)]);
        Assert.DoesNotMatch(new Regex("(src|href)=\"(https?:)?//", RegexOptions.IgnoreCase), html);
        Assert.DoesNotContain("<link", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("@import", html, StringComparison.Ordinal);
        Assert.DoesNotContain("url(", html, StringComparison.Ordinal);
        Assert.Contains("id=\"compare\"", html, StringComparison.Ordinal);
        Assert.Contains("id=\"compare-flow\"", html, StringComparison.Ordinal);
        Assert.Contains("id=\"run1-activations\"", html, StringComparison.Ordinal);
    }

    [Fact]
    public void LongDeepRunIsDownsampledToABoundedPage()
    {
        var run = ReportTestRuns.Synthetic(steps: 10_000, layers: 50);
        var html = HtmlReport.Render([run], new HtmlReportOptions { MaxPoints = 400, MaxHistogramLayers = 50 });
        Assert.InRange(html.Length, 10_000, 4_000_000);
        // The heatmap's data holds 400 columns, not 10,000, and the NaN step's bucket is marked non-finite, not averaged away.
        var heat = Regex.Match(html, "id=\"run0-heat\".*?<script type=\"application/json\" class=\"gf-data\">(.*?)</script>", RegexOptions.Singleline);
        Assert.True(heat.Success);
        using var doc = System.Text.Json.JsonDocument.Parse(heat.Groups[1].Value);
        Assert.Equal(400, doc.RootElement.GetProperty("steps").GetArrayLength());
        Assert.Equal(50, doc.RootElement.GetProperty("rows").GetArrayLength());
        Assert.Contains(doc.RootElement.GetProperty("v")[0].EnumerateArray(), v => v.ValueKind == System.Text.Json.JsonValueKind.Null);
        Assert.Contains("1 steps", html, StringComparison.Ordinal); // the NaN step is counted in the summary
    }

    [Fact]
    public void FindingsAreShownWithEvidenceFixesAndLinksToTheirCharts()
    {
        var run = ReportTestRuns.Trained("sigmoid", sigmoid: true, steps: 60);
        var finding = new GradFlow.Diagnostics.Finding
        {
            Kind = GradFlow.Diagnostics.FindingKind.VanishingGradients, Severity = GradFlow.Diagnostics.Severity.Error, Title = "vanishing <gradients>",
            FirstStep = 3, LastStep = 60, Layers = ["0"], Confidence = 0.9, Explanation = "the gradient shrinks",
            Evidence = [new GradFlow.Diagnostics.Evidence("ratio", 1e-9, 1e-3, "AUTOTRAINER")], Fixes = [new GradFlow.Diagnostics.Fix(1, "use ReLU", "it passes gradient")],
        };
        var html = HtmlReport.Render([run with { Findings = [finding] }, ReportTestRuns.Trained("relu", sigmoid: false) with { Findings = [] }]);
        Assert.Contains("<div class=\"finding error\">", html, StringComparison.Ordinal);
        Assert.Contains("vanishing &lt;gradients&gt;", html, StringComparison.Ordinal);
        Assert.Contains("evidence: ", html, StringComparison.Ordinal);
        Assert.Contains("use ReLU", html, StringComparison.Ordinal);
        Assert.Contains("<a href=\"#run0-flow\" data-chart=\"run0-flow\">", html, StringComparison.Ordinal);
        Assert.Contains("No finding", html, StringComparison.Ordinal);
    }

    [Fact]
    public void BadInputIsRefusedByName()
    {
        Assert.Contains("no runs", Assert.Throws<ArgumentException>(() => HtmlReport.Render([])).Message, StringComparison.Ordinal);
        var empty = new ReportRun("empty", []);
        Assert.Contains("'empty' has no recorded steps", Assert.Throws<ArgumentException>(() => HtmlReport.Render([empty])).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => HtmlReport.Render([ReportTestRuns.Synthetic(3, 2)], new HtmlReportOptions { MaxPoints = 1 }));
    }

    [Fact]
    public void ReportReadsARunLogAndIsWrittenAtomically()
    {
        var dir = Directory.CreateTempSubdirectory("gf-report").FullName;
        try
        {
            var path = Path.Combine(dir, "run.jsonl");
            using (var writer = new RunLogWriter(path))
                foreach (var r in ReportTestRuns.Synthetic(20, 3).Steps) writer.Write(r);
            var run = ReportRun.FromRunLog(path);
            Assert.Equal("run", run.Name);
            Assert.Equal(20, run.Steps.Count);
            var out1 = Path.Combine(dir, "report.html");
            HtmlReport.Write(out1, [run]);
            Assert.StartsWith("<!DOCTYPE html>", File.ReadAllText(out1), StringComparison.Ordinal);
            Assert.Single(Directory.GetFiles(dir, "report.html*"));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
