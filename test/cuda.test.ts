// The CUDA backend: every kernel against its CPU twin (the serial kernels and the float64
// references) on random inputs of awkward sizes, gradient checks by finite differences run on the
// device ops, the caching allocator and device buffers. Those cases need a usable GPU; without one
// they are skipped and the reason is printed once, so CI without a GPU stays green. Always run:
// capabilities().cuda is well-formed, a binary built with CUDA on a machine without a driver says
// why it cannot use it, and every CUDA op then throws DclError E_CUDA (validation errors first).
//
// DCL_EXPECT_CUDA=1 (bench/gpu-check.sh) turns "not usable" into a failure instead of a skip.
import fs from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  absTanhMaxPool2d,
  capabilities,
  conv2d,
  cuda,
  cudaStatus,
  CudaBuffer,
  DclError,
  hammingDpLoss,
  knnScan,
  maxPool2d,
  pairL1Loss,
  quantize,
  Tensor,
  withIsa,
} from '../lib/index.js';
import { native } from '../lib/native.js';
import {
  absTanhBackwardRef,
  absTanhRef,
  checkGradient,
  conv2dBackwardInputRef,
  conv2dBackwardWeightRef,
  conv2dForwardRef,
  convGeometry,
  linearBackwardInputRef,
  linearBackwardWeightRef,
  linearForwardRef,
  randomFloat32,
  Rng,
  sigmoidBackwardRef,
  sigmoidRef,
  U32,
} from './reference.js';
import type { Pair } from './reference.js';
import { assertClose, assertSame, nchw, sumTolerance } from './helpers.js';

const test = suite('cuda');

const status = cudaStatus();
const expectCuda = /^(1|true|yes)$/i.test(process.env.DCL_EXPECT_CUDA ?? '');
if (!status.usable && !expectCuda) console.log(`  cuda: device cases skipped (${status.compiled ? 'compiled in' : 'not compiled in'}): ${status.reason}`);

/** A case that runs on the device: skipped (counted as such) where CUDA is not usable. */
function gpuTest(name: string, fn: () => void): void {
  if (status.usable) test(`[device] ${name}`, fn);
  else if (expectCuda) test(`[device] ${name}`, () => assert.unreachable(`DCL_EXPECT_CUDA is set but CUDA is not usable: ${status.reason}`));
  else test.skip(`[device] ${name}`, fn);
}

function expectCode(fn: () => unknown, code: string, label: string): void {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof DclError, `${label}: threw ${String(error)} instead of a DclError`);
    assert.is((error as DclError).code, code, `${label}: ${(error as Error).message}`);
    return;
  }
  assert.unreachable(`${label}: expected ${code}, but it returned`);
}

// ---------------------------------------------------------------------------------------------
// Always run

test('capabilities().cuda is well-formed and equals cudaStatus()', () => {
  const c = capabilities().cuda;
  assert.type(c.compiled, 'boolean');
  assert.type(c.usable, 'boolean');
  assert.ok(Array.isArray(c.devices), 'devices is an array');
  if (c.usable) {
    assert.is(c.compiled, true);
    assert.is(c.reason, null, 'reason is null when usable');
    assert.ok(c.devices.length >= 1, 'a usable CUDA has a device');
  } else {
    assert.type(c.reason, 'string');
    assert.ok((c.reason ?? '').trim().length > 0, 'reason is a non-empty string');
  }
  for (const d of c.devices) {
    assert.type(d.name, 'string');
    assert.match(d.computeCapability, /^\d+\.\d+$/);
    assert.ok(Number.isInteger(d.memoryBytes) && d.memoryBytes > 0, `memoryBytes ${d.memoryBytes}`);
    assert.ok(Number.isInteger(d.smCount) && d.smCount > 0, `smCount ${d.smCount}`);
  }
  assert.equal(cudaStatus(), c);
  if (!c.compiled) assert.match(c.reason ?? '', /built without CUDA support/);
});

test('a CUDA build on a machine without a GPU driver loads, and says why CUDA is not usable', () => {
  const c = capabilities().cuda;
  const driver = fs.existsSync('/proc/driver/nvidia/version') || fs.existsSync('/dev/nvidiactl');
  if (!c.compiled || driver) return;
  assert.is(c.usable, false);
  assert.match(c.reason ?? '', /driver|device/i);
  assert.equal(c.devices, []);
});

