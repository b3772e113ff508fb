"""What the Fashion-MNIST twins share: the data (read and standardised as GradFlow does), GradFlow's
shuffle order (its xoshiro256** Generator and Fisher-Yates permutation, ported so both libraries see the
same batches) and the training loop of examples/FashionMnistMlp and examples/FashionMnistCnn.
"""
import gzip
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

DEFAULT_DIRECTORY = "/usr/share/datasets/fashion-mnist"
MASK = (1 << 64) - 1


def load(directory, train):
    """[N, 1, 28, 28] float32 standardised with the training set's mean and std, and int64 labels."""
    prefix = "train" if train else "t10k"
    arrays = []
    for kind, offset in (("images-idx3", 16), ("labels-idx1", 8)):
        path = os.path.join(directory, f"{prefix}-{kind}-ubyte.gz")
        if not os.path.exists(path):
            sys.exit(f"Fashion-MNIST: {path} is missing. On Debian or Ubuntu: sudo apt-get install dataset-fashion-mnist")
        with gzip.open(path, "rb") as f:
            arrays.append(np.frombuffer(f.read(), dtype=np.uint8, offset=offset))
    images = torch.from_numpy(arrays[0].astype(np.float32).reshape(-1, 1, 28, 28)) / 255.0
    return (images - 0.2860) / 0.3530, torch.from_numpy(arrays[1].astype(np.int64))


class GradFlowGenerator:
    """GradFlow.Generator: xoshiro256** seeded through SplitMix64."""

    def __init__(self, seed):
        x = seed
        self.s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & MASK
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
            self.s.append(z ^ (z >> 31))

    def next_uint64(self):
        s0, s1, s2, s3 = self.s
        rotl = lambda v, k: ((v << k) | (v >> (64 - k))) & MASK
        result = (rotl((s1 * 5) & MASK, 7) * 9) & MASK
        t = (s1 << 17) & MASK
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        self.s = [s0, s1, s2, rotl(s3, 45)]
        return result

    def next_int64(self, n):
        threshold = ((1 << 64) - n) % n  # Lemire's method, as GradFlow
        while True:
            product = self.next_uint64() * n
            if product & MASK >= threshold:
                return product >> 64

    def permutation(self, n):
        p = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.next_int64(i + 1)
            p[i], p[j] = p[j], p[i]
        return torch.tensor(p)


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum()) for i in range(0, len(x), 1000))
    return correct / len(x)


def train(model, epochs=5, batch_size=128, lr=1e-3, directory=None):
    """Adam with a per-epoch cosine schedule on GradFlow's batch order; prints what the C# example prints."""
    torch.set_num_threads(1)
    directory = directory or DEFAULT_DIRECTORY
    (x_train, y_train), (x_test, y_test) = load(directory, True), load(directory, False)
    shuffle = GradFlowGenerator(7)
    # Drawn before timing: a pure-Python Fisher-Yates would otherwise count against PyTorch.
    orders = [shuffle.permutation(len(x_train)) for _ in range(epochs)]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    print(model)
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    acc, times = 0.0, []
    for epoch in range(epochs):
        start = time.perf_counter()
        model.train()
        total = 0.0
        for b in range(0, len(x_train), batch_size):
            idx = orders[epoch][b:b + batch_size]
            x, y = x_train.index_select(0, idx), y_train.index_select(0, idx)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        seconds = time.perf_counter() - start
        times.append(seconds)
        schedule.step()
        acc = accuracy(model, x_test, y_test)
        print(f"epoch {epoch + 1}  train loss {total / len(x_train):.4f}  test accuracy {100 * acc:.2f} %  {seconds:.1f} s")
    return acc, times
