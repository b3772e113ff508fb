"""PyTorch twin of examples/FashionMnistMlp: same model, batch order and hyper-parameters, one thread.
Run: /usr/bin/python3 examples/torch/fashion_mlp.py [epochs] [data directory]
"""
import sys

import torch
from torch import nn

from fashion_common import train

torch.manual_seed(42)
model = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
train(model, epochs, directory=sys.argv[2] if len(sys.argv) > 2 else None)