/** One valid call of every CUDA op (tiny shapes). */
function everyOp(): [string, () => unknown][] {
  const x = new Tensor(new Float32Array(2 * 3 * 6 * 6).fill(0.5), [2, 3, 6, 6]);
  const w = new Tensor(new Float32Array(4 * 3 * 3 * 3).fill(0.1), [4, 3, 3, 3]);
  const y = new Tensor(new Float32Array(2 * 4 * 6 * 6), [2, 4, 6, 6]);
  const pooled = new Tensor(new Float32Array(2 * 3 * 3 * 3), [2, 3, 3, 3]);
  const argmax = new Int32Array(pooled.size);
  const v = new Tensor(new Float32Array(8).fill(0.25), [8]);
  const lx = new Tensor(new Float32Array(3 * 5), [3, 5]);
  const lw = new Tensor(new Float32Array(2 * 5), [2, 5]);
  const ldy = new Tensor(new Float32Array(3 * 2), [3, 2]);
  const p = new Tensor(new Float32Array(3 * 4).fill(0.5), [3, 4]);
  const pairs = { pairs: [[0, 1], [1, 2]] as [number, number][], labels: [-1, 1], alpha: 1, beta: 2 };
  const codes = new Int32Array([1, 2, 3]);
  const f = new Float32Array(8);
  return [
    ['cudaConv2d', () => cuda.cudaConv2d(x, w, null, { padding: 1 })],
    ['cudaConv2dBackwardInput', () => cuda.cudaConv2dBackwardInput(y, w, [2, 3, 6, 6], { padding: 1 })],
    ['cudaConv2dBackwardWeight', () => cuda.cudaConv2dBackwardWeight(x, y, { kernelSize: 3, padding: 1 })],
    ['cudaMaxPool2d', () => cuda.cudaMaxPool2d(x, { kernelSize: 2 })],
    ['cudaMaxPool2dBackward', () => cuda.cudaMaxPool2dBackward(pooled, argmax, [2, 3, 6, 6], { kernelSize: 2 })],
    ['cudaAbsTanhMaxPool2d', () => cuda.cudaAbsTanhMaxPool2d(x, { kernelSize: 2 })],
    ['cudaAbsTanhMaxPool2dBackward', () => cuda.cudaAbsTanhMaxPool2dBackward(pooled, argmax, x, pooled, { kernelSize: 2 })],
    ['cudaAbsTanh', () => cuda.cudaAbsTanh(v)],
    ['cudaAbsTanhBackward', () => cuda.cudaAbsTanhBackward(v, v, v)],
    ['cudaSigmoid', () => cuda.cudaSigmoid(v)],
    ['cudaSigmoidBackward', () => cuda.cudaSigmoidBackward(v, v)],
    ['cudaLinear', () => cuda.cudaLinear(lx, lw, null)],
    ['cudaLinearBackwardInput', () => cuda.cudaLinearBackwardInput(ldy, lw)],
    ['cudaLinearBackwardWeight', () => cuda.cudaLinearBackwardWeight(lx, ldy)],
    ['cudaHammingDpLoss', () => cuda.cudaHammingDpLoss({ p, ...pairs })],
    ['cudaPairL1Loss', () => cuda.cudaPairL1Loss({ values: p, ...pairs })],
    ['cudaQuantize', () => cuda.cudaQuantize(p, '4x1')],
    ['cudaKnnScan', () => cuda.cudaKnnScan(codes, codes, '8x4', 2)],
    ['cudaAdamUpdate', () => cuda.cudaAdamUpdate(f, f.slice(), f.slice(), f.slice(), { lr: 1e-3, step: 1 })],
    ['CudaBuffer.alloc', () => CudaBuffer.alloc(64)],
    ['CudaBuffer.from', () => CudaBuffer.from(new Float32Array(4))],
    ['cudaSynchronize', () => cuda.cudaSynchronize()],
    ['cudaFmaPeak', () => cuda.cudaFmaPeak(0.01)],
    ['cudaCopyBandwidth', () => cuda.cudaCopyBandwidth(1 << 20, 1)],
  ];
}

test('without a usable CUDA every CUDA op throws DclError E_CUDA with the reason (no crash)', () => {
  if (status.usable) return;
  for (const [name, call] of everyOp()) {
    expectCode(call, 'E_CUDA', name);
    try {
      call();
    } catch (error) {
      assert.ok((error as Error).message.includes(status.reason ?? '\u0000'), `${name}: the message names the reason: ${(error as Error).message}`);
    }
  }
  // The raw addon functions too (host arrays straight to the binding): an error, not a crash.
  expectCode(() => native.cudaConv2dForward(new Float32Array(9), new Float32Array(9), null, new Float32Array(1), [1, 1, 3, 3, 1, 3, 3, 1, 1, 0, 0]), 'E_CUDA', 'native.cudaConv2dForward');
  expectCode(() => native.cudaAlloc(16), 'E_CUDA', 'native.cudaAlloc');
  if (status.compiled) {
    native.cudaFree(12345); // unknown buffers are ignored
    assert.is(native.cudaMemoryStats().bytesInUse, 0, 'nothing was allocated');
  }
});

