#!/usr/bin/python3
"""Makes the safetensors fixtures, written with this script's own struct packing (the format is an 8-byte
little-endian header length, a JSON header, then the data; python3-safetensors need not be installed):

- dtypes.safetensors: every element type of the specification (F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL),
  a scalar, empty tensors and __metadata__, laid out as the reference writer does (sorted by alignment, then name).
- layer_<name>.safetensors: the state dict of a PyTorch layer (BatchNorm's num_batches_tracked included), one also
  stored as F16 and one as BF16, to be loaded into the GradFlow layer of the same configuration.
- safetensors.json (tools/fixtures/common.py format): the expected values of dtypes.safetensors, and per layer the
  input and PyTorch's eval-mode output.

Run with Debian's interpreter: /usr/bin/python3 tools/onnx/make_safetensors_fixtures.py
"""
import json
import os
import struct
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fixtures"))
from common import case  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "GradFlow.Tests", "Fixtures")
SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
TORCH = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64,
         "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}
CODE = {v: k for k, v in TORCH.items()}


def raw_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        # No numpy bfloat16: the bits are the top half of the float32 (exact, as the values come from bfloat16).
        bits = t.float().view(torch.int32).bitwise_right_shift(16).to(torch.int16)
        return bits.numpy().astype("<i2").tobytes()
    arr = t.numpy()
    return arr.astype(arr.dtype.newbyteorder("<")).tobytes()


def write_safetensors(path, tensors, metadata=None):
    # The reference writer's order: larger alignment first, then by name.
    names = sorted(tensors, key=lambda k: (-SIZES[CODE[tensors[k].dtype]], k))
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for k in names:
        b = raw_bytes(tensors[k])
        header[k] = {"dtype": CODE[tensors[k].dtype], "shape": list(tensors[k].shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def dtype_tensors():
    g = torch.Generator().manual_seed(5)
    return {
        "f64": torch.randn(2, 3, generator=g, dtype=torch.float64),
        "f32": torch.randn(4, generator=g),
        "f16": torch.tensor([1.0, -2.5, 65504.0, 6.1e-5, 5.96e-8, float("-0.0")], dtype=torch.float16),
        "bf16": torch.tensor([1.0, -3.140625, 3.0e38, 1.0e-38, 0.0078125], dtype=torch.bfloat16),
        "i64": torch.tensor([[-(2 ** 63), 2 ** 63 - 1], [0, -7]], dtype=torch.int64),
        "i32": torch.tensor([-(2 ** 31), 2 ** 31 - 1, 5], dtype=torch.int32),
        "i16": torch.tensor([-32768, 32767], dtype=torch.int16),
        "i8": torch.tensor([-128, 127, -1], dtype=torch.int8),
        "u8": torch.tensor([0, 255, 7], dtype=torch.uint8),
        "bool": torch.tensor([[True, False], [False, True]]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 4),
        "empty_i32": torch.zeros(3, 0, dtype=torch.int32),
    }


def layers():
    torch.manual_seed(3)
    yield "linear", nn.Linear(5, 4), torch.randn(3, 5), None
    yield "linear_f16", nn.Linear(5, 4), torch.randn(3, 5), torch.float16
    yield "linear_bf16", nn.Linear(5, 4), torch.randn(3, 5), torch.bfloat16
    yield "conv1d", nn.Conv1d(3, 4, 3, padding=1), torch.randn(2, 3, 6), None
    yield "conv2d", nn.Conv2d(2, 3, 3, stride=2), torch.randn(2, 2, 7, 7), None
    yield "conv_transpose2d", nn.ConvTranspose2d(3, 2, 3, stride=2), torch.randn(2, 3, 4, 4), None
    yield "batchnorm2d", nn.BatchNorm2d(3), torch.randn(4, 3, 3, 3), None
    yield "layernorm", nn.LayerNorm(6), torch.randn(3, 6), None
    yield "groupnorm", nn.GroupNorm(2, 4), torch.randn(2, 4, 3), None
    yield "embedding", nn.Embedding(10, 3), torch.tensor([[1, 4, 9], [0, 2, 2]]), None
    yield "prelu", nn.PReLU(3), torch.randn(2, 3, 4), None
    yield "rnn", nn.RNN(4, 5, num_layers=2), torch.randn(3, 2, 4), None
    yield "lstm", nn.LSTM(4, 5, bidirectional=True), torch.randn(3, 2, 4), None
    yield "gru", nn.GRU(4, 5, batch_first=True), torch.randn(2, 3, 4), None
    yield "multihead_attention", nn.MultiheadAttention(8, 2), torch.randn(3, 2, 8), None
    yield "transformer_encoder_layer", nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0), torch.randn(3, 2, 8), None
    yield "transformer_decoder_layer", nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, dropout=0.0), torch.randn(3, 2, 8), None


def main():
    os.makedirs(os.path.join(OUT, "safetensors"), exist_ok=True)
    cases = []
    tensors = dtype_tensors()
    write_safetensors(os.path.join(OUT, "safetensors", "dtypes.safetensors"), tensors, {"format": "pt", "note": "every dtype"})
    # Expected values as GradFlow reads them: floats widened to float64 for the JSON, integers as int64, bools as bool.
    expected = {k: (v.to(torch.float64) if v.is_floating_point() else v if v.dtype == torch.bool else v.to(torch.int64)) for k, v in tensors.items()}
    cases.append(case("dtypes", expected, {"stored": {k: CODE[v.dtype] for k, v in tensors.items()}}))
    for name, layer, x, store in layers():
        if isinstance(layer, nn.BatchNorm2d):
            layer.train()
            with torch.no_grad():
                for _ in range(3):
                    layer(torch.randn(8, 3, 3, 3))
        layer.eval()
        state = layer.state_dict()
        if store is not None:
            state = {k: v.to(store) for k, v in state.items()}
            layer.load_state_dict({k: v.float() for k, v in state.items()})
        write_safetensors(os.path.join(OUT, "safetensors", f"layer_{name}.safetensors"), state)
        extra = {}
        with torch.no_grad():
            if isinstance(layer, nn.MultiheadAttention):
                y = layer(x, x, x, need_weights=False)[0]
            elif isinstance(layer, nn.TransformerDecoderLayer):
                extra["in.memory"] = torch.randn(4, 2, 8)
                y = layer(x, extra["in.memory"])
            elif isinstance(layer, (nn.RNN, nn.LSTM, nn.GRU)):
                y = layer(x)[0]
            else:
                y = layer(x)
        cases.append(case(name, {"in.x": x, "out.y": y, **extra}, {"keys": list(state.keys())}))
    path = os.path.join(OUT, "safetensors.json")
    with open(path, "w") as f:
        json.dump({"torch": torch.__version__, "cases": cases}, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path}: {len(cases)} cases")


if __name__ == "__main__":
    main()
