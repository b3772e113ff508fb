namespace GradFlow.Reporting.Html;

/// <summary>The report's style sheet and script, inlined into every page (the file must open with no network).</summary>
internal static class ReportAssets
{
    public const string Css = """
        :root { --ink:#1d2433; --mute:#5b6475; --line:#d8dce3; --bg:#f6f7f9; --card:#fff; --warn:#b26a00; --err:#c0262d; --info:#2459a8; }
        * { box-sizing: border-box; }
        body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color:var(--ink); background:var(--bg); }
        header { padding:18px 28px; background:#1d2433; color:#fff; }
        header h1 { margin:0; font-size:20px; } header p { margin:4px 0 0; color:#c9cfdb; }
        nav { padding:8px 28px; background:#fff; border-bottom:1px solid var(--line); position:sticky; top:0; z-index:2; }
        nav a { margin-right:14px; color:var(--info); text-decoration:none; } nav a:hover { text-decoration:underline; }
        main { padding:12px 28px 40px; max-width:1560px; }
        section { margin-top:22px; } h2 { font-size:18px; margin:0 0 8px; } h3 { font-size:15px; margin:18px 0 6px; }
        .grid { display:grid; grid-template-columns:repeat(auto-fit, minmax(560px, 1fr)); gap:14px; }
        figure.chart { margin:0; background:var(--card); border:1px solid var(--line); border-radius:6px; padding:8px 10px; position:relative; }
        figure.chart:target, figure.chart.flash { outline:3px solid #f2b705; }
        figcaption { font-weight:600; margin-bottom:2px; }
        svg { width:100%; height:auto; display:block; }
        .axes line { stroke:#8a93a3; stroke-width:1; } .axes .grid { stroke:#eceef2; }
        .tick { font-size:10px; fill:var(--mute); } .label { font-size:11px; fill:var(--mute); }
        .trace { fill:none; stroke-width:1.6; } .trace.dashed { stroke-dasharray:5 3; } .band { opacity:.15; stroke:none; }
        .ref line { stroke:#c0262d; stroke-dasharray:4 3; } .ref text { font-size:10px; fill:#c0262d; }
        .series.off { display:none; }
        .hover line { stroke:#555; stroke-dasharray:2 2; } .hover rect { fill:#fff; stroke:#8a93a3; opacity:.95; } .hover text { font-size:11px; fill:#1d2433; }
        .legend { display:flex; flex-wrap:wrap; gap:4px 10px; margin-top:4px; }
        .legend button { border:0; background:none; font:inherit; font-size:12px; cursor:pointer; padding:0; color:var(--ink); }
        .legend button.off { opacity:.35; text-decoration:line-through; }
        .legend i { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:4px; vertical-align:-1px; }
        table.summary { border-collapse:collapse; background:#fff; border:1px solid var(--line); }
        table.summary td, table.summary th { padding:4px 10px; border-bottom:1px solid var(--line); text-align:left; font-variant-numeric:tabular-nums; }
        .finding { background:#fff; border:1px solid var(--line); border-left:5px solid var(--info); border-radius:6px; padding:10px 14px; margin:10px 0; }
        .finding.warning { border-left-color:var(--warn); } .finding.error { border-left-color:var(--err); }
        .finding h4 { margin:0 0 4px; font-size:15px; } .finding .sev { text-transform:uppercase; font-size:11px; font-weight:700; margin-right:6px; }
        .finding.error .sev { color:var(--err); } .finding.warning .sev { color:var(--warn); } .finding.info .sev { color:var(--info); }
        .finding ul { margin:4px 0; padding-left:20px; } .finding .charts a { margin-right:10px; }
        .none { color:var(--mute); font-style:italic; }
        details { background:#fff; border:1px solid var(--line); border-radius:6px; padding:6px 10px; margin-top:10px; }
        details summary { cursor:pointer; font-weight:600; }
        """;

