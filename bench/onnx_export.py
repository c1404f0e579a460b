#!/usr/bin/python3
"""Exports DCL-S (bench/torch_train.py's DclS: inference, sigmoid outputs) to ONNX for the
onnxruntime-node comparison of bench/train.ts (see bench/README.md).

  python3 bench/onnx_export.py OUT.onnx [--weights PATH] [--seed N] [--n 32] [--opset 13]

--weights PATH: a folder of raw little-endian float32 files <name>.bin (conv1.weight, conv1.bias,
..., fc2.bias, PyTorch's state_dict names and shapes, NCHW / OIHW / [out, in]), a JSON file
{name: [shape, flat list]} or a .npz file; without it the weights are N(0, 1.5^2 / fan_in) from
--seed (default 0) and zero biases. The graph has one input "input" [batch, 1, 64, 64] and one output
"output" [batch, n] (the sigmoid outputs in [0, 1)); the batch axis is dynamic. Prints one JSON
line {"path", "opset", "n", "weights", "bytes"}.
"""
import argparse
import io
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_train import DclS, init_weights, load_weights, set_weights  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="the .onnx file to write")
    ap.add_argument("--weights", help="folder of <name>.bin float32 files, JSON {name: [shape, values]} or .npz")
    ap.add_argument("--seed", type=int, default=0, help="weights from this seed when --weights is not given")
    ap.add_argument("--n", type=int, default=32, help="code dimensions (fc2 outputs), default 32")
    ap.add_argument("--opset", type=int, default=13, help="ONNX opset (13 or later), default 13")
    a = ap.parse_args()
    if a.opset < 13:
        ap.error("--opset must be 13 or later")

    model = DclS(a.n)
    if a.weights:
        set_weights(model, load_weights(a.weights, a.n))
    else:
        init_weights(model, a.seed)
    model.eval()
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(
            model,
            torch.zeros(1, 1, 64, 64),
            buf,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
            opset_version=a.opset,
            do_constant_folding=True,
        )
    # Atomic: a half-written model never lies at the destination.
    tmp = "%s.tmp%d" % (a.out, os.getpid())
    with open(tmp, "wb") as f:
        f.write(buf.getvalue())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, a.out)
    print(json.dumps({"path": a.out, "opset": a.opset, "n": a.n, "weights": a.weights or "seed %d" % a.seed, "bytes": len(buf.getvalue())}))


if __name__ == "__main__":
    main()
