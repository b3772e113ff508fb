using System.Diagnostics;

namespace GradFlow.Tests.Reporting.Html;

/// <summary>
/// Debian's Chromium, headless, as the report's real browser: dumps the DOM after the page's scripts ran, or takes a
/// screenshot. Flags as this machine needs them (root, no GPU, no network chatter). A missing browser fails the test
/// with the command that installs it; it never skips.
/// </summary>
internal static class HeadlessChromium
{
    public const string Path = "/usr/bin/chromium";

    public static string DumpDom(string htmlFile) => Run(htmlFile, "--dump-dom");

    public static void Screenshot(string htmlFile, string pngFile, int width = 1400, int height = 2000) =>
        Run(htmlFile, $"--screenshot={pngFile}", $"--window-size={width},{height}", "--hide-scrollbars");

    private static string Run(string htmlFile, params string[] extra)
    {
        Assert.True(File.Exists(Path), $"Chromium is not installed at {Path}: run `apt-get install -y chromium` (tests/run-tests.sh does).");
        var profile = Directory.CreateTempSubdirectory("gf-chromium").FullName;
        try
        {
            var psi = new ProcessStartInfo(Path)
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            };
            foreach (var a in new[]
                     {
                         "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", $"--user-data-dir={profile}",
                         "--virtual-time-budget=5000",
                     })
                psi.ArgumentList.Add(a);
            foreach (var a in extra) psi.ArgumentList.Add(a);
            psi.ArgumentList.Add(new Uri(System.IO.Path.GetFullPath(htmlFile)).AbsoluteUri);
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            // Generous: a loaded CI machine starts a browser slowly; this bounds a hang, it does not time the page.
            if (!p.WaitForExit(TimeSpan.FromMinutes(3)))
            {
                p.Kill(entireProcessTree: true);
                Assert.Fail("Chromium did not finish within 3 minutes.");
            }
            Assert.True(p.ExitCode == 0, $"Chromium exited with {p.ExitCode}: {stderr.Result}");
            return stdout.Result;
        }
        finally { Directory.Delete(profile, recursive: true); }
    }
}