test('CUDA ops check their arguments first (E_SHAPE / E_ARG, as the CPU ops)', () => {
  const x = new Tensor(new Float32Array(2 * 3 * 6 * 6), [2, 3, 6, 6]);
  const w = new Tensor(new Float32Array(4 * 2 * 3 * 3), [4, 2, 3, 3]);
  expectCode(() => cuda.cudaConv2d(x, w), 'E_SHAPE', 'conv channels');
  expectCode(() => cuda.cudaConv2d(x, new Tensor(new Float32Array(4 * 3 * 3 * 3), [4, 3, 3, 3]), null, { padding: 3 }), 'E_ARG', 'conv padding');
  expectCode(() => cuda.cudaConv2d({ data: new Float32Array(5), shape: [1, 1, 2, 2] }, w), 'E_SHAPE', 'conv data length');
  expectCode(() => cuda.cudaMaxPool2d(x, { kernelSize: 7 }), 'E_SHAPE', 'pool window');
  expectCode(() => cuda.cudaMaxPool2dBackward(new Tensor(new Float32Array(2 * 3 * 3 * 3), [2, 3, 3, 3]), new Int32Array(3), [2, 3, 6, 6], { kernelSize: 2 }), 'E_ARG', 'pool argmax length');
  expectCode(() => cuda.cudaLinear(new Tensor(new Float32Array(6), [2, 3]), new Tensor(new Float32Array(8), [2, 4])), 'E_SHAPE', 'linear');
  expectCode(() => cuda.cudaHammingDpLoss({ p: new Tensor(new Float32Array(4).fill(2), [2, 2]), pairs: [[0, 1]], labels: [1], alpha: 1, beta: 1 }), 'E_ARG', 'dp p range');
  expectCode(() => cuda.cudaPairL1Loss({ values: new Tensor(new Float32Array(4), [2, 2]), pairs: [[0, 2]], labels: [1], alpha: 1, beta: 1 }), 'E_ARG', 'pair index');
  expectCode(() => cuda.cudaQuantize(new Tensor(new Float32Array(6), [2, 3]), '8x4'), 'E_SHAPE', 'quantize n');
  expectCode(() => cuda.cudaKnnScan(new Int32Array(4), new Int32Array(1), '8x4', 65), 'E_ARG', 'knn k above the device limit');
  expectCode(() => cuda.cudaKnnScan(new Int32Array([1 << 20]), new Int32Array(1), '4x4', 1), 'E_ARG', 'knn code bits');
  expectCode(() => cuda.cudaAdamUpdate(new Float32Array(3), new Float32Array(2), new Float32Array(3), new Float32Array(3), { lr: 1, step: 1 }), 'E_SHAPE', 'adam lengths');
  expectCode(() => cuda.cudaAdamUpdate(new Float32Array(3), new Float32Array(3), new Float32Array(3), new Float32Array(3), { lr: 1, step: 0 }), 'E_ARG', 'adam step');
  expectCode(() => cuda.cudaFmaPeak(-1), 'E_ARG', 'fma peak seconds');
});

// ---------------------------------------------------------------------------------------------
// On the device: every op against its CPU twin

interface ConvCase {
  n: number;
  cin: number;
  h: number;
  w: number;
  cout: number;
  kernel: Pair;
  stride: Pair;
  padding: Pair;
}

const CONV_CASES: ConvCase[] = [
  { n: 1, cin: 1, h: 7, w: 5, cout: 3, kernel: [3, 3], stride: [1, 1], padding: [1, 1] },
  { n: 7, cin: 3, h: 13, w: 11, cout: 5, kernel: [3, 2], stride: [2, 1], padding: [1, 0] },
  { n: 2, cin: 17, h: 9, w: 9, cout: 33, kernel: [5, 5], stride: [1, 1], padding: [2, 2] },
  { n: 3, cin: 5, h: 6, w: 7, cout: 130, kernel: [1, 1], stride: [1, 1], padding: [0, 0] },
  { n: 1, cin: 65, h: 5, w: 5, cout: 67, kernel: [3, 3], stride: [3, 2], padding: [2, 1] },
  { n: 7, cin: 1, h: 64, w: 64, cout: 32, kernel: [5, 5], stride: [1, 1], padding: [2, 2] }, // DCL-S conv1
  { n: 2, cin: 64, h: 8, w: 8, cout: 128, kernel: [3, 3], stride: [1, 1], padding: [1, 1] }, // DCL-S conv3
];