    // Legend toggles, hover read-outs for line charts and heatmaps (from each chart's JSON), links from findings that
    // highlight their chart, and a self-check the browser test reads: charts without data and script errors.
    public const string Script = """
        (function () {
          'use strict';
          var errors = [];
          window.addEventListener('error', function (e) { errors.push(String(e.message || e)); });
          var NS = 'http://www.w3.org/2000/svg';
          function el(name, attrs, text) {
            var e = document.createElementNS(NS, name);
            for (var k in attrs) e.setAttribute(k, attrs[k]);
            if (text !== undefined) e.textContent = text;
            return e;
          }
          function fmt(v) {
            if (v === null || v === undefined) return 'n/a';
            var a = Math.abs(v);
            return (a !== 0 && (a < 1e-3 || a >= 1e4)) ? v.toExponential(2) : String(Math.round(v * 1000) / 1000);
          }
          function data(fig) { var s = fig.querySelector('script.gf-data'); return s ? JSON.parse(s.textContent) : null; }
          function point(svg, evt) {
            var p = svg.createSVGPoint(); p.x = evt.clientX; p.y = evt.clientY;
            return p.matrixTransform(svg.getScreenCTM().inverse());
          }
          function box(g, x, y, lines) {
            var w = 8 + 6.2 * Math.max.apply(null, lines.map(function (l) { return l.length; })), h = 6 + 14 * lines.length;
            var vb = g.ownerSVGElement.viewBox.baseVal;
            if (x + w + 10 > vb.width) x = x - w - 20;
            g.appendChild(el('rect', { x: x + 10, y: y, width: w, height: h, rx: 3 }));
            lines.forEach(function (l, i) { g.appendChild(el('text', { x: x + 14, y: y + 15 + 14 * i }, l)); });
          }
          function lineHover(fig) {
            var svg = fig.querySelector('svg'), d = data(fig), g = fig.querySelector('.hover');
            if (!svg || !d || !g) return;
            var x0 = +svg.dataset.x0, x1 = +svg.dataset.x1, left = 64, right = 720 - 16;
            svg.addEventListener('mousemove', function (evt) {
              var p = point(svg, evt); g.textContent = '';
              if (p.x < left || p.x > right) return;
              var xv = x0 + (p.x - left) / (right - left) * (x1 - x0), lines = [];
              d.y.forEach(function (ys, s) {
                var off = fig.querySelector('.series[data-series="' + s + '"]');
                if (off && off.classList.contains('off')) return;
                var xs = d.x[s], best = -1, dist = Infinity;
                for (var i = 0; i < xs.length; i++) { var dd = Math.abs(xs[i] - xv); if (dd < dist) { dist = dd; best = i; } }
                if (best >= 0) { if (!lines.length) lines.push('step ' + fmt(xs[best])); lines.push(d.names[s] + ': ' + fmt(ys[best])); }
              });
              if (!lines.length) return;
              g.appendChild(el('line', { x1: p.x, x2: p.x, y1: 28, y2: 224 }));
              box(g, p.x, 30, lines.slice(0, 12));
            });
            svg.addEventListener('mouseleave', function () { g.textContent = ''; });
          }
          function heatHover(fig) {
            var svg = fig.querySelector('svg'), d = data(fig), g = fig.querySelector('.hover');
            if (!svg || !d || !g || !d.rows.length) return;
            var L = +svg.dataset.left, T = +svg.dataset.top, W = +svg.dataset.w, H = +svg.dataset.h;
            svg.addEventListener('mousemove', function (evt) {
              var p = point(svg, evt); g.textContent = '';
              var c = Math.floor((p.x - L) / W * d.steps.length), r = Math.floor((p.y - T) / H * d.rows.length);
              if (c < 0 || r < 0 || c >= d.steps.length || r >= d.rows.length) return;
              box(g, p.x, Math.max(p.y - 40, 0), [d.rows[r] || '(root)', 'step ' + fmt(d.steps[c]), 'value ' + fmt(d.v[r][c])]);
            });
            svg.addEventListener('mouseleave', function () { g.textContent = ''; });
          }
          function legends(fig) {
            fig.querySelectorAll('.legend button').forEach(function (b) {
              b.addEventListener('click', function () {
                b.classList.toggle('off');
                fig.querySelectorAll('.series[data-series="' + b.dataset.series + '"]').forEach(function (s) { s.classList.toggle('off'); });
              });
            });
          }
          function links() {
            document.querySelectorAll('a[data-chart]').forEach(function (a) {
              a.addEventListener('click', function () {
                var f = document.getElementById(a.dataset.chart);
                if (!f) return;
                f.classList.add('flash'); setTimeout(function () { f.classList.remove('flash'); }, 1600);
              });
            });
          }
          function selfCheck() {
            var figs = document.querySelectorAll('figure.chart'), empty = [];
            figs.forEach(function (f) { if (!(+f.dataset.points > 0)) empty.push(f.id); });
            var broken = [];
            document.querySelectorAll('a[data-chart]').forEach(function (a) { if (!document.getElementById(a.dataset.chart)) broken.push(a.dataset.chart); });
            var out = { charts: figs.length, empty: empty, brokenLinks: broken, errors: errors };
            var pre = document.getElementById('gf-selfcheck');
            if (pre) pre.textContent = JSON.stringify(out);
          }
          document.addEventListener('DOMContentLoaded', function () {
            try {
              document.querySelectorAll('figure.chart').forEach(function (f) {
                legends(f);
                if (f.classList.contains('line')) lineHover(f);
                if (f.classList.contains('heatmap')) heatHover(f);
              });
              links();
            } catch (e) { errors.push(String(e)); }
            selfCheck();
          });
        })();
        """;
}
