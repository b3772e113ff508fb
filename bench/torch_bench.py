"""PyTorch twins of the GradFlow.Bench cases: same names, same medians, same JSON lines.

Usage: /usr/bin/python3 bench/torch_bench.py [--case NAME]... [--reps N] [--warmup N] [--threads N]
Add a case by writing a function that returns (step, flops_per_step) and listing it in CASES.
"""
import argparse
import json
import statistics
import time

import torch


def gemm(size):
    def setup():
        gen = torch.Generator().manual_seed(42)
        a = torch.rand(size, size, generator=gen) * 2 - 1
        b = torch.rand(size, size, generator=gen) * 2 - 1
        c = torch.empty(size, size)
        return (lambda: torch.matmul(a, b, out=c)), 2.0 * size ** 3
    return setup


CASES = {
    "gemm1024": gemm(1024),
    "gemm256": gemm(256),
}


def run(name, setup, reps, warmup, threads):
    step, flops = setup()
    for _ in range(warmup):
        step()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    median = statistics.median_low(sorted(times))
    return {"impl": "pytorch", "case": name, "threads": threads, "ms": round(median, 4),
            "min_ms": round(min(times), 4), "gflops": round(flops / (median * 1e6), 2) if flops else 0,
            "alloc_bytes_per_step": None, "reps": reps}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", action="append", default=[])
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.case or list(CASES)
    for name in names:
        if name not in CASES:
            raise SystemExit(f"no case named {name}")
        print(json.dumps(run(name, CASES[name], max(5, args.reps), args.warmup, args.threads)), flush=True)


if __name__ == "__main__":
    main()
