// The device program of lib/cuda-train.ts run on the host: DeviceOps whose buffers are host
// ArrayBuffers and whose launchers are the CPU kernels (lib/native.ts) and the CPU batch loss
// (lib/train.ts batchLoss). The CUDA trainer's plumbing (which buffer feeds which launcher, the
// shapes, the order of the steps, the optimiser's arguments) can then be checked on any machine
// against the CPU trainer, bit for bit; the CUDA launchers themselves are checked against the
// same CPU kernels in test/cuda.test.ts (on a GPU).
import { parseLayout } from '../lib/codes.js';
import type { DeviceOps } from '../lib/cuda-train.js';
import { native } from '../lib/native.js';
import { batchLoss } from '../lib/train.js';

export interface HostOps extends DeviceOps {
  /** Buffers allocated and not yet freed. */
  live(): number;
  /** Calls per launcher name. */
  calls: Map<string, number>;
  /** Bytes uploaded and downloaded so far (the traffic a device would see on the bus). */
  traffic: { up: number; down: number };
}

const METHODS = ['rounding', 'dp', 'std', 'float'] as const;

export function hostOps(): HostOps {
  const buffers = new Map<number, ArrayBuffer>();
  let next = 1;
  const calls = new Map<string, number>();
  const traffic = { up: 0, down: 0 };
  const count = (name: string) => calls.set(name, (calls.get(name) ?? 0) + 1);
  const get = (b: number): ArrayBuffer => {
    const a = buffers.get(b);
    if (a === undefined) throw new Error(`host ops: buffer ${b} is not live`);
    return a;
  };
  const f32 = (b: number, n: number) => {
    const a = get(b);
    if (4 * n > a.byteLength) throw new Error(`host ops: ${n} floats read from a buffer of ${a.byteLength} bytes`);
    return new Float32Array(a, 0, n);
  };
  const i32 = (b: number, n: number) => {
    const a = get(b);
    if (4 * n > a.byteLength) throw new Error(`host ops: ${n} ints read from a buffer of ${a.byteLength} bytes`);
    return new Int32Array(a, 0, n);
  };
  const convSizes = (s: number[]) => {
    const [n, cin, h, w, cout, kh, kw, sh, sw, ph, pw] = s;
    const oh = Math.floor((h + 2 * ph - kh) / sh) + 1;
    const ow = Math.floor((w + 2 * pw - kw) / sw) + 1;
    return { x: n * cin * h * w, w: cout * cin * kh * kw, b: cout, y: n * cout * oh * ow };
  };
  const poolSizes = (s: number[]) => {
    const [n, c, h, w, kh, kw, sh, sw] = s;
    return { x: n * c * h * w, y: n * c * (Math.floor((h - kh) / sh) + 1) * (Math.floor((w - kw) / sw) + 1) };
  };
  return {
    calls,
    traffic,
    live: () => buffers.size,
    alloc(bytes) {
      count('alloc');
      buffers.set(next, new ArrayBuffer(bytes));
      return next++;
    },
    free(b) {
      count('free');
      buffers.delete(b);
    },
    upload(b, data) {
      count('upload');
      traffic.up += data.byteLength;
      new Uint8Array(get(b)).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    },
    download(b, out) {
      count('download');
      traffic.down += out.byteLength;
      new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(new Uint8Array(get(b), 0, out.byteLength));
    },
    conv2dForward(x, w, b, y, s) {
      count('conv2dForward');
      const z = convSizes(s);
      native.conv2dForward(f32(x, z.x), f32(w, z.w), b === null ? null : f32(b, z.b), f32(y, z.y), s);
    },
    conv2dBackwardInput(dy, w, dx, s) {
      count('conv2dBackwardInput');
      const z = convSizes(s);
      native.conv2dBackwardInput(f32(dy, z.y), f32(w, z.w), f32(dx, z.x), s);
    },
    conv2dBackwardWeight(x, dy, dw, db, s) {
      count('conv2dBackwardWeight');
      const z = convSizes(s);
      native.conv2dBackwardWeight(f32(x, z.x), f32(dy, z.y), f32(dw, z.w), db === null ? null : f32(db, z.b), s);
    },
    poolForward(fused, x, y, argmax, s) {
      count(fused ? 'absTanhMaxPool2dForward' : 'maxPool2dForward');
      const z = poolSizes(s);
      if (fused) native.absTanhMaxPool2dForward(f32(x, z.x), f32(y, z.y), i32(argmax, z.y), s);
      else native.maxPool2dForward(f32(x, z.x), f32(y, z.y), i32(argmax, z.y), s);
    },
    poolBackward(fused, dy, argmax, x, y, dx, s) {
      count(fused ? 'absTanhMaxPool2dBackward' : 'maxPool2dBackward');
      const z = poolSizes(s);
      if (fused) native.absTanhMaxPool2dBackward(f32(dy, z.y), i32(argmax, z.y), f32(x, z.x), f32(y, z.y), f32(dx, z.x), s);
      else native.maxPool2dBackward(f32(dy, z.y), i32(argmax, z.y), f32(dx, z.x), s);
    },
    absTanhForward(x, y, n) {
      count('absTanhForward');
      native.absTanhForward(f32(x, n), f32(y, n));
    },
    absTanhBackward(dy, x, y, dx, n) {
      count('absTanhBackward');
      native.absTanhBackward(f32(dy, n), f32(x, n), f32(y, n), f32(dx, n));
    },
    sigmoidForward(x, y, n) {
      count('sigmoidForward');
      native.sigmoidForward(f32(x, n), f32(y, n));
    },
    sigmoidBackward(dy, y, dx, n) {
      count('sigmoidBackward');
      native.sigmoidBackward(f32(dy, n), f32(y, n), f32(dx, n));
    },
    linearForward(x, w, b, y, s) {
      count('linearForward');
      const [n, inF, outF] = s;
      native.linearForward(f32(x, n * inF), f32(w, outF * inF), b === null ? null : f32(b, outF), f32(y, n * outF), s);
    },
    linearBackwardInput(dy, w, dx, s) {
      count('linearBackwardInput');
      const [n, inF, outF] = s;
      native.linearBackwardInput(f32(dy, n * outF), f32(w, outF * inF), f32(dx, n * inF), s);
    },
    linearBackwardWeight(x, dy, dw, db, s) {
      count('linearBackwardWeight');
      const [n, inF, outF] = s;
      native.linearBackwardWeight(f32(x, n * inF), f32(dy, n * outF), f32(dw, outF * inF), db === null ? null : f32(db, outF), s);
    },
    batchLoss(p, gradP, pairs, labels, weights, result, shape, alpha, beta, weightSum, omega) {
      count('batchLoss');
      const [n, dims, P, levels, method] = shape;
      if (pairs.length !== 2 * P || labels.length !== P || weights.length !== P) throw new Error('host ops: batchLoss pair arrays of the wrong length');
      let sum = 0;
      for (let k = 0; k < P; k++) sum += weights[k];
      if (sum !== weightSum) throw new Error(`host ops: batchLoss weightSum ${weightSum} but the weights sum to ${sum}`);
      traffic.up += pairs.byteLength + labels.byteLength + weights.byteLength;
      traffic.down += result.byteLength;
      const layout = parseLayout(`${dims}x${Math.log2(levels)}`);
      const r = batchLoss(f32(p, n * dims), n, layout, { method: METHODS[method], omega }, pairs, labels, weights, alpha, beta, f32(gradP, n * dims));
      result[0] = r.loss;
      result[1] = r.gradAlpha;
      result[2] = r.gradBeta;
    },
    quantizePack(p, codes, s) {
      count('quantizePack');
      const [n, dims] = s;
      native.quantizePack(f32(p, n * dims), i32(codes, n), s);
    },
    adamUpdate(param, grad, m, v, n, lr, b1, b2, eps, wd, c1, c2) {
      count('adamUpdate');
      native.adamUpdate(f32(param, n), f32(grad, n), f32(m, n), f32(v, n), lr, b1, b2, eps, wd, c1, c2);
    },
  };
}
