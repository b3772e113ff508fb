"""Merges the JSON lines of GradFlow.Bench and torch_bench.py (stdin) into one table per case."""
import json
import sys


def main():
    rows = {}
    for line in sys.stdin:
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        rows.setdefault((r["case"], r["threads"]), {})[r["impl"]] = r
    header = f"{'threads':>7} {'GradFlow ms':>12} {'PyTorch ms':>11} {'GF/PT':>6} {'GF GFLOPS':>10} {'PT GFLOPS':>10} {'GF alloc B/step':>16}"
    for case in dict.fromkeys(c for c, _ in rows):
        print(f"\n== {case} ==")
        print(header)
        for (c, threads), impls in sorted(rows.items()):
            if c != case:
                continue
            gf, pt = impls.get("gradflow"), impls.get("pytorch")
            ratio = f"{gf['ms'] / pt['ms']:.2f}" if gf and pt else "-"
            print(f"{threads:>7} {fmt(gf, 'ms'):>12} {fmt(pt, 'ms'):>11} {ratio:>6} {fmt(gf, 'gflops'):>10} "
                  f"{fmt(pt, 'gflops'):>10} {fmt(gf, 'alloc_bytes_per_step'):>16}")


def fmt(row, key):
    if not row or row.get(key) is None:
        return "-"
    value = row[key]
    return f"{value:.3f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    main()
