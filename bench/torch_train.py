#!/usr/bin/python3
"""PyTorch side of the dcl-native training / encode benchmark (bench/train.ts starts it; see
bench/README.md).

The DCL-S network of DESIGN.md (input 1x64x64; conv 5x5 32 pad 2, pool 2, conv 3x3 64 pad 1, pool,
conv 3x3 128 pad 1, pool, conv 3x3 256 pad 1, pool, fc 4096->256, fc 256->n; |tanh| after every conv
and fc1, sigmoid at the end) and the pair loss of the 'rounding' method:

  s = 2^Q * sigmoid output; f = s + (clamp(floor(s), 0, 2^Q - 1) - s).detach()   (straight-through)
  d_ij = sum_k |f_ik - f_jk|, with the gradient's sign taken from s (sign(s_ik - s_jk)): a tie of
         the rounded codes still pushes (DESIGN.md, "Practical notes"); the value is exactly the
         L1 distance because floor is monotone
  loss = sum over pairs i < j of w_ij * softplus(-l_ij * (alpha * d_ij - beta)), l = -1 for a
         same-person pair and +1 for a different-person pair, w = 0.5 / #same or 0.5 / #different
         (the two kinds weighted equally)

alpha and beta are learnable (alpha starts at 10 / (n * (2^Q - 1)), beta at 2.5); Adam, lr 1e-4 for
the network and 1e-3 for alpha and beta. Batches are P identities x 4 images (labels i // 4).

Run in PyTorch's fastest configuration on this kind of machine (ANCHORS.md): channels-last
tensors and weights, torch.set_num_threads(THREADS); the caller sets OPENBLAS_NUM_THREADS=1,
OPENBLAS_CORETYPE, LD_PRELOAD=jemalloc, MALLOC_CONF and uses /usr/bin/python3.

A long-lived child: one command per line on stdin, one JSON line on stdout.

  step B REPS      -> REPS training steps (forward, loss, backward, Adam) at batch B:
                      {"cmd": "step", "batch", "ms": [...], "fwd_ms", "bwd_ms", "opt_ms", "loss": [...]}
  encode B REPS    -> REPS inference passes (torch.inference_mode) at batch B: {"cmd": "encode", "batch", "ms": [...]}
  load DIR         -> weights from DIR/<name>.bin (raw little-endian float32, shapes as in
                      PARAM_SHAPES; alpha.bin and beta.bin hold one value each); resets Adam
  check DIR B      -> on the current weights, without updating them: reads DIR/x.bin (float32
                      [B, 1, 64, 64]) and DIR/labels.bin (int32 [B]); writes DIR/torch.p.bin (the
                      sigmoid outputs [B, n]) and DIR/torch.grad.<name>.bin for every parameter
                      (and alpha, beta), and the same from a float64 copy of the network as
                      DIR/torch64.*.bin (float32 files); answers {"loss", "loss64", "d_sum"}
  quit

The first use of a batch size runs WARMUP untimed steps (oneDNN primitive creation, allocator);
the caller discards the first of REPS too. Standalone: `python3 bench/torch_train.py --selftest`.
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

THREADS = int(os.environ.get("DCL_BENCH_THREADS", "2"))
N_OUT = int(os.environ.get("DCL_BENCH_N", "32"))
Q = int(os.environ.get("DCL_BENCH_Q", "1"))
WARMUP = 3
IMAGES_PER_PERSON = 4
LR = 1e-4
LR_ALPHA_BETA = 1e-3
CL = torch.channels_last


def param_shapes(n=N_OUT):
    """Parameter names (PyTorch's state_dict names) and shapes, in a fixed order."""
    return {
        "conv1.weight": (32, 1, 5, 5),
        "conv1.bias": (32,),
        "conv2.weight": (64, 32, 3, 3),
        "conv2.bias": (64,),
        "conv3.weight": (128, 64, 3, 3),
        "conv3.bias": (128,),
        "conv4.weight": (256, 128, 3, 3),
        "conv4.bias": (256,),
        "fc1.weight": (256, 4096),
        "fc1.bias": (256,),
        "fc2.weight": (n, 256),
        "fc2.bias": (n,),
    }


PARAM_SHAPES = param_shapes()


class DclS(torch.nn.Module):
    """DCL-S: returns the sigmoid outputs f_model(x) in [0, 1)^n."""

    def __init__(self, n=N_OUT):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 32, 5, padding=2)
        self.conv2 = torch.nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = torch.nn.Conv2d(64, 128, 3, padding=1)
        self.conv4 = torch.nn.Conv2d(128, 256, 3, padding=1)
        self.fc1 = torch.nn.Linear(4096, 256)
        self.fc2 = torch.nn.Linear(256, n)

    def forward(self, x):
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            x = F.max_pool2d(torch.abs(torch.tanh(conv(x))), 2)
        x = torch.abs(torch.tanh(self.fc1(torch.flatten(x, 1))))  # NCHW order, whatever the memory format
        return torch.sigmoid(self.fc2(x))


