"""PyTorch twins of the GradFlow.Bench cases: same names, same medians, same JSON lines.

Usage: /usr/bin/python3 bench/torch_bench.py [--case NAME]... [--reps N] [--warmup N] [--threads N]
Add a case by writing a function that returns (step, flops_per_step) and listing it in CASES.
"""
import argparse
import json
import resource
import statistics
import time

import torch
from torch import nn


def gemm(size):
    def setup():
        gen = torch.Generator().manual_seed(42)
        a = torch.rand(size, size, generator=gen) * 2 - 1
        b = torch.rand(size, size, generator=gen) * 2 - 1
        c = torch.empty(size, size)
        return (lambda: torch.matmul(a, b, out=c)), 2.0 * size ** 3
    return setup


def wave(phase, *shape):
    """x[i] = sin(0.1 i + phase) as float32, as GradFlow.Bench's BenchData.Wave."""
    n = 1
    for s in shape:
        n *= s
    return torch.sin(torch.arange(n, dtype=torch.float64) * 0.1 + phase).float().reshape(shape)


def labels(n, classes):
    """(7 i) mod classes, as BenchData.Labels."""
    return (torch.arange(n, dtype=torch.int64) * 7) % classes


def training(build):
    """A training step as GradFlow's TrainingCase: zero grads (to None), forward, loss, backward, step."""
    def setup():
        torch.manual_seed(0)
        model, opt, loss_fn, flops = build()
        def step():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn()
            loss.backward()
            opt.step()
        return step, flops
    return setup


def mlp():
    batch = 128
    model = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))
    x, y = wave(0, batch, 784), labels(batch, 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    ce = nn.CrossEntropyLoss()
    return model, opt, lambda: ce(model(x), y), 3 * 2.0 * batch * (784 * 1024 + 1024 * 1024 + 1024 * 10)


def tiny():
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1))
    x, y = wave(0, 1, 2), wave(1, 1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    mse = nn.MSELoss()
    return model, opt, lambda: mse(model(x), y), 0


def deep_sigmoid():
    batch, depth, width = 128, 20, 256
    layers = []
    for i in range(depth):
        layers += [nn.Linear(784 if i == 0 else width, width), nn.Sigmoid()]
    model = nn.Sequential(*layers, nn.Linear(width, 10))
    x, y = wave(0, batch, 784), labels(batch, 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    ce = nn.CrossEntropyLoss()
    return model, opt, lambda: ce(model(x), y), 3 * 2.0 * batch * (784 * width + (depth - 1) * width * width + width * 10)


def cnn():
    batch = 64
    model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10))
    x, y = wave(0, batch, 1, 28, 28), labels(batch, 10)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    ce = nn.CrossEntropyLoss()
    flops = 3 * 2.0 * batch * (26 * 26 * 32 * 9 + 11 * 11 * 64 * 32 * 9 + 1600 * 128 + 128 * 10)
    return model, opt, lambda: ce(model(x), y), flops


def lstm():
    steps, batch, inp, hidden = 35, 32, 128, 256
    rnn, head = nn.LSTM(inp, hidden), nn.Linear(hidden, 10)
    model = nn.ModuleDict({"lstm": rnn, "head": head})
    x, y = wave(0, steps, batch, inp), labels(batch, 10)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    ce = nn.CrossEntropyLoss()
    return model, opt, lambda: ce(head(rnn(x)[0][steps - 1]), y), 3 * 2.0 * steps * batch * 4 * hidden * (inp + hidden)


def transformer():
    batch, seq, d, ff = 16, 64, 128, 512
    layer = nn.TransformerEncoderLayer(d, 4, ff, dropout=0.0, activation="relu", batch_first=True)
    head = nn.Linear(d, 10)
    model = nn.ModuleDict({"encoder": layer, "head": head})
    x, y = wave(0, batch, seq, d), labels(batch, 10)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ce = nn.CrossEntropyLoss()
    flops = 3 * 2.0 * batch * seq * (4 * d * d + 2 * d * ff + 2 * seq * d)
    return model, opt, lambda: ce(head(layer(x).mean(1)), y), flops


def hvp_operands(build):
    """The model's loss closure, its parameters and the product's vector, seeded as GradFlow's HVP cases."""
    torch.manual_seed(0)
    model, _, loss_fn, _ = build()
    params = list(model.parameters())
    gen = torch.Generator().manual_seed(1)
    return loss_fn, params, [torch.randn(p.shape, generator=gen) for p in params]


def hvp(build):
    """One exact Hessian-vector product as GradFlow's HvpCase: forward, grad with create_graph, double backward."""
    def setup():
        loss_fn, params, vs = hvp_operands(build)

        def step():
            grads = torch.autograd.grad(loss_fn(), params, create_graph=True)
            torch.autograd.grad(grads, params, grad_outputs=vs)
        return step, 0
    return setup


def hvp_kept(build):
    """One HVP on a kept graph as GradFlow's HvpKeptCase: the create_graph gradients made once, a step is the double backward."""
    def setup():
        loss_fn, params, vs = hvp_operands(build)
        grads = torch.autograd.grad(loss_fn(), params, create_graph=True)

        def step():
            torch.autograd.grad(grads, params, grad_outputs=vs, retain_graph=True)
        return step, 0
    return setup


CASES = {
    "gemm1024": gemm(1024),
    "gemm256": gemm(256),
    "mlp": training(mlp),
    "tiny": training(tiny),
    "deep_sigmoid": training(deep_sigmoid),
    "cnn": training(cnn),
    "lstm": training(lstm),
    "transformer": training(transformer),
    "hvp_mlp": hvp(mlp),
    "hvp_cnn": hvp(cnn),
    "hvp_kept_mlp": hvp_kept(mlp),
    "hvp_kept_cnn": hvp_kept(cnn),
}


MIN_SECONDS = 1.0  # as GradFlow.Bench's BenchRunner.MinSeconds: least wall time of warm-up and of timed steps
MAX_REPS = 200_000


def repeat(step, count, seconds, times=None):
    start = time.perf_counter()
    i = 0
    while i < MAX_REPS and (i < count or time.perf_counter() - start < seconds):
        t = time.perf_counter()
        step()
        if times is not None:
            times.append((time.perf_counter() - t) * 1e3)
        i += 1


def run(name, setup, reps, warmup, threads):
    step, flops = setup()
    repeat(step, warmup, MIN_SECONDS)
    times = []
    cpu = time.process_time()
    repeat(step, reps, MIN_SECONDS, times)
    reps = len(times)
    cpu_ms = (time.process_time() - cpu) * 1e3 / reps
    median = statistics.median_low(sorted(times))
    return {"impl": "pytorch", "case": name, "threads": threads, "ms": round(median, 4), "cpu_ms": round(cpu_ms, 4),
            "min_ms": round(min(times), 4), "gflops": round(flops / (median * 1e6), 2) if flops else 0,
            "alloc_bytes_per_step": None, "reps": reps,
            # peak resident memory of this process (KB on Linux); run.sh runs one case per process
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


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
        if name.endswith("_monitor"):
            continue  # GradFlow's monitor overhead has no PyTorch twin
        if name not in CASES:
            raise SystemExit(f"no case named {name}")
        print(json.dumps(run(name, CASES[name], max(5, args.reps), args.warmup, args.threads)), flush=True)


if __name__ == "__main__":
    main()
