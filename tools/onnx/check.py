#!/usr/bin/python3
"""Checks ONNX files with the onnx package's checker (Debian: python3-onnx): structure, opset and, with full_check,
shape inference over every node. Prints each file's opset, node count and initializer names; exits 1 on any failure.

usage: tools/onnx/check.py FILE_OR_DIR...
"""
import pathlib
import sys

import onnx


def check(path):
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    names = [i.name for i in model.graph.initializer]
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    print(f"ok  {path.name}: opset {opset}, {len(model.graph.node)} nodes, input {dims}, initializers {names[:6]}{' ...' if len(names) > 6 else ''}")


def main(args):
    files = []
    for a in args:
        p = pathlib.Path(a)
        files += sorted(p.glob("*.onnx")) if p.is_dir() else [p]
    if not files:
        print("no .onnx files given", file=sys.stderr)
        return 1
    failed = 0
    for f in files:
        try:
            check(f)
        except Exception as e:  # the checker raises several types; each is a failed file
            failed += 1
            print(f"FAIL {f.name}: {e}")
    print(f"{len(files) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
