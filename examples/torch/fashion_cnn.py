"""PyTorch twin of examples/FashionMnistCnn: same model, batch order and hyper-parameters, one thread.
Run: /usr/bin/python3 examples/torch/fashion_cnn.py [epochs] [data directory]
"""
import sys

import torch
from torch import nn

from fashion_common import train

torch.manual_seed(42)
model = nn.Sequential(
    nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(),
    nn.Linear(1600, 128), nn.ReLU(),
    nn.Linear(128, 10))
epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
train(model, epochs, directory=sys.argv[2] if len(sys.argv) > 2 else None)