function convLabel(c: ConvCase): string {
  return `n${c.n} cin${c.cin} ${c.h}x${c.w} cout${c.cout} k${c.kernel} s${c.stride} p${c.padding}`;
}

gpuTest('conv2d forward, backward input and backward weight (+ bias) match the float64 reference', () => {
  const rng = new Rng(101);
  for (const c of CONV_CASES) {
    const g = convGeometry(c.n, c.cin, c.h, c.w, c.cout, c.kernel, c.stride, c.padding);
    const x = new Tensor(randomFloat32(rng, c.n * c.cin * c.h * c.w), [c.n, c.cin, c.h, c.w]);
    const w = new Tensor(randomFloat32(rng, c.cout * c.cin * c.kernel[0] * c.kernel[1]), [c.cout, c.cin, ...c.kernel]);
    const b = new Tensor(randomFloat32(rng, c.cout), [c.cout]);
    const dy = new Tensor(randomFloat32(rng, c.n * c.cout * g.oh * g.ow), [c.n, c.cout, g.oh, g.ow]);
    const opts = { stride: c.stride, padding: c.padding };
    const label = convLabel(c);

    const y = cuda.cudaConv2d(x, w, b, opts);
    const yRef = conv2dForwardRef(x.data, w.data, b.data, g);
    assertClose(y.data, yRef.value, sumTolerance(yRef), `conv forward ${label}`, nchw(y.shape));
    // Against the CPU kernel both sides carry rounding error: twice the reference tolerance.
    assertClose(y.data, conv2d(x, w, b, opts).data, sumTolerance(yRef, 2e-4, 32), `conv forward vs CPU ${label}`);

    const dx = cuda.cudaConv2dBackwardInput(dy, w, [c.n, c.cin, c.h, c.w], opts);
    const dxRef = conv2dBackwardInputRef(dy.data, w.data, g);
    assertClose(dx.data, dxRef.value, sumTolerance(dxRef), `conv backward input ${label}`, nchw(dx.shape));

    const grads = cuda.cudaConv2dBackwardWeight(x, dy, { kernelSize: c.kernel, ...opts });
    const gRef = conv2dBackwardWeightRef(x.data, dy.data, g);
    assertClose(grads.weight.data, gRef.weight.value, sumTolerance(gRef.weight), `conv backward weight ${label}`, nchw(grads.weight.shape));
    assertClose(grads.bias!.data, gRef.bias.value, sumTolerance(gRef.bias), `conv backward bias ${label}`);
    const noBias = cuda.cudaConv2dBackwardWeight(x, dy, { kernelSize: c.kernel, ...opts, bias: false });
    assert.is(noBias.bias, null);
  }
});

