#!/usr/bin/python3
"""Makes the ONNX import fixtures: small PyTorch 1.13 models exported with torch.onnx.export (opset 17, dynamic
batch), and a JSON file (tools/fixtures/common.py format) with, per model, inputs at two batch sizes and PyTorch's
outputs, the state dict, and for models whose ONNX graph keeps PyTorch's parameters as they are (no BatchNorm
folded into a Conv), the losses of three SGD steps on a mean squared error to a fixed target.

Run with Debian's interpreter: /usr/bin/python3 tools/onnx/make_fixtures.py
Writes tests/GradFlow.Onnx.Tests/Fixtures/onnx/*.onnx and onnx_import.json.
"""
import io
import json
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fixtures"))
from common import case, tensor_json  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "GradFlow.Onnx.Tests", "Fixtures")


def models():
    torch.manual_seed(0)
    yield "mlp", nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(), nn.Dropout(0.2), nn.Linear(16, 4), nn.LogSoftmax(1)), (8,), True
    yield "activations", nn.Sequential(nn.Linear(5, 6), nn.GELU(), nn.Linear(6, 6), nn.SiLU(), nn.ELU(0.5), nn.LeakyReLU(0.2), nn.SELU(),
                                       nn.Softplus(2), nn.Hardtanh(-0.5, 0.7), nn.Linear(6, 6), nn.Sigmoid(), nn.PReLU(6), nn.Tanh(),
                                       nn.GELU("tanh"), nn.Softmax(-1)), (5,), True
    yield "cnn", nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 6, 3, stride=2, padding=1, groups=2),
                               nn.ReLU(), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3)), (3, 12, 12), False
    yield "sequence", nn.Sequential(nn.Linear(4, 6), nn.LayerNorm(6), nn.ReLU(), nn.Linear(6, 3), nn.Flatten(1, 2)), (5, 4), True
    yield "conv1d", nn.Sequential(nn.Conv1d(4, 6, 3, padding=1), nn.GroupNorm(3, 6), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 8, 2)), (4, 8), True
    yield "conv_transpose", nn.Sequential(nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1), nn.Tanh(), nn.Conv2d(3, 2, 2)), (4, 5, 6), True
    yield "embedding", nn.Sequential(nn.Embedding(11, 6), nn.Flatten(), nn.Linear(24, 3)), "tokens", True


def make_input(spec, batch, gen):
    if spec == "tokens":
        return torch.randint(0, 11, (batch, 4), generator=gen)
    return torch.randn((batch, *spec), generator=gen)


def main():
    os.makedirs(os.path.join(OUT, "onnx"), exist_ok=True)
    cases = []
    for name, model, spec, trainable in models():
        gen = torch.Generator().manual_seed(1234)
        # A few training-mode batches give BatchNorm running statistics that are not the defaults.
        with torch.no_grad():
            for _ in range(3):
                model(make_input(spec, 8, gen))
        model.eval()
        x, x2 = make_input(spec, 3, gen), make_input(spec, 5, gen)
        f = io.BytesIO()
        # Constant folding off keeps a Linear's weight under its own name on 3-d inputs (PyTorch still folds an
        # eval BatchNorm into the Conv before it: those weights become onnx::Conv_N).
        torch.onnx.export(model, x, f, opset_version=17, do_constant_folding=False, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
        with open(os.path.join(OUT, "onnx", name + ".onnx"), "wb") as out:
            out.write(f.getvalue())
        tensors = {"in.x": x, "out.y": model(x), "in.x2": x2, "out.y2": model(x2)}
        tensors.update({"param." + k: v.clone() for k, v in model.state_dict().items() if v.dtype == torch.float32})
        params = {}
        if trainable:
            # Three SGD steps on the ONNX-equivalent model (eval mode: the graph has no dropout).
            target = torch.randn(model(x).shape, generator=gen)
            opt = torch.optim.SGD(model.parameters(), lr=0.05)
            losses = []
            for _ in range(3):
                opt.zero_grad()
                loss = ((model(x) - target) ** 2).mean()
                loss.backward()
                opt.step()
                losses.append(loss.item())
            tensors["target"] = target
            params["losses"] = losses
        cases.append(case(name, tensors, params))
    path = os.path.join(OUT, "onnx_import.json")
    with open(path, "w") as f:
        json.dump({"torch": torch.__version__, "cases": cases}, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path}: {len(cases)} cases")


if __name__ == "__main__":
    main()
