using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using GradFlow.Reporting.Html;

namespace GradFlow.Tests.Reporting.Html;

/// <summary>The report in a real browser: its scripts run without error, every chart has data, links find their charts.</summary>
public class ReportBrowserTests
{
    [Fact]
    public void ReportRendersInChromiumWithoutScriptErrors()
    {
        var dir = Directory.CreateTempSubdirectory("gf-report-browser").FullName;
        try
        {
            var file = Path.Combine(dir, "report.html");
            HtmlReport.Write(file, [ReportTestRuns.Trained("relu", sigmoid: false, curvature: true).Diagnosed(), ReportTestRuns.Trained("sigmoid", sigmoid: true, steps: 80).Diagnosed(), ReportTestRuns.Synthetic(500, 12).Diagnosed()]);
            var dom = HeadlessChromium.DumpDom(file);
            var check = Regex.Match(dom, "<pre id=\"gf-selfcheck\" hidden=\"\">(.*?)</pre>", RegexOptions.Singleline);
            Assert.True(check.Success && check.Groups[1].Value.Length > 0, "the page's self-check did not run (script failed before it)");
            using var result = JsonDocument.Parse(WebUtility.HtmlDecode(check.Groups[1].Value));
            var root = result.RootElement;
            Assert.True(root.GetProperty("charts").GetInt32() >= 23, root.ToString());
            foreach (var chart in new[] { "run0-sharpness", "run0-density", "run0-landscape" })
                Assert.Contains($"id=\"{chart}\"", dom, StringComparison.Ordinal); // the curvature charts, counted above and none empty
            Assert.Equal(0, root.GetProperty("empty").GetArrayLength());
            Assert.Equal(0, root.GetProperty("errors").GetArrayLength());
            Assert.Equal(0, root.GetProperty("brokenLinks").GetArrayLength());
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