gpuTest('max-pool and fused |tanh| max-pool: argmax and y as the serial kernel, backward bit for bit', () => {
  const rng = new Rng(202);
  const cases: [number[], Pair, Pair][] = [
    [[1, 1, 5, 7], [2, 2], [2, 2]],
    [[7, 3, 9, 8], [3, 2], [2, 1]], // overlapping windows: gradients add up
    [[2, 33, 16, 16], [2, 2], [2, 2]],
    [[3, 5, 6, 5], [3, 3], [1, 1]],
  ];
  for (const [shape, kernel, stride] of cases) {
    const size = shape.reduce((a, b) => a * b, 1);
    // Small integers make ties (the first maximum wins) and exact zeros (sign 0) common.
    const x = new Tensor(Float32Array.from({ length: size }, () => rng.int(-3, 3) * 0.5 + (rng.bool(0.5) ? 0 : rng.uniform(-0.1, 0.1))), shape);
    const opts = { kernelSize: kernel, stride };
    const label = `[${shape}] k${kernel} s${stride}`;
    withIsa('serial', () => {
      const cpu = maxPool2d(x, opts);
      const gpu = cuda.cudaMaxPool2d(x, opts);
      assertSame(gpu.argmax, cpu.argmax, `max-pool argmax ${label}`);
      assertSame(gpu.output.data, cpu.output.data, `max-pool y ${label}`);
      const dy = new Tensor(randomFloat32(rng, cpu.output.size), cpu.output.shape as number[]);
      const dxCpu = new Float32Array(size);
      native.maxPool2dBackward(dy.data, cpu.argmax, dxCpu, [...shape, ...kernel, ...stride]);
      assertSame(cuda.cudaMaxPool2dBackward(dy, gpu.argmax, shape, opts).data, dxCpu, `max-pool backward ${label}`);

      const cpuT = absTanhMaxPool2d(x, opts);
      const gpuT = cuda.cudaAbsTanhMaxPool2d(x, opts);
      assertSame(gpuT.argmax, cpuT.argmax, `|tanh| pool argmax ${label}`);
      assertClose(gpuT.output.data, cpuT.output.data, (i) => 8 * U32 * Math.abs(cpuT.output.data[i]) + 1e-30, `|tanh| pool y ${label}`);
      const dxT = new Float32Array(size);
      native.absTanhMaxPool2dBackward(dy.data, cpuT.argmax, x.data, gpuT.output.data, dxT, [...shape, ...kernel, ...stride]);
      assertSame(cuda.cudaAbsTanhMaxPool2dBackward(dy, gpuT.argmax, x, gpuT.output, opts).data, dxT, `|tanh| pool backward ${label}`);
    });
  }
  // An argmax outside its window is refused (E_ARG), not scattered somewhere.
  const x = new Tensor(randomFloat32(rng, 16), [1, 1, 4, 4]);
  const { output, argmax } = cuda.cudaMaxPool2d(x, { kernelSize: 2 });
  const bad = argmax.slice();
  bad[1] = 0;
  expectCode(() => cuda.cudaMaxPool2dBackward(output, bad, [1, 1, 4, 4], { kernelSize: 2 }), 'E_ARG', 'argmax outside its window');
  bad[1] = -5;
  expectCode(() => cuda.cudaMaxPool2dBackward(output, bad, [1, 1, 4, 4], { kernelSize: 2 }), 'E_ARG', 'negative argmax');
});

gpuTest('|tanh| and sigmoid: forward within 2 ulp of the float64 reference, backward bit for bit with the serial kernel', () => {
  const rng = new Rng(303);
  for (const n of [1, 7, 255, 256, 257, 100_003]) {
    const x = new Tensor(randomFloat32(rng, n, -6, 6), [n]);
    if (n > 3) x.data[3] = 0;
    const dy = new Tensor(randomFloat32(rng, n), [n]);
    const tol = (ref: Float64Array) => (i: number) => 8 * U32 * Math.abs(ref[i]) + 1e-37;
    const y = cuda.cudaAbsTanh(x);
    const yRef = absTanhRef(x.data);
    assertClose(y.data, yRef, tol(yRef), `absTanh n=${n}`);
    const s = cuda.cudaSigmoid(x);
    const sRef = sigmoidRef(x.data);
    assertClose(s.data, sRef, tol(sRef), `sigmoid n=${n}`);
    withIsa('serial', () => {
      const dxCpu = new Float32Array(n);
      native.absTanhBackward(dy.data, x.data, y.data, dxCpu);
      assertSame(cuda.cudaAbsTanhBackward(dy, x, y).data, dxCpu, `absTanh backward n=${n}`);
      const dsCpu = new Float32Array(n);
      native.sigmoidBackward(dy.data, s.data, dsCpu);
      assertSame(cuda.cudaSigmoidBackward(dy, s).data, dsCpu, `sigmoid backward n=${n}`);
    });
    assertClose(cuda.cudaAbsTanhBackward(dy, x, y).data, absTanhBackwardRef(dy.data, x.data, y.data), (i) => 1e-6 * (1 + Math.abs(dy.data[i])), 'absTanh backward ref');
    assertClose(cuda.cudaSigmoidBackward(dy, s).data, sigmoidBackwardRef(dy.data, s.data), (i) => 1e-6 * (1 + Math.abs(dy.data[i])), 'sigmoid backward ref');
  }
});