def init_weights(model, seed=0):
    """N(0, 1.5^2 / fan_in) weights and zero biases (DESIGN.md, "Practical notes")."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.zero_()
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) * (1.5 / math.sqrt(fan_in)))


def read_floats(path, shape):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    t = torch.frombuffer(data, dtype=torch.float32) if data else torch.zeros(0)
    count = math.prod(shape)
    if t.numel() != count:
        raise ValueError("%s holds %d floats, expected %d for shape %s" % (path, t.numel(), count, list(shape)))
    return t.reshape(shape).clone()


def write_floats(path, t):
    with open(path, "wb") as f:
        f.write(t.detach().contiguous().float().numpy().tobytes())


def load_weights(source, n=N_OUT):
    """Weights from a folder of raw float32 files (<name>.bin), a JSON file {name: [shape, flat
    list]} or a .npz file. Returns {name: tensor} (the network's parameters, plus alpha and beta
    when present)."""
    shapes = {**param_shapes(n), "alpha": (1,), "beta": (1,)}
    out = {}
    if os.path.isdir(source):
        for name, shape in shapes.items():
            path = os.path.join(source, name + ".bin")
            if os.path.exists(path):
                out[name] = read_floats(path, shape)
    elif source.endswith(".npz"):
        import numpy as np

        with np.load(source) as z:
            for name in z.files:
                out[name] = torch.from_numpy(np.array(z[name], dtype=np.float32))
    else:
        with open(source) as f:
            doc = json.load(f)
        for name, (shape, values) in doc.items():
            out[name] = torch.tensor(values, dtype=torch.float32).reshape(shape)
    missing = [k for k in param_shapes(n) if k not in out]
    if missing:
        raise ValueError("%s lacks %s" % (source, ", ".join(missing)))
    for name, t in out.items():
        if name in shapes and tuple(t.shape) != tuple(shapes[name]) and t.numel() == math.prod(shapes[name]):
            out[name] = t.reshape(shapes[name])
    return out


def set_weights(model, weights):
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(weights[name].reshape(p.shape))


class PairLoss(torch.nn.Module):
    """The 'rounding' method's pair loss over all pairs of the batch (see the module docstring)."""

    def __init__(self, n=N_OUT, q=Q):
        super().__init__()
        self.q = q
        self.alpha = torch.nn.Parameter(torch.tensor([10.0 / (n * (2**q - 1))]))
        self.beta = torch.nn.Parameter(torch.tensor([2.5]))
        self._masks = {}

    def masks(self, labels):
        key = tuple(labels.tolist())
        if key not in self._masks:
            b = labels.numel()
            same = labels[:, None] == labels[None, :]
            upper = torch.triu(torch.ones(b, b, dtype=torch.bool), diagonal=1)
            n_same = int((same & upper).sum())
            n_diff = int((~same & upper).sum())
            w = torch.zeros(b, b)
            if n_same:
                w[same & upper] = 0.5 / n_same
            if n_diff:
                w[~same & upper] = 0.5 / n_diff
            sign_l = torch.where(same, -1.0, 1.0)  # l
            self._masks[key] = (w, sign_l)
        return self._masks[key]

    def forward(self, p, labels):
        levels = 2**self.q
        s = p * levels
        f = s + (torch.clamp(torch.floor(s), 0, levels - 1) - s).detach()
        diff_s = s[:, None, :] - s[None, :, :]
        diff_f = f[:, None, :] - f[None, :, :]
        d = (torch.sign(diff_s).detach() * diff_f).sum(-1)  # = L1 distance of the rounded codes
        w, l = self.masks(labels)
        loss = (w * F.softplus(-l * (self.alpha * d - self.beta))).sum()
        return loss, d


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def labels_for(batch):
    return torch.arange(batch) // IMAGES_PER_PERSON


