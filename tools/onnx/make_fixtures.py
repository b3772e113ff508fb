#!/usr/bin/python3
"""Makes the ONNX import fixtures: small PyTorch 1.13 models exported with torch.onnx.export (opset 17, dynamic
batch; recurrent and attention layers included), and a JSON file (tools/fixtures/common.py format) with, per model, inputs at two batch sizes and PyTorch's
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
    # Recurrent layers: ONNX's LSTM/GRU/RNN nodes with the gates re-ordered by Slice/Concat from the state dict's
    # tensors and zero initial states from ConstantOfShape. Sequence-first inputs have their batch on axis 1.
    yield "lstm", Outputs(nn.LSTM(4, 5, num_layers=2, bidirectional=True)), SeqFirst((6, 4)), True
    yield "lstm_batch_first", Outputs(nn.LSTM(4, 5, batch_first=True), nn.Linear(5, 3)), (6, 4), True
    yield "lstm_last_state", LastState(nn.LSTM(4, 5, num_layers=2, batch_first=True), nn.Linear(5, 3)), (6, 4), True
    yield "gru", Outputs(nn.GRU(4, 5, num_layers=2, bidirectional=True, batch_first=True)), (6, 4), True
    yield "gru_seq_first", Outputs(nn.GRU(4, 5)), SeqFirst((6, 4)), True
    yield "rnn", Outputs(nn.RNN(4, 5, num_layers=2, bidirectional=True)), SeqFirst((6, 4)), True
    yield "rnn_relu", Outputs(nn.RNN(4, 5, nonlinearity="relu", batch_first=True)), (6, 4), True
    # Attention as PyTorch 1.13 decomposes it (Gemm/MatMul/Reshape/Transpose/Slice/Softmax, shapes from Shape).
    yield "attention", SelfAttention(nn.MultiheadAttention(8, 2)), SeqFirst((5, 8)), True
    yield "attention_batch_first", SelfAttention(nn.MultiheadAttention(8, 4, batch_first=True)), (5, 8), True
    yield "encoder_layer", nn.TransformerEncoderLayer(8, 2, 16), SeqFirst((5, 8)), True
    yield "encoder", nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, activation="gelu", batch_first=True, norm_first=True), 2,
                                           norm=nn.LayerNorm(8)), (5, 8), True


PERTURBED = {"attention", "attention_batch_first", "encoder_layer", "encoder"}


class SeqFirst(tuple):
    """An input shape whose batch axis is 1 (a recurrent or attention layer without batch_first)."""


class Outputs(nn.Module):
    """The sequence output of a recurrent layer, then an optional head."""

    def __init__(self, rnn, head=None):
        super().__init__()
        self.rnn = rnn
        self.head = head

    def forward(self, x):
        y = self.rnn(x)[0]
        return y if self.head is None else self.head(y)


class LastState(nn.Module):
    """A head on the last layer's final hidden state (ONNX's Y_h output)."""

    def __init__(self, rnn, head):
        super().__init__()
        self.rnn = rnn
        self.head = head

    def forward(self, x):
        _, (h, _) = self.rnn(x)
        return self.head(h[-1])


class SelfAttention(nn.Module):
    def __init__(self, attention):
        super().__init__()
        self.attn = attention

    def forward(self, x):
        return self.attn(x, x, x, need_weights=False)[0]


def batch_axes(name, spec):
    """The dynamic axis of the input and of the output."""
    if not isinstance(spec, SeqFirst):
        return 0, 0
    return 1, 0 if name == "lstm_last_state" else 1


def make_input(spec, batch, gen):
    if spec == "tokens":
        return torch.randint(0, 11, (batch, 4), generator=gen)
    if isinstance(spec, SeqFirst):
        return torch.randn((spec[0], batch, *spec[1:]), generator=gen)
    return torch.randn((batch, *spec), generator=gen)


def recurrent_graphs():
    """ONNX recurrent nodes with the settings PyTorch's exporter never writes (layout 1, initial states as inputs,
    reverse direction, linear_before_reset=0, per-direction activations, sequence_lens, the Y_h and Y_c outputs),
    built with the onnx package. The tests compare GradFlow's import with ONNX Runtime on the float32 files and
    gradcheck the float64 twins; ONNX Runtime runs only layout 0, so a layout-1 graph has a layout-0 twin between
    Transposes (name_layout0.onnx) for it. Shapes are fixed (batch 3): the initial states are initializers."""
    from onnx import TensorProto, helper, numpy_helper
    import numpy as np

    def graph(name, op, attrs, seq, outputs, combine, rank, dtype, twin=False):
        """twin: the same computation with layout 0 between Transposes (ONNX Runtime runs only layout 0)."""
        rng = np.random.default_rng(sum(map(ord, name)))
        np_type, onnx_type = (np.float64, TensorProto.DOUBLE) if dtype == "f64" else (np.float32, TensorProto.FLOAT)
        hidden, features, batch, steps = 3, 4, 3, 5
        gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
        dirs = 2 if attrs.get("direction") == "bidirectional" else 1
        layout = attrs.get("layout", 0)

        def init(key, shape, scale=0.5):
            return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np_type), key)

        state = [batch, dirs, hidden] if layout else [dirs, batch, hidden]
        inits = [init("W", [dirs, gates * hidden, features]), init("R", [dirs, gates * hidden, hidden])]
        names = ["X", "W", "R"]
        for key in seq:
            if key == "B":
                inits.append(init("B", [dirs, 2 * gates * hidden]))
            elif key == "sequence_lens":
                inits.append(numpy_helper.from_array(np.full([batch], steps, np.int32), "sequence_lens"))
            elif key in ("initial_h", "initial_c"):
                inits.append(init(key, state))
                if twin:
                    inits[-1] = numpy_helper.from_array(numpy_helper.to_array(inits[-1]).transpose(1, 0, 2).copy(), key)
            names.append(key if key else "")
        if not twin:
            nodes = [helper.make_node(op, names, outputs, name=op.lower(), hidden_size=hidden, **attrs)]
        else:
            nodes = [helper.make_node("Transpose", ["X"], ["X0"], perm=[1, 0, 2])]
            raw = [o + "_0" if o else "" for o in outputs]
            nodes.append(helper.make_node(op, ["X0", *names[1:]], raw, name=op.lower(), hidden_size=hidden, **{**attrs, "layout": 0}))
            for i, (o, r) in enumerate(zip(outputs, raw)):
                if o:
                    nodes.append(helper.make_node("Transpose", [r], [o], perm=[2, 0, 1, 3] if i == 0 else [1, 0, 2]))
        nodes += combine
        x_shape = [batch, steps, features] if layout else [steps, batch, features]
        g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("X", onnx_type, x_shape)],
                              [helper.make_tensor_value_info("output", onnx_type, [f"d{i}" for i in range(rank)])], inits)
        model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="make_fixtures.py")
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        return model

    import onnx
    specs = [
        ("lstm_layout1_states", "LSTM", {"layout": 1, "direction": "bidirectional"}, ["B", "", "initial_h", "initial_c"], ["Y", "Y_h", "Y_c"],
         [helper.make_node("ReduceMean", ["Y"], ["Ym"], axes=[1], keepdims=0), helper.make_node("Add", ["Y_h", "Y_c"], ["S"]),
          helper.make_node("Add", ["Ym", "S"], ["output"])], 3),
        ("lstm_reverse", "LSTM", {"direction": "reverse"}, ["", "", "initial_h"], ["output"], [], 4),
        ("gru_reset_after", "GRU", {"direction": "bidirectional", "linear_before_reset": 0}, ["B", "", "initial_h"], ["Y", "Y_h"],
         [helper.make_node("Add", ["Y", "Y_h"], ["output"])], 4),
        ("gru_layout1_reverse", "GRU", {"layout": 1, "direction": "reverse", "linear_before_reset": 1}, ["B", "", "initial_h"], ["", "output"], [], 3),
        ("rnn_mixed", "RNN", {"direction": "bidirectional", "activations": ["Relu", "Tanh"]}, ["B", "sequence_lens"], ["Y", "Y_h"],
         [helper.make_node("Add", ["Y", "Y_h"], ["output"])], 4),
    ]
    os.makedirs(os.path.join(OUT, "onnx", "graphs"), exist_ok=True)
    for name, op, attrs, seq, outputs, combine, rank in specs:
        for dtype in ("f32", "f64"):
            model = graph(name, op, attrs, seq, outputs, combine, rank, dtype)
            suffix = "" if dtype == "f32" else "_f64"
            with open(os.path.join(OUT, "onnx", "graphs", name + suffix + ".onnx"), "wb") as out:
                out.write(model.SerializeToString())
        if attrs.get("layout") == 1:
            with open(os.path.join(OUT, "onnx", "graphs", name + "_layout0.onnx"), "wb") as out:
                out.write(graph(name, op, attrs, seq, outputs, combine, rank, "f32", twin=True).SerializeToString())
    # A graph that reads Dropout's mask, a second output GradFlow does not compute: refused at load.
    nodes = [helper.make_node("Dropout", ["X"], ["Y", "mask"], name="dropout"), helper.make_node("Cast", ["mask"], ["M"], to=TensorProto.FLOAT),
             helper.make_node("Add", ["Y", "M"], ["output"])]
    g = helper.make_graph(nodes, "dropout_mask", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 3])],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, [2, 3])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="make_fixtures.py")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    with open(os.path.join(OUT, "onnx", "graphs", "dropout_mask.onnx"), "wb") as out:
        out.write(model.SerializeToString())
    print(f"wrote {2 * len(specs)} hand-built recurrent graphs and dropout_mask.onnx")


def main():
    os.makedirs(os.path.join(OUT, "onnx"), exist_ok=True)
    cases = []
    for name, model, spec, trainable in models():
        gen = torch.Generator().manual_seed(1234)
        if name in PERTURBED:
            # PyTorch's exporter keeps one initializer of several equal ones (fresh LayerNorms, zero biases, the
            # copies TransformerEncoder makes of its layer); noise keeps every state-dict tensor in the file.
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(torch.randn(p.shape, generator=gen) * 0.1)
        # A few training-mode batches give BatchNorm running statistics that are not the defaults.
        with torch.no_grad():
            for _ in range(3):
                model(make_input(spec, 8, gen))
        model.eval()
        x, x2 = make_input(spec, 3, gen), make_input(spec, 5, gen)
        f = io.BytesIO()
        in_axis, out_axis = batch_axes(name, spec)
        # Constant folding off keeps a Linear's weight under its own name on 3-d inputs (PyTorch still folds an
        # eval BatchNorm into the Conv before it: those weights become onnx::Conv_N).
        torch.onnx.export(model, x, f, opset_version=17, do_constant_folding=False, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {in_axis: "batch"}, "output": {out_axis: "batch"}})
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
    recurrent_graphs()


if __name__ == "__main__":
    main()