gpuTest('linear forward and both backwards match the float64 reference (batch 1 and 7, odd sizes, large K)', () => {
  const rng = new Rng(404);
  for (const [n, inF, outF] of [[1, 1, 1], [7, 13, 5], [1, 4096, 256], [7, 65, 129], [256, 256, 32], [3, 2000, 3]]) {
    const x = new Tensor(randomFloat32(rng, n * inF), [n, inF]);
    const w = new Tensor(randomFloat32(rng, outF * inF), [outF, inF]);
    const b = new Tensor(randomFloat32(rng, outF), [outF]);
    const dy = new Tensor(randomFloat32(rng, n * outF), [n, outF]);
    const label = `[${n}, ${inF}] -> ${outF}`;
    const yRef = linearForwardRef(x.data, w.data, b.data, n, inF, outF);
    assertClose(cuda.cudaLinear(x, w, b).data, yRef.value, sumTolerance(yRef), `linear ${label}`);
    const dxRef = linearBackwardInputRef(dy.data, w.data, n, inF, outF);
    assertClose(cuda.cudaLinearBackwardInput(dy, w).data, dxRef.value, sumTolerance(dxRef), `linear backward input ${label}`);
    const gRef = linearBackwardWeightRef(x.data, dy.data, n, inF, outF);
    const g = cuda.cudaLinearBackwardWeight(x, dy);
    assertClose(g.weight.data, gRef.weight.value, sumTolerance(gRef.weight), `linear backward weight ${label}`);
    assertClose(g.bias!.data, gRef.bias.value, sumTolerance(gRef.bias), `linear backward bias ${label}`);
  }
});

function randomPairs(rng: Rng, images: number, count: number): { pairs: Int32Array; labels: Float32Array; weights: Float32Array } {
  const pairs = new Int32Array(2 * count);
  const labels = new Float32Array(count);
  const weights = new Float32Array(count);
  for (let k = 0; k < count; k++) {
    pairs[2 * k] = rng.int(0, images - 1);
    pairs[2 * k + 1] = rng.int(0, images - 1);
    labels[k] = rng.bool() ? 1 : -1;
    weights[k] = rng.uniform(0, 2);
  }
  return { pairs, labels, weights };
}

function closeRel(got: number, want: number, rtol: number, label: string): void {
  assert.ok(Math.abs(got - want) <= rtol * Math.max(1e-300, Math.abs(want)) + 1e-300, `${label}: got ${got} want ${want}`);
}

gpuTest('pair L1 loss and the DP expected Hamming loss match the CPU kernels (losses, gradients, alpha / beta)', () => {
  const rng = new Rng(505);
  for (const [images, n, count] of [[2, 1, 1], [7, 32, 20], [64, 17, 2016], [33, 64, 500], [256, 32, 8000]]) {
    const { pairs, labels, weights } = randomPairs(rng, images, count);
    const p = new Tensor(randomFloat32(rng, images * n, 0, 1), [images, n]);
    for (const withWeights of [false, true]) {
      const common = { pairs, labels, alpha: 0.3, beta: 2.5, reduction: 'mean' as const, gradOutput: 1.7, ...(withWeights ? { weights } : {}) };
      const label = `N${images} n${n} P${count}${withWeights ? ' weighted' : ''}`;
      // L1 on rounded codes with directions from the unrounded values (technique 1's shape).
      const f = new Tensor(Float32Array.from(p.data, (v) => Math.floor(16 * v)), [images, n]);
      const s = new Tensor(Float32Array.from(p.data, (v) => 16 * v), [images, n]);
      const cpuL1 = pairL1Loss({ values: f, signs: s, ...common });
      const gpuL1 = cuda.cudaPairL1Loss({ values: f, signs: s, ...common });
      closeRel(gpuL1.loss, cpuL1.loss, 1e-12, `L1 loss ${label}`);
      assertClose(gpuL1.perPair, cpuL1.perPair, (i) => 1e-13 * Math.abs(cpuL1.perPair[i]) + 1e-300, `L1 per pair ${label}`);
      assertClose(gpuL1.gradValues!.data, cpuL1.gradValues!.data, (i) => 1e-6 * Math.abs(cpuL1.gradValues!.data[i]) + 1e-30, `L1 grad ${label}`);
      closeRel(gpuL1.gradAlpha, cpuL1.gradAlpha, 1e-10, `L1 d/dalpha ${label}`);
      closeRel(gpuL1.gradBeta, cpuL1.gradBeta, 1e-10, `L1 d/dbeta ${label}`);

      const cpuDp = hammingDpLoss({ p, ...common });
      const gpuDp = cuda.cudaHammingDpLoss({ p, ...common });
      closeRel(gpuDp.loss, cpuDp.loss, 1e-12, `DP loss ${label}`);
      assertClose(gpuDp.perPair, cpuDp.perPair, (i) => 1e-12 * Math.abs(cpuDp.perPair[i]) + 1e-300, `DP per pair ${label}`);
      assertClose(gpuDp.gradP!.data, cpuDp.gradP!.data, (i) => 1e-6 * Math.abs(cpuDp.gradP!.data[i]) + 1e-12, `DP grad ${label}`);
      closeRel(gpuDp.gradAlpha, cpuDp.gradAlpha, 1e-9, `DP d/dalpha ${label}`);
      closeRel(gpuDp.gradBeta, cpuDp.gradBeta, 1e-9, `DP d/dbeta ${label}`);
      const forwardOnly = cuda.cudaHammingDpLoss({ p, ...common, gradients: false });
      assert.is(forwardOnly.gradP, null);
      assertSame(forwardOnly.perPair, gpuDp.perPair, `DP forward only ${label}`);
    }
  }
});

