using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using GradFlow.Formats;

namespace GradFlow.Reporting.Html;

/// <summary>One line of a line chart: y per x (NaN leaves a gap), and an optional min/max band behind it.</summary>
internal sealed record Series(string Name, double[] X, double[] Y, double[]? Lower = null, double[]? Upper = null, bool Dashed = false);

/// <summary>A horizontal reference line (a threshold, 2/lr) drawn across a chart.</summary>
internal sealed record ReferenceLine(string Label, double Y);

/// <summary>
/// Charts as inline SVG: the page needs no script to show them, a browser draws thousands of points at once,
/// and every value a reader may hover is in the page (native &lt;title&gt; tooltips on bars, and a small script
/// that reads each chart's data for line charts and heatmaps). Heatmaps are PNG images inside the SVG: an image
/// of a few thousand cells is far lighter than as many rectangles.
/// </summary>
internal static class Charts
{
    private const int Width = 720, Height = 260, Left = 64, Right = 16, Top = 28, Bottom = 36;
    private static readonly string[] s_palette =
        ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];

    public static string Color(int i) => s_palette[i % s_palette.Length];

    /// <summary>A line chart; with <paramref name="logY"/> the values are drawn on a log10 axis (non-positive ones are gaps).</summary>
    public static string Line(string id, string title, string xLabel, string yLabel, IReadOnlyList<Series> series, bool logY,
        IReadOnlyList<ReferenceLine>? references = null)
    {
        var ys = series.SelectMany(s => s.Y.Concat(s.Lower ?? []).Concat(s.Upper ?? [])).Concat(references?.Select(r => r.Y) ?? []);
        var (y0, y1) = Range(ys, logY);
        var (x0, x1) = Range(series.SelectMany(s => s.X), log: false);
        var sb = Begin(id, "line", title, series.Sum(s => s.Y.Count(double.IsFinite)));
        sb.Append(CultureInfo.InvariantCulture, $"<svg viewBox=\"0 0 {Width} {Height}\" role=\"img\" aria-label=\"{Esc(title)}\" data-x0=\"{x0:R}\" data-x1=\"{x1:R}\" data-y0=\"{y0:R}\" data-y1=\"{y1:R}\" data-log=\"{(logY ? 1 : 0)}\">");
        Axes(sb, x0, x1, y0, y1, logY, xLabel, yLabel);
        for (int s = 0; s < series.Count; s++)
        {
            var se = series[s];
            string color = Color(s);
            sb.Append(CultureInfo.InvariantCulture, $"<g class=\"series\" data-series=\"{s}\"><title>{Esc(se.Name)}</title>");
            if (se.Lower is not null && se.Upper is not null)
                sb.Append(CultureInfo.InvariantCulture, $"<path class=\"band\" fill=\"{color}\" d=\"{BandPath(se.X, se.Lower, se.Upper, x0, x1, y0, y1, logY)}\"/>");
            sb.Append(CultureInfo.InvariantCulture, $"<path class=\"trace{(se.Dashed ? " dashed" : "")}\" stroke=\"{color}\" d=\"{LinePath(se.X, se.Y, x0, x1, y0, y1, logY)}\"/></g>");
        }
        foreach (var r in references ?? [])
        {
            double y = PY(r.Y, y0, y1, logY);
            if (double.IsFinite(y))
                sb.Append(CultureInfo.InvariantCulture, $"<g class=\"ref\"><line x1=\"{Left}\" x2=\"{Width - Right}\" y1=\"{y:0.#}\" y2=\"{y:0.#}\"/><text x=\"{Width - Right - 4}\" y=\"{y - 4:0.#}\" text-anchor=\"end\">{Esc(r.Label)}</text></g>");
        }
        sb.Append("<g class=\"hover\"></g></svg>");
        Legend(sb, series.Select(s => s.Name).ToArray());
        Data(sb, new { x = series.Select(s => s.X).ToArray(), names = series.Select(s => s.Name).ToArray(), y = series.Select(s => s.Y).ToArray() });
        return End(sb);
    }

    /// <summary>Grouped bars per category (e.g. mean and max |g| per layer) on a log10 axis; each bar carries its value as a tooltip.</summary>
    public static string Bars(string id, string title, string yLabel, IReadOnlyList<string> categories, IReadOnlyList<(string Name, double[] Values)> groups)
    {
        var (y0, y1) = Range(groups.SelectMany(g => g.Values), log: true);
        int height = Height + 30; // room for slanted layer names
        var sb = Begin(id, "bars", title, groups.Sum(g => g.Values.Count(v => double.IsFinite(v) && v > 0)));
        sb.Append(CultureInfo.InvariantCulture, $"<svg viewBox=\"0 0 {Width} {height}\" role=\"img\" aria-label=\"{Esc(title)}\">");
        Axes(sb, 0, 1, y0, y1, log: true, xLabel: null, yLabel, drawX: false);
        double band = (Width - Left - Right) / (double)Math.Max(categories.Count, 1);
        double barW = band * 0.8 / Math.Max(groups.Count, 1);
        double baseY = Height - Bottom;
        for (int g = 0; g < groups.Count; g++)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<g class=\"series\" data-series=\"{g}\" fill=\"{Color(g)}\">");
            for (int c = 0; c < categories.Count; c++)
            {
                double v = groups[g].Values[c];
                double y = PY(v, y0, y1, log: true);
                if (!double.IsFinite(y)) continue;
                double x = Left + c * band + band * 0.1 + g * barW;
                sb.Append(CultureInfo.InvariantCulture, $"<rect x=\"{x:0.##}\" y=\"{y:0.##}\" width=\"{Math.Max(barW - 1, 1):0.##}\" height=\"{Math.Max(baseY - y, 0.5):0.##}\"><title>{Esc(categories[c])}: {Esc(groups[g].Name)} {Num(v)}</title></rect>");
            }
            sb.Append("</g>");
        }
        int every = Math.Max(1, (int)Math.Ceiling(categories.Count / 40.0));
        for (int c = 0; c < categories.Count; c += every)
        {
            double x = Left + (c + 0.5) * band;
            sb.Append(CultureInfo.InvariantCulture, $"<text class=\"tick\" transform=\"translate({x:0.#},{baseY + 10}) rotate(40)\">{Esc(Short(categories[c]))}</text>");
        }
        sb.Append("</svg>");
        Legend(sb, groups.Select(g => g.Name).ToArray());
        return End(sb);
    }

    /// <summary>
    /// A heatmap of rows (layers, buckets) by columns (steps): log10 of each value mapped to a colour scale,
    /// NaN cells grey, non-finite markers red. Hover shows the row, the column's step and the value.
    /// </summary>
    public static string Heatmap(string id, string title, string xLabel, IReadOnlyList<string> rows, double[] columnSteps, double[,] values, bool log)
    {
        int nr = rows.Count, nc = columnSteps.Length;
        var finite = new List<double>();
        foreach (double v in values) if (double.IsFinite(v) && (!log || v > 0)) finite.Add(log ? Math.Log10(v) : v);
        double lo = finite.Count > 0 ? finite.Min() : 0, hi = finite.Count > 0 ? finite.Max() : 1;
        if (hi - lo < 1e-12) hi = lo + 1;
        var rgb = new byte[Math.Max(nr, 1) * Math.Max(nc, 1) * 3];
        for (int r = 0; r < nr; r++)
            for (int c = 0; c < nc; c++)
            {
                double v = values[r, c];
                var (cr, cg, cb) = double.IsNaN(v) ? ((byte)230, (byte)230, (byte)230)
                    : double.IsInfinity(v) ? ((byte)220, (byte)20, (byte)60)
                    : log && v <= 0 ? ((byte)0, (byte)0, (byte)0)
                    : Viridis(((log ? Math.Log10(v) : v) - lo) / (hi - lo));
                int o = (r * nc + c) * 3;
                (rgb[o], rgb[o + 1], rgb[o + 2]) = (cr, cg, cb);
            }
        string png = nr > 0 && nc > 0 ? Convert.ToBase64String(PngWriter.EncodeRgb(nc, nr, rgb)) : "";
        int rowH = Math.Clamp(360 / Math.Max(nr, 1), 3, 18);
        int left = 150, plotW = Width - left - Right - 50, plotH = rowH * Math.Max(nr, 1);
        int height = Top + plotH + Bottom;
        var sb = Begin(id, "heatmap", title, finite.Count);
        sb.Append(CultureInfo.InvariantCulture, $"<svg viewBox=\"0 0 {Width} {height}\" role=\"img\" aria-label=\"{Esc(title)}\" data-left=\"{left}\" data-top=\"{Top}\" data-w=\"{plotW}\" data-h=\"{plotH}\">");
        if (png.Length > 0)
            sb.Append(CultureInfo.InvariantCulture, $"<image class=\"cells\" x=\"{left}\" y=\"{Top}\" width=\"{plotW}\" height=\"{plotH}\" preserveAspectRatio=\"none\" style=\"image-rendering:pixelated\" href=\"data:image/png;base64,{png}\"/>");
        int every = Math.Max(1, (int)Math.Ceiling(nr * 11.0 / plotH));
        for (int r = 0; r < nr; r += every)
            sb.Append(CultureInfo.InvariantCulture, $"<text class=\"tick\" x=\"{left - 4}\" y=\"{Top + (r + 0.5) * rowH + 3:0.#}\" text-anchor=\"end\">{Esc(Short(rows[r]))}</text>");
        for (int k = 0; k <= 4 && nc > 0; k++)
        {
            int c = (int)Math.Round(k * (nc - 1) / 4.0);
            double x = left + (c + 0.5) * plotW / (double)nc;
            sb.Append(CultureInfo.InvariantCulture, $"<text class=\"tick\" x=\"{x:0.#}\" y=\"{Top + plotH + 14}\" text-anchor=\"middle\">{columnSteps[c]:0}</text>");
        }
        sb.Append(CultureInfo.InvariantCulture, $"<text class=\"label\" x=\"{left + plotW / 2}\" y=\"{height - 4}\" text-anchor=\"middle\">{Esc(xLabel)}</text>");
        ColorBar(sb, Width - Right - 40, Top, plotH, lo, hi, log);
        sb.Append("<g class=\"hover\"></g></svg>");
        var grid = new double[nr][];
        for (int r = 0; r < nr; r++)
        {
            grid[r] = new double[nc];
            for (int c = 0; c < nc; c++) grid[r][c] = values[r, c];
        }
        Data(sb, new { rows, steps = columnSteps, v = grid });
        return End(sb);
    }

    private static void ColorBar(StringBuilder sb, int x, int y, int h, double lo, double hi, bool log)
    {
        const int steps = 24;
        for (int i = 0; i < steps; i++)
        {
            var (r, g, b) = Viridis(1 - i / (double)(steps - 1));
            sb.Append(CultureInfo.InvariantCulture, $"<rect x=\"{x}\" y=\"{y + i * h / (double)steps:0.##}\" width=\"10\" height=\"{h / (double)steps + 0.5:0.##}\" fill=\"rgb({r},{g},{b})\"/>");
        }
        string Fmt(double v) => log ? Num(Math.Pow(10, v)) : Num(v);
        sb.Append(CultureInfo.InvariantCulture, $"<text class=\"tick\" x=\"{x + 13}\" y=\"{y + 8}\">{Fmt(hi)}</text><text class=\"tick\" x=\"{x + 13}\" y=\"{y + h}\">{Fmt(lo)}</text>");
    }

    private static StringBuilder Begin(string id, string kind, string title, int points)
    {
        var sb = new StringBuilder(4096);
        sb.Append(CultureInfo.InvariantCulture, $"<figure class=\"chart {kind}\" id=\"{Esc(id)}\" data-points=\"{points}\"><figcaption>{Esc(title)}</figcaption>");
        return sb;
    }

    private static string End(StringBuilder sb) => sb.Append("</figure>").ToString();

    private static void Legend(StringBuilder sb, string[] names)
    {
        if (names.Length < 2) return;
        sb.Append("<div class=\"legend\">");
        for (int i = 0; i < names.Length; i++)
            sb.Append(CultureInfo.InvariantCulture, $"<button type=\"button\" data-series=\"{i}\" title=\"show or hide\"><i style=\"background:{Color(i)}\"></i>{Esc(names[i])}</button>");
        sb.Append("</div>");
    }

    private static void Data(StringBuilder sb, object data)
    {
        // NaN and the infinities are not JSON: write them as null (a gap), which the page's script reads as such.
        var json = JsonSerializer.Serialize(data, s_json);
        sb.Append("<script type=\"application/json\" class=\"gf-data\">").Append(json.Replace("</", "<\\/", StringComparison.Ordinal)).Append("</script>");
    }

    private static readonly JsonSerializerOptions s_json = new() { Converters = { new FiniteOrNullConverter() } };

    private sealed class FiniteOrNullConverter : System.Text.Json.Serialization.JsonConverter<double>
    {
        public override double Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.GetDouble();

        public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options)
        {
            // Six significant digits: the charts cannot show more, and the page stays small.
            if (double.IsFinite(value)) writer.WriteRawValue(value.ToString("G6", CultureInfo.InvariantCulture));
            else writer.WriteNullValue();
        }
    }

    private static void Axes(StringBuilder sb, double x0, double x1, double y0, double y1, bool log, string? xLabel, string yLabel, bool drawX = true)
    {
        int bottom = Height - Bottom;
        sb.Append(CultureInfo.InvariantCulture, $"<g class=\"axes\"><line x1=\"{Left}\" y1=\"{Top}\" x2=\"{Left}\" y2=\"{bottom}\"/><line x1=\"{Left}\" y1=\"{bottom}\" x2=\"{Width - Right}\" y2=\"{bottom}\"/>");
        foreach (double t in Ticks(y0, y1, log))
        {
            double y = Top + (1 - (t - y0) / (y1 - y0)) * (bottom - Top);
            sb.Append(CultureInfo.InvariantCulture, $"<line class=\"grid\" x1=\"{Left}\" x2=\"{Width - Right}\" y1=\"{y:0.#}\" y2=\"{y:0.#}\"/><text class=\"tick\" x=\"{Left - 4}\" y=\"{y + 3:0.#}\" text-anchor=\"end\">{(log ? Num(Math.Pow(10, t)) : Num(t))}</text>");
        }
        if (drawX)
            foreach (double t in Ticks(x0, x1, log: false))
            {
                double x = Left + (t - x0) / (x1 - x0) * (Width - Left - Right);
                sb.Append(CultureInfo.InvariantCulture, $"<text class=\"tick\" x=\"{x:0.#}\" y=\"{bottom + 14}\" text-anchor=\"middle\">{Num(t)}</text>");
            }
        if (xLabel is not null)
            sb.Append(CultureInfo.InvariantCulture, $"<text class=\"label\" x=\"{(Left + Width - Right) / 2}\" y=\"{Height - 4}\" text-anchor=\"middle\">{Esc(xLabel)}</text>");
        sb.Append(CultureInfo.InvariantCulture, $"<text class=\"label\" transform=\"translate(12,{(Top + bottom) / 2}) rotate(-90)\" text-anchor=\"middle\">{Esc(yLabel)}</text></g>");
    }

    // Round ticks: powers of ten on a log axis (thinned to at most eight), 1/2/5 steps on a linear one.
    private static IEnumerable<double> Ticks(double lo, double hi, bool log)
    {
        if (log)
        {
            int a = (int)Math.Ceiling(lo - 1e-9), b = (int)Math.Floor(hi + 1e-9);
            int stride = Math.Max(1, (b - a + 1 + 7) / 8);
            for (int e = a; e <= b; e += stride) yield return e;
            yield break;
        }
        double span = hi - lo, raw = span / 5, mag = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double step = raw / mag < 1.5 ? mag : raw / mag < 3.5 ? 2 * mag : raw / mag < 7.5 ? 5 * mag : 10 * mag;
        for (double t = Math.Ceiling(lo / step) * step; t <= hi + step * 1e-9; t += step) yield return Math.Abs(t) < step * 1e-9 ? 0 : t;
    }

    // The data range (log10 of it on a log axis), padded a little; a constant or empty series still gets a span.
    private static (double Lo, double Hi) Range(IEnumerable<double> values, bool log)
    {
        double lo = double.PositiveInfinity, hi = double.NegativeInfinity;
        foreach (double v in values)
        {
            if (!double.IsFinite(v) || (log && v <= 0)) continue;
            double t = log ? Math.Log10(v) : v;
            lo = Math.Min(lo, t);
            hi = Math.Max(hi, t);
        }
        if (lo > hi) return (0, 1);
        if (hi - lo < 1e-12) return log ? (lo - 0.5, hi + 0.5) : (lo - Math.Max(Math.Abs(lo) * 0.5, 1e-9), hi + Math.Max(Math.Abs(hi) * 0.5, 1e-9));
        double pad = log ? 0.05 * (hi - lo) : 0.04 * (hi - lo);
        return (log ? lo - pad : (lo >= 0 && lo - pad < 0 ? 0 : lo - pad), hi + pad);
    }

    private static double PX(double x, double x0, double x1) => Left + (x - x0) / (x1 - x0) * (Width - Left - Right);

    private static double PY(double y, double y0, double y1, bool log)
    {
        if (!double.IsFinite(y) || (log && y <= 0)) return double.NaN;
        double t = log ? Math.Log10(y) : y;
        return Top + (1 - (t - y0) / (y1 - y0)) * (Height - Bottom - Top);
    }

    private static string LinePath(double[] xs, double[] ys, double x0, double x1, double y0, double y1, bool log)
    {
        var sb = new StringBuilder(xs.Length * 12);
        bool pen = false;
        for (int i = 0; i < xs.Length; i++)
        {
            double y = PY(ys[i], y0, y1, log);
            if (double.IsNaN(y)) { pen = false; continue; }
            sb.Append(CultureInfo.InvariantCulture, $"{(pen ? 'L' : 'M')}{PX(xs[i], x0, x1):0.#} {y:0.#}");
            pen = true;
        }
        return sb.ToString();
    }

    private static string BandPath(double[] xs, double[] lower, double[] upper, double x0, double x1, double y0, double y1, bool log)
    {
        var up = new StringBuilder();
        var down = new List<string>();
        for (int i = 0; i < xs.Length; i++)
        {
            double a = PY(lower[i], y0, y1, log), b = PY(upper[i], y0, y1, log);
            if (double.IsNaN(a) || double.IsNaN(b)) continue;
            double x = PX(xs[i], x0, x1);
            up.Append(CultureInfo.InvariantCulture, $"{(up.Length == 0 ? 'M' : 'L')}{x:0.#} {b:0.#}");
            down.Add(string.Create(CultureInfo.InvariantCulture, $"L{x:0.#} {a:0.#}"));
        }
        down.Reverse();
        return up.Length == 0 ? "" : up.Append(string.Concat(down)).Append('Z').ToString();
    }

    // Viridis, interpolated between nine anchors (matplotlib's colour map, perceptually uniform, readable when printed grey).
    private static readonly (byte R, byte G, byte B)[] s_viridis =
        [(68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141), (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37)];

    private static (byte, byte, byte) Viridis(double t)
    {
        t = Math.Clamp(double.IsFinite(t) ? t : 0, 0, 1) * (s_viridis.Length - 1);
        int i = Math.Min((int)t, s_viridis.Length - 2);
        double f = t - i;
        var (a, b) = (s_viridis[i], s_viridis[i + 1]);
        return ((byte)(a.R + (b.R - a.R) * f), (byte)(a.G + (b.G - a.G) * f), (byte)(a.B + (b.B - a.B) * f));
    }

    /// <summary>A number in three significant digits, scientific outside [1e-3, 1e4).</summary>
    public static string Num(double v) =>
        !double.IsFinite(v) ? v.ToString(CultureInfo.InvariantCulture)
        : v == 0 ? "0"
        : Math.Abs(v) is >= 1e-3 and < 1e4 ? v.ToString("0.###", CultureInfo.InvariantCulture)
        : v.ToString("0.##e0", CultureInfo.InvariantCulture);

    public static string Esc(string s) => WebUtility.HtmlEncode(s);

    private static string Short(string layer) => layer.Length <= 24 ? (layer.Length == 0 ? "(root)" : layer) : "…" + layer[^23..];
}
