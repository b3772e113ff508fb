"""Merges the JSON lines of GradFlow.Bench and torch_bench.py (stdin) into one table.

Columns: wall-clock median ms per step of each side and their ratio, the fastest step of each side, GradFlow's
bytes allocated per step
with and without the TensorArena, the share of GradFlow's timed wall time spent in GC pauses, and each side's peak
resident memory (one case per process).
Monitor cases (NAME_monitor) report the monitor's overhead on the same model in the same run.
With several rounds (bench/run.sh ROUNDS=N) every figure is the median over rounds.
"""
import json
import sys


def main():
    runs = {}
    for line in sys.stdin:
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        runs.setdefault((r["case"], r["threads"], r["impl"]), []).append(r)
    rows = {}
    for (case, threads, impl), rs in runs.items():
        rows.setdefault((case, threads), {})[impl] = median_row(rs)
    cases = list(dict.fromkeys(c for c, _ in rows))
    print(f"| case | threads | GradFlow ms | PyTorch ms | GF/PT | GF min ms | PT min ms | B/step (arena) | B/step (no arena) | GC % | GF peak MB | PT peak MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for case in cases:
        if case.endswith("_monitor"):
            continue
        for (c, threads), impls in sorted(rows.items()):
            if c != case:
                continue
            gf, pt = impls.get("gradflow"), impls.get("pytorch")
            print(f"| {case} | {threads} | {fmt(gf, 'ms')} | {fmt(pt, 'ms')} | {ratio(gf, pt, 'ms')} | {fmt(gf, 'min_ms')} | "
                  f"{fmt(pt, 'min_ms')} | {fmt(gf, 'alloc_bytes_per_step')} | "
                  f"{fmt(gf, 'alloc_bytes_no_arena')} | {fmt(gf, 'gc_pct')} | {mb(gf)} | {mb(pt)} |")
    monitors = [(c, t, i["gradflow"]) for (c, t), i in sorted(rows.items()) if c.endswith("_monitor") and "gradflow" in i]
    if monitors:
        print()
        print("| case | threads | monitor off ms | monitor on ms | overhead % |")
        print("|---|---:|---:|---:|---:|")
        for c, t, r in monitors:
            print(f"| {c} | {t} | {r['ms_off']:.3f} | {r['ms']:.3f} | {r['overhead_pct']:.1f} |")


def median_row(rs):
    """Per numeric key, the median over rounds (the lower middle value for an even count)."""
    out = dict(rs[0])
    for key, value in rs[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values = sorted(r[key] for r in rs if r.get(key) is not None)
            out[key] = values[(len(values) - 1) // 2]
    out["rounds"] = len(rs)
    return out


def mb(r):
    """Peak resident memory of the side's process, in MB (each case runs in a process of its own)."""
    return f"{r['peak_rss_bytes'] / 2**20:.0f}" if r and r.get("peak_rss_bytes") else "-"


def ratio(a, b, key):
    if not a or not b or a.get(key) is None or not b.get(key):
        return "-"
    return f"{a[key] / b[key]:.2f}"


def fmt(row, key):
    if not row or row.get(key) is None:
        return "-"
    value = row[key]
    if isinstance(value, float):
        return f"{value:.4f}" if value < 0.1 else f"{value:.3f}" if value < 10 else f"{value:.2f}"
    return str(value)


if __name__ == "__main__":
    main()