gpuTest('quantize / pack and the k-nearest scans give exactly the CPU codes and neighbours', () => {
  const rng = new Rng(606);
  for (const layout of ['32x1', '16x2', '8x4', '4x8', '1x32', '5x3']) {
    const [n] = layout.split('x').map(Number);
    const count = 1001;
    const p = new Tensor(randomFloat32(rng, count * n, -0.1, 1.1), [count, n]);
    p.data[0] = Number.NaN;
    p.data[1] = 1;
    p.data[2] = -0;
    p.data[3] = Number.POSITIVE_INFINITY;
    p.data[4] = 1 - 2 ** -24;
    const codes = cuda.cudaQuantize(p, layout);
    assertSame(codes, quantize(p, layout), `quantize ${layout}`);
    for (const [dbSize, queries, k] of [[1, 1, 1], [7, 3, 10], [1001, 7, 1], [1001, 7, 5], [1001, 1, 64], [300, 2, 64]]) {
      const db = codes.subarray(0, dbSize);
      const q = codes.subarray(count - queries);
      for (const metric of ['layout', 'hamming'] as const) {
        const cpu = knnScan(db, q, layout, k, { metric });
        const gpu = cuda.cudaKnnScan(db, q, layout, k, { metric });
        assertSame(gpu.indices, cpu.indices, `knn indices ${layout} N${dbSize} Q${queries} k${k} ${metric}`);
        assertSame(gpu.distances, cpu.distances, `knn distances ${layout} N${dbSize} Q${queries} k${k} ${metric}`);
      }
    }
  }
});

gpuTest('Adam / AdamW update is bit-identical to the serial CPU kernel over several steps', () => {
  const rng = new Rng(707);
  for (const n of [1, 7, 1000, 65_537]) {
    const p0 = randomFloat32(rng, n);
    const cpu = { p: p0.slice(), m: new Float32Array(n), v: new Float32Array(n) };
    const gpu = { p: p0.slice(), m: new Float32Array(n), v: new Float32Array(n) };
    for (let t = 1; t <= 3; t++) {
      const g = randomFloat32(rng, n);
      const [lr, b1, b2, eps, wd] = [1e-3, 0.9, 0.999, 1e-8, 0.01];
      withIsa('serial', () => native.adamUpdate(cpu.p, g, cpu.m, cpu.v, lr, b1, b2, eps, wd, 1 - b1 ** t, Math.sqrt(1 - b2 ** t)));
      cuda.cudaAdamUpdate(gpu.p, g, gpu.m, gpu.v, { lr, beta1: b1, beta2: b2, eps, weightDecay: wd, step: t });
    }
    assertSame(gpu.p, cpu.p, `adam param n=${n}`);
    assertSame(gpu.m, cpu.m, `adam m n=${n}`);
    assertSame(gpu.v, cpu.v, `adam v n=${n}`);
  }
});

