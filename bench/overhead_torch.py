"""Per-op overhead in PyTorch, the counterpart of bench/Overhead (same chain of 3,000 tiny ops).
Run: /usr/bin/python3 bench/overhead_torch.py
"""
import statistics
import time

import torch

torch.set_num_threads(1)
STEPS, OPS_PER_STEP, RUNS, WARMUP = 1000, 3, 20, 5
OPS = STEPS * OPS_PER_STEP
fwd, bwd = [], []
for run in range(WARMUP + RUNS):
    x = torch.tensor([0.1, -0.2, 0.3, 0.4], requires_grad=True)
    t0 = time.perf_counter_ns()
    y = x
    for _ in range(STEPS):
        y = torch.tanh(y * 1.0001 + 0.001)
    loss = y.sum()
    t1 = time.perf_counter_ns()
    loss.backward()
    t2 = time.perf_counter_ns()
    if run >= WARMUP:
        fwd.append((t1 - t0) / OPS)
        bwd.append((t2 - t1) / OPS)
print(f"PyTorch {torch.__version__}: chain of {OPS} ops (4 elements), median of {RUNS} runs, 1 thread")
print(f"  forward : {statistics.median(fwd):8.0f} ns/op")
print(f"  backward: {statistics.median(bwd):8.0f} ns/op")
