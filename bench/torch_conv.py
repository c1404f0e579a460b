#!/usr/bin/python3
"""PyTorch side of the dcl-native conv benchmark (bench/run.ts starts it; see bench/README.md).

Times conv2, conv3 and conv4 of DCL-S (batch 64, channels-last, torch.set_num_threads(THREADS))
forward and backward (input + weight + bias gradients in one autograd call). A long-lived child:
it reads one command per line on stdin and answers one JSON line on stdout.

  run LAYER REPS        -> {"layer", "fwd_ms": [...], "bwd_ms": [...], "total_ms": [...]}
  check LAYER DIR [N]   -> (conv1..conv4, batch N, default 64) reads DIR/x.bin, w.bin, b.bin, dy.bin (float32, NCHW / OIHW), writes
                           DIR/y.bin, dx.bin, dw.bin, db.bin (float32, NCHW / OIHW); answers {"ok": true}
  quit

The environment that makes this PyTorch's fastest configuration (OpenBLAS, jemalloc; see
ANCHORS.md) is set by the caller. Standalone: `python3 bench/torch_conv.py --selftest`.
"""
import json
import os
import sys
import time

import torch

BATCH = int(os.environ.get("DCL_BENCH_BATCH", "64"))
THREADS = int(os.environ.get("DCL_BENCH_THREADS", "2"))

# name: (cin, cout, kernel, padding, input height = width); the timed layers
LAYERS = {
    "conv2": (32, 64, 3, 1, 32),
    "conv3": (64, 128, 3, 1, 16),
    "conv4": (128, 256, 3, 1, 8),
}
# the layers `check` knows
SHAPES = {"conv1": (1, 32, 5, 2, 64), **LAYERS}


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Layer:
    def __init__(self, name):
        cin, cout, k, p, hw = LAYERS[name]
        g = torch.Generator().manual_seed(1234)
        self.conv = torch.nn.Conv2d(cin, cout, k, padding=p).to(memory_format=torch.channels_last)
        self.x = torch.randn(BATCH, cin, hw, hw, generator=g).to(memory_format=torch.channels_last)
        self.x.requires_grad_(True)
        self.dy = torch.randn(BATCH, cout, hw, hw, generator=g).to(memory_format=torch.channels_last)

    def step(self):
        self.x.grad = None
        self.conv.weight.grad = None
        self.conv.bias.grad = None
        t0 = time.perf_counter()
        y = self.conv(self.x)
        t1 = time.perf_counter()
        y.backward(self.dy)
        t2 = time.perf_counter()
        return (t1 - t0) * 1e3, (t2 - t1) * 1e3


def read_tensor(path, shape):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    return torch.frombuffer(data, dtype=torch.float32).reshape(shape).clone()


def write_tensor(path, t):
    with open(path, "wb") as f:
        f.write(t.detach().contiguous().numpy().tobytes())


def check(name, folder, batch):
    """Forward and both backwards on the caller's data, in channels-last like the timed runs."""
    cin, cout, k, p, hw = SHAPES[name]
    x = read_tensor(os.path.join(folder, "x.bin"), (batch, cin, hw, hw))
    w = read_tensor(os.path.join(folder, "w.bin"), (cout, cin, k, k))
    b = read_tensor(os.path.join(folder, "b.bin"), (cout,))
    dy = read_tensor(os.path.join(folder, "dy.bin"), (batch, cout, hw, hw))
    conv = torch.nn.Conv2d(cin, cout, k, padding=p)
    with torch.no_grad():
        conv.weight.copy_(w)
        conv.bias.copy_(b)
    conv = conv.to(memory_format=torch.channels_last)
    x = x.to(memory_format=torch.channels_last).requires_grad_(True)
    y = conv(x)
    y.backward(dy.to(memory_format=torch.channels_last))
    write_tensor(os.path.join(folder, "y.bin"), y)
    write_tensor(os.path.join(folder, "dx.bin"), x.grad)
    write_tensor(os.path.join(folder, "dw.bin"), conv.weight.grad)
    write_tensor(os.path.join(folder, "db.bin"), conv.bias.grad)


def info():
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch": BATCH,
        "mkldnn": torch.backends.mkldnn.is_available(),
        "capability": torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") else None,
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "LD_PRELOAD", "MALLOC_CONF")},
        "jemalloc": any("jemalloc" in line for line in open("/proc/self/maps")),
    }


def main():
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    layers = {name: Layer(name) for name in LAYERS}
    for layer in layers.values():  # warm up: oneDNN primitive creation, allocator, caches
        for _ in range(3):
            layer.step()
    if "--selftest" in sys.argv:
        for name, layer in layers.items():
            runs = sorted(sum(layer.step()) for _ in range(10))
            print(name, "fwd+bwd median %.2f ms (min %.2f)" % (runs[len(runs) // 2], runs[0]))
        print(json.dumps(info()))
        return
    reply({"ready": True, **info()})
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        try:
            if parts[0] == "quit":
                break
            if parts[0] == "run":
                layer = layers[parts[1]]
                reps = int(parts[2])
                fwd, bwd = [], []
                for _ in range(reps):
                    f, b = layer.step()
                    fwd.append(f)
                    bwd.append(b)
                reply({"layer": parts[1], "fwd_ms": fwd, "bwd_ms": bwd, "total_ms": [f + b for f, b in zip(fwd, bwd)]})
            elif parts[0] == "check":
                check(parts[1], parts[2], int(parts[3]) if len(parts) > 3 else BATCH)
                reply({"ok": True})
            else:
                reply({"error": "unknown command " + parts[0]})
        except Exception as e:  # answer, so that the caller never hangs on a line
            reply({"error": "%s: %s" % (type(e).__name__, e)})


if __name__ == "__main__":
    main()