gpuTest('finite differences through the device forwards agree with the device gradients', () => {
  const rng = new Rng(808);
  // conv2d: dL/dx and dL/dw for L = sum(y R).
  const g = convGeometry(2, 3, 6, 5, 4, [3, 3], [1, 2], [1, 1]);
  const x = randomFloat32(rng, 2 * 3 * 6 * 5);
  const w = randomFloat32(rng, 4 * 3 * 9);
  const R = randomFloat32(rng, 2 * 4 * g.oh * g.ow);
  const opts = { stride: [1, 2] as [number, number], padding: 1 };
  const dyT = new Tensor(R, [2, 4, g.oh, g.ow]);
  const dx = cuda.cudaConv2dBackwardInput(dyT, new Tensor(w, [4, 3, 3, 3]), [2, 3, 6, 5], opts).data;
  const dw = cuda.cudaConv2dBackwardWeight(new Tensor(x, [2, 3, 6, 5]), dyT, { kernelSize: 3, ...opts }).weight.data;
  const some = (len: number) => Array.from({ length: 12 }, () => rng.int(0, len - 1));
  checkGradient({
    label: 'device conv2d dL/dx',
    point: Float64Array.from(x),
    forward: (pt) => cuda.cudaConv2d(new Tensor(Float32Array.from(pt), [2, 3, 6, 5]), new Tensor(w, [4, 3, 3, 3]), null, opts).data,
    R,
    analytic: dx,
    indices: some(x.length),
    h: 1e-2,
    rtol: 1e-2,
    atol: 2e-3,
  });
  checkGradient({
    label: 'device conv2d dL/dw',
    point: Float64Array.from(w),
    forward: (pt) => cuda.cudaConv2d(new Tensor(x, [2, 3, 6, 5]), new Tensor(Float32Array.from(pt), [4, 3, 3, 3]), null, opts).data,
    R,
    analytic: dw,
    indices: some(w.length),
    h: 1e-2,
    rtol: 1e-2,
    atol: 2e-3,
  });
  // linear + sigmoid: dL/dx through both device backwards.
  const lx = randomFloat32(rng, 3 * 7);
  const lw = randomFloat32(rng, 5 * 7);
  const lR = randomFloat32(rng, 3 * 5);
  const forward = (pt: Float64Array) => cuda.cudaSigmoid(cuda.cudaLinear(new Tensor(Float32Array.from(pt), [3, 7]), new Tensor(lw, [5, 7]))).data;
  const y = cuda.cudaSigmoid(cuda.cudaLinear(new Tensor(lx, [3, 7]), new Tensor(lw, [5, 7])));
  const dz = cuda.cudaSigmoidBackward(new Tensor(lR, [3, 5]), y);
  const dlx = cuda.cudaLinearBackwardInput(dz, new Tensor(lw, [5, 7])).data;
  checkGradient({ label: 'device sigmoid(linear) dL/dx', point: Float64Array.from(lx), forward, R: lR, analytic: dlx, indices: some(lx.length), h: 1e-2, rtol: 2e-2, atol: 2e-3 });
  // DP expected loss: dL/dp (float64 loss, so a small step).
  const p = randomFloat32(rng, 4 * 9, 0.05, 0.95);
  const dpArgs = { pairs: [[0, 1], [2, 3], [1, 2], [0, 3]] as [number, number][], labels: [-1, 1, 1, -1], alpha: 0.7, beta: 2, reduction: 'sum' as const };
  const grad = cuda.cudaHammingDpLoss({ p: new Tensor(p, [4, 9]), ...dpArgs }).gradP!.data;
  checkGradient({
    label: 'device DP loss dL/dp',
    point: Float64Array.from(p),
    forward: (pt) => [cuda.cudaHammingDpLoss({ p: new Tensor(Float32Array.from(pt), [4, 9]), ...dpArgs, gradients: false }).loss],
    R: [1],
    analytic: grad,
    indices: some(p.length),
    h: 1e-3,
    rtol: 1e-3,
    atol: 1e-4,
  });
});

gpuTest('the caching allocator: repeated steps stop calling cudaMalloc; device buffers round-trip and chain ops', () => {
  const rng = new Rng(909);
  const x = new Tensor(randomFloat32(rng, 4 * 8 * 10 * 10), [4, 8, 10, 10]);
  const w = new Tensor(randomFloat32(rng, 16 * 8 * 9), [16, 8, 3, 3]);
  for (let i = 0; i < 3; i++) cuda.cudaConv2d(x, w, null, { padding: 1 });
  const before = cuda.cudaMemoryStats().deviceAllocations;
  for (let i = 0; i < 10; i++) cuda.cudaConv2d(x, w, null, { padding: 1 });
  assert.is(cuda.cudaMemoryStats().deviceAllocations, before, 'no cudaMalloc in steady state');

  // The same conv with the tensors kept on the device (buffer numbers straight to the binding).
  const bx = CudaBuffer.from(x.data);
  const bw = CudaBuffer.from(w.data);
  const by = CudaBuffer.alloc(4 * 16 * 10 * 10 * 4);
  try {
    native.cudaConv2dForward(bx.handle, bw.handle, null, by.handle, [4, 8, 10, 10, 16, 3, 3, 1, 1, 1, 1]);
    const onDevice = by.download(new Float32Array(4 * 16 * 10 * 10));
    assertSame(onDevice, cuda.cudaConv2d(x, w, null, { padding: 1 }).data, 'device-resident conv = host-to-host conv');
    const back = bx.download(new Float32Array(x.size));
    assertSame(back, x.data, 'upload / download round trip');
  } finally {
    bx.free();
    bw.free();
    by.free();
  }
  expectCode(() => bx.handle, 'E_ARG', 'a freed buffer');
  expectCode(() => native.cudaDownload(123456789, new Float32Array(1)), 'E_ARG', 'an unknown buffer number');
});

test.run();