class Bench:
    def __init__(self):
        torch.manual_seed(0)
        self.model = DclS().to(memory_format=CL)
        init_weights(self.model)
        self.loss = PairLoss()
        self.reset_optimizer()
        self.data = {}

    def reset_optimizer(self):
        self.opt = torch.optim.Adam(
            [{"params": self.model.parameters(), "lr": LR}, {"params": self.loss.parameters(), "lr": LR_ALPHA_BETA}]
        )

    def batch(self, b):
        if b not in self.data:
            g = torch.Generator().manual_seed(1000 + b)
            x = torch.randn(b, 1, 64, 64, generator=g)
            x = ((x - x.mean((1, 2, 3), keepdim=True)) / x.std((1, 2, 3), keepdim=True)).contiguous(memory_format=CL)
            self.data[b] = {"x": x, "labels": labels_for(b), "warm_step": False, "warm_encode": False}
        return self.data[b]

    def step(self, b):
        d = self.batch(b)
        t0 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        p = self.model(d["x"])
        loss, _ = self.loss(p, d["labels"])
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        self.opt.step()
        t3 = time.perf_counter()
        return (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, float(loss)

    def encode(self, b):
        d = self.batch(b)
        with torch.inference_mode():
            t0 = time.perf_counter()
            self.model(d["x"])
            return (time.perf_counter() - t0) * 1e3

    def run_steps(self, b, reps):
        d = self.batch(b)
        if not d["warm_step"]:
            for _ in range(WARMUP):
                self.step(b)
            d["warm_step"] = True
        fwd, bwd, opt, loss = [], [], [], []
        for _ in range(reps):
            f, bw, o, l = self.step(b)
            fwd.append(f)
            bwd.append(bw)
            opt.append(o)
            loss.append(l)
        ms = [a + b_ + c for a, b_, c in zip(fwd, bwd, opt)]
        return {"cmd": "step", "batch": b, "ms": ms, "fwd_ms": fwd, "bwd_ms": bwd, "opt_ms": opt, "loss": loss}

    def run_encode(self, b, reps):
        d = self.batch(b)
        if not d["warm_encode"]:
            for _ in range(WARMUP):
                self.encode(b)
            d["warm_encode"] = True
        return {"cmd": "encode", "batch": b, "ms": [self.encode(b) for _ in range(reps)]}

    def load(self, folder):
        weights = load_weights(folder)
        set_weights(self.model, weights)
        with torch.no_grad():
            for name in ("alpha", "beta"):
                if name in weights:
                    getattr(self.loss, name).copy_(weights[name].reshape(1))
        self.reset_optimizer()

    def check(self, folder, b):
        x = read_floats(os.path.join(folder, "x.bin"), (b, 1, 64, 64))
        with open(os.path.join(folder, "labels.bin"), "rb") as f:
            labels = torch.frombuffer(bytearray(f.read()), dtype=torch.int32).long()
        # The timed configuration (float32, channels-last) ...
        loss32, d = self.grads(self.model, self.loss, x.contiguous(memory_format=CL), labels, folder, "torch")
        # ... and a float64 reference (NCHW): near-ties in the max-pools of saturated |tanh| make the
        # early layers' float32 gradients differ by up to ~1e-2 between any two implementations.
        model64 = DclS(N_OUT).double()
        loss64 = PairLoss().double()
        with torch.no_grad():
            for (_, p64), (_, p) in zip(model64.named_parameters(), self.model.named_parameters()):
                p64.copy_(p.double())
            for p64, p in zip(loss64.parameters(), self.loss.parameters()):
                p64.copy_(p.double())
        ref, _ = self.grads(model64, loss64, x.double(), labels, folder, "torch64")
        return {"cmd": "check", "loss": loss32, "loss64": ref, "d_sum": float(torch.triu(d, 1).sum())}

    @staticmethod
    def grads(model, loss_fn, x, labels, folder, prefix):
        """Sigmoid outputs, loss and gradients on the current weights (no update): writes
        FOLDER/PREFIX.p.bin and FOLDER/PREFIX.grad.<name>.bin (float32)."""
        params = dict(model.named_parameters())
        params["alpha"] = loss_fn.alpha
        params["beta"] = loss_fn.beta
        for t in params.values():
            t.grad = None
        p = model(x)
        loss, d = loss_fn(p, labels)
        loss.backward()
        write_floats(os.path.join(folder, prefix + ".p.bin"), p)
        for name, t in params.items():
            write_floats(os.path.join(folder, "%s.grad.%s.bin" % (prefix, name)), t.grad)
            t.grad = None
        return float(loss), d.detach()


def info():
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "n": N_OUT,
        "q": Q,
        "mkldnn": torch.backends.mkldnn.is_available(),
        "capability": torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") else None,
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "LD_PRELOAD", "MALLOC_CONF")},
        "jemalloc": any("jemalloc" in line for line in open("/proc/self/maps")),
        "blas": next((line.split()[-1] for line in open("/proc/self/maps") if "blas" in line.lower()), None),
        "lr": LR,
        "lr_alpha_beta": LR_ALPHA_BETA,
    }


def main():
    torch.set_num_threads(THREADS)
    bench = Bench()
    if "--selftest" in sys.argv:
        for b in (64, 256):
            r = bench.run_steps(b, 5)
            ms = sorted(r["ms"])
            print("step batch %d: median %.1f ms = %.0f img/s (min %.1f ms); loss %.4f" % (b, ms[2], b * 1e3 / ms[2], ms[0], r["loss"][-1]))
        for b, reps in ((256, 5), (64, 5), (1, 50)):
            ms = sorted(bench.run_encode(b, reps)["ms"])
            med = ms[len(ms) // 2]
            print("encode batch %d: median %.2f ms = %.0f img/s" % (b, med, b * 1e3 / med))
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
            if parts[0] == "step":
                reply(bench.run_steps(int(parts[1]), int(parts[2])))
            elif parts[0] == "encode":
                reply(bench.run_encode(int(parts[1]), int(parts[2])))
            elif parts[0] == "load":
                bench.load(parts[1])
                reply({"cmd": "load", "ok": True})
            elif parts[0] == "check":
                reply(bench.check(parts[1], int(parts[2])))
            else:
                reply({"error": "unknown command " + parts[0]})
        except Exception as e:  # answer, so that the caller never hangs on a line
            reply({"error": "%s: %s" % (type(e).__name__, e)})


if __name__ == "__main__":
    main()
