// The CUDA benchmark (bench/gpu-check.sh runs it after the CUDA tests): the device's limits,
// measured here (device-to-device copy GB/s, an FMA-loop kernel's GFLOP/s), then every CUDA kernel
// on the DCL-S layer shapes at batch 256 with its GFLOP/s or GB/s next to those limits, one
// DCL-S training step chained from the kernels on device-resident buffers, then DCL-S training
// through train({ device: 'cuda' }) at batch 256 (images/s) next to the CPU's figure (this
// machine's, from the same run, and the repository's reference CPU: the >= 20x acceptance), and
// encode on the device. Writes a Markdown table to $OUT/gpu-check.md (or ./gpu-check.md, or
// --out FILE) and prints it.
//
//   npx tsc -p tsconfig.json && node dist/bench/gpu.js [--quick] [--out FILE]
//
// Timing: the operands live in device buffers (filled once with random values); each kernel gets
// a warm-up call, then runs back to back until about 0.25 s (--quick: 0.1 s) have passed, ended
// by a cudaSynchronize; the figure is the wall time per call. Launch overhead (JS -> N-API ->
// launch, a few microseconds) is part of it, which only matters for the smallest kernels.
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { capabilities, cudaStatus, encodeSync, syntheticFaces, trainSync } from '../lib/index.js';
import type { TrainOptions } from '../lib/index.js';
import { native } from '../lib/native.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const outIndex = args.indexOf('--out');
const outFile =
  outIndex >= 0 ? args[outIndex + 1] : process.env.OUT ? path.join(process.env.OUT, 'gpu-check.md') : path.resolve('gpu-check.md');
const SECONDS = quick ? 0.1 : 0.25;
const BATCH = 256;

const status = cudaStatus();
if (!status.usable) {
  console.error(`CUDA is not usable: ${status.reason}`);
  process.exit(1);
}
const device = status.devices[0];

// ---- device buffers ------------------------------------------------------------------------

const live: number[] = [];

function buffer(bytes: number): number {
  const b = native.cudaAlloc(bytes);
  live.push(b);
  return b;
}

/** A device buffer of `count` uniform floats in [lo, hi) (xorshift: no need for quality). */
let seed = 12345;
function randomFloats(count: number, lo = -1, hi = 1): number {
  const host = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    host[i] = lo + (hi - lo) * ((seed >>> 0) / 4294967296);
  }
  const b = buffer(count * 4);
  native.cudaUpload(b, host);
  return b;
}

function floats(count: number): number {
  return buffer(Math.max(1, count) * 4);
}

// ---- timing --------------------------------------------------------------------------------

/** Milliseconds per call of fn (device work included). */
function time(fn: () => void): number {
  fn();
  native.cudaSynchronize();
  let calls = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  do {
    fn();
    calls++;
    if (calls % 8 === 0 || calls < 8) {
      native.cudaSynchronize();
      elapsed = Number(process.hrtime.bigint() - start) / 1e9;
    }
  } while (elapsed < SECONDS && calls < 100_000);
  native.cudaSynchronize();
  elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  return (elapsed * 1000) / calls;
}

interface Row {
  name: string;
  shape: string;
  ms: number;
  gflops?: number;
  gbs?: number;
}
const rows: Row[] = [];

function compute(name: string, shape: string, flops: number, fn: () => void): void {
  const ms = time(fn);
  rows.push({ name, shape, ms, gflops: flops / (ms * 1e-3) / 1e9 });
  console.log(`${name.padEnd(34)} ${shape.padEnd(34)} ${ms.toFixed(3).padStart(9)} ms ${(flops / (ms * 1e-3) / 1e9).toFixed(0).padStart(7)} GFLOP/s`);
}

function memory(name: string, shape: string, bytes: number, fn: () => void): void {
  const ms = time(fn);
  rows.push({ name, shape, ms, gbs: bytes / (ms * 1e-3) / 1e9 });
  console.log(`${name.padEnd(34)} ${shape.padEnd(34)} ${ms.toFixed(3).padStart(9)} ms ${(bytes / (ms * 1e-3) / 1e9).toFixed(0).padStart(7)} GB/s`);
}

// ---- the limits ------------------------------------------------------------------------------

console.log(`device: ${device.name} (sm ${device.computeCapability}, ${device.smCount} SMs, ${(device.memoryBytes / 2 ** 30).toFixed(0)} GiB)`);
const copyGbs = Math.max(...[0, 1, 2].map(() => native.cudaCopyBandwidth(512 * 2 ** 20, quick ? 5 : 20)));
const fmaGflops = Math.max(...[0, 1].map(() => native.cudaFmaPeak(quick ? 0.1 : 0.3)));
console.log(`limits: device-to-device copy ${copyGbs.toFixed(0)} GB/s (read + write), FP32 FMA ${fmaGflops.toFixed(0)} GFLOP/s`);

// ---- the kernels on the DCL-S shapes at batch 256 ----------------------------------------------

interface Layer {
  name: string;
  cin: number;
  size: number;
  cout: number;
  k: number;
}
const LAYERS: Layer[] = [
  { name: 'conv1', cin: 1, size: 64, cout: 32, k: 5 },
  { name: 'conv2', cin: 32, size: 32, cout: 64, k: 3 },
  { name: 'conv3', cin: 64, size: 16, cout: 128, k: 3 },
  { name: 'conv4', cin: 128, size: 8, cout: 256, k: 3 },
];

for (const l of LAYERS) {
  const n = BATCH;
  const pad = (l.k - 1) / 2;
  const shape = [n, l.cin, l.size, l.size, l.cout, l.k, l.k, 1, 1, pad, pad];
  const x = randomFloats(n * l.cin * l.size * l.size);
  const w = randomFloats(l.cout * l.cin * l.k * l.k, -0.1, 0.1);
  const b = randomFloats(l.cout);
  const y = floats(n * l.cout * l.size * l.size);
  const dx = floats(n * l.cin * l.size * l.size);
  const dw = floats(l.cout * l.cin * l.k * l.k);
  const db = floats(l.cout);
  const flops = 2 * n * l.cout * l.size * l.size * l.cin * l.k * l.k;
  const label = `${n}x${l.cin}x${l.size}x${l.size} -> ${l.cout}, ${l.k}x${l.k}`;
  compute(`${l.name} forward`, label, flops, () => native.cudaConv2dForward(x, w, b, y, shape));
  compute(`${l.name} backward input`, label, flops, () => native.cudaConv2dBackwardInput(y, w, dx, shape));
  compute(`${l.name} backward weight + bias`, label, flops, () => native.cudaConv2dBackwardWeight(x, y, dw, db, shape));
  // Pooling on this layer's output (the network pools every conv output 2x2).
  const pooled = floats((n * l.cout * l.size * l.size) / 4);
  const argmax = buffer((n * l.cout * l.size * l.size) / 4 * 4);
  const pshape = [n, l.cout, l.size, l.size, 2, 2, 2, 2];
  const inBytes = n * l.cout * l.size * l.size * 4;
  memory(`${l.name} |tanh| + max-pool forward`, `${n}x${l.cout}x${l.size}x${l.size}, 2x2`, inBytes * 1.5, () =>
    native.cudaAbsTanhMaxPool2dForward(y, pooled, argmax, pshape),
  );
  memory(`${l.name} |tanh| + max-pool backward`, `${n}x${l.cout}x${l.size}x${l.size}, 2x2`, inBytes * 2.75, () =>
    native.cudaAbsTanhMaxPool2dBackward(pooled, argmax, y, pooled, y, pshape, false),
  );
  memory(`${l.name} max-pool forward`, `${n}x${l.cout}x${l.size}x${l.size}, 2x2`, inBytes * 1.5, () => native.cudaMaxPool2dForward(y, pooled, argmax, pshape));
  memory(`${l.name} max-pool backward`, `${n}x${l.cout}x${l.size}x${l.size}, 2x2`, inBytes * 1.5, () =>
    native.cudaMaxPool2dBackward(pooled, argmax, y, pshape, false),
  );
}

{
  const count = BATCH * 32 * 64 * 64;
  const x = randomFloats(count);
  const y = floats(count);
  const dx = floats(count);
  memory('|tanh| forward', `${count} floats`, count * 8, () => native.cudaAbsTanhForward(x, y, count));
  memory('|tanh| backward', `${count} floats`, count * 16, () => native.cudaAbsTanhBackward(x, x, y, dx, count));
  memory('sigmoid forward', `${count} floats`, count * 8, () => native.cudaSigmoidForward(x, y, count));
  memory('sigmoid backward', `${count} floats`, count * 12, () => native.cudaSigmoidBackward(x, y, dx, count));
}

for (const [name, inF, outF] of [['fc1', 4096, 256], ['fc2', 256, 32]] as const) {
  const shape = [BATCH, inF, outF];
  const x = randomFloats(BATCH * inF);
  const w = randomFloats(outF * inF, -0.05, 0.05);
  const b = randomFloats(outF);
  const y = floats(BATCH * outF);
  const dx = floats(BATCH * inF);
  const dw = floats(outF * inF);
  const db = floats(outF);
  const flops = 2 * BATCH * inF * outF;
  const label = `${BATCH}x${inF} -> ${outF}`;
  compute(`${name} forward`, label, flops, () => native.cudaLinearForward(x, w, b, y, shape));
  compute(`${name} backward input`, label, flops, () => native.cudaLinearBackwardInput(y, w, dx, shape));
  compute(`${name} backward weight + bias`, label, flops, () => native.cudaLinearBackwardWeight(x, y, dw, db, shape));
}

// All pairs of a batch of 256 images with 32 outputs (the training loss).
function allPairs(images: number, perIdentity: number): { pairs: Int32Array; labels: Float32Array } {
  const count = (images * (images - 1)) / 2;
  const pairs = new Int32Array(2 * count);
  const labels = new Float32Array(count);
  let k = 0;
  for (let a = 0; a < images; a++)
    for (let b = a + 1; b < images; b++, k++) {
      pairs[2 * k] = a;
      pairs[2 * k + 1] = b;
      labels[k] = Math.floor(a / perIdentity) === Math.floor(b / perIdentity) ? -1 : 1;
    }
  return { pairs, labels };
}
const batchPairs = allPairs(BATCH, 4);
{
  const P = batchPairs.labels.length;
  const p = randomFloats(BATCH * 32, 0, 1);
  const grad = floats(BATCH * 32);
  const loss = buffer(P * 8);
  const scalars = buffer(16);
  const shape = [BATCH, 32, P];
  // The DP does about 2 n^2 multiply-adds per pair forward and backward (n = 32): quoted as GFLOP/s.
  compute('DP expected loss + gradient', `${BATCH} images x 32 bits, ${P} pairs`, P * 4 * 32 * 33, () =>
    native.cudaHammingDp(p, grad, batchPairs.pairs, batchPairs.labels, null, loss, scalars, shape, 0.3, 2.5, 1 / P),
  );
  memory('pair L1 loss + gradient', `${BATCH} images x 32 dims, ${P} pairs`, P * 2 * 32 * 4 * 2, () =>
    native.cudaPairL1Loss(p, p, grad, batchPairs.pairs, batchPairs.labels, null, loss, scalars, shape, 0.3, 2.5, 1 / P),
  );
}

{
  const count = 1 << 22;
  const p = randomFloats(count * 8, 0, 1);
  const codes = buffer(count * 4);
  memory('quantize / pack 8x4', `${count} codes`, count * 36, () => native.cudaQuantizePack(p, codes, [count, 8, 4]));
  const queries = 256;
  const database = 1 << 20;
  const indices = buffer(queries * 10 * 4);
  const distances = buffer(queries * 10 * 4);
  memory('k-NN scan 8x4 L1, k = 10', `${database} codes x ${queries} queries`, database * 4 * queries, () =>
    native.cudaCodeKnn(codes, codes, indices, distances, [database, queries, 8, 4, 0, 10]),
  );
  memory('k-NN scan 32x1 Hamming, k = 10', `${database} codes x ${queries} queries`, database * 4 * queries, () =>
    native.cudaCodeKnn(codes, codes, indices, distances, [database, queries, 32, 1, 1, 10]),
  );
}

{
  const n = 1_450_000; // DCL-S parameters
  const p = randomFloats(n);
  const g = randomFloats(n);
  const m = randomFloats(n);
  const v = randomFloats(n, 0, 1);
  memory('Adam update', `${n} parameters`, n * 4 * 7, () => native.cudaAdamUpdate(p, g, m, v, n, 1e-4, 0.9, 0.999, 1e-8, 1e-4, 0.5, 0.7));
}

// ---- one DCL-S training step chained from the kernels (no autograd, no host sampling) ---------

function dclsStep(): { ms: number } {
  const n = BATCH;
  const convs = LAYERS.map((l) => ({
    ...l,
    w: randomFloats(l.cout * l.cin * l.k * l.k, -0.1, 0.1),
    b: randomFloats(l.cout, -0.1, 0.1),
    dw: floats(l.cout * l.cin * l.k * l.k),
    db: floats(l.cout),
    x: floats(n * l.cin * l.size * l.size), // this layer's input (the previous pooled output)
    dx: floats(n * l.cin * l.size * l.size),
    y: floats(n * l.cout * l.size * l.size), // pre-activation
    dy: floats(n * l.cout * l.size * l.size),
    pooled: floats((n * l.cout * l.size * l.size) / 4),
    dpooled: floats((n * l.cout * l.size * l.size) / 4),
    argmax: buffer((n * l.cout * l.size * l.size) / 4 * 4),
  }));
  native.cudaUpload(convs[0].x, new Float32Array(n * 64 * 64).fill(0.1));
  const fc = [
    { inF: 4096, outF: 256 },
    { inF: 256, outF: 32 },
  ].map((f) => ({
    ...f,
    w: randomFloats(f.outF * f.inF, -0.05, 0.05),
    b: randomFloats(f.outF, -0.1, 0.1),
    dw: floats(f.outF * f.inF),
    db: floats(f.outF),
    y: floats(n * f.outF),
    act: floats(n * f.outF),
    dact: floats(n * f.outF),
    dy: floats(n * f.outF),
    dx: floats(n * f.inF),
  }));
  const P = batchPairs.labels.length;
  const loss = buffer(P * 8);
  const scalars = buffer(16);
  const params = [...convs, ...fc].flatMap((l) => {
    const count = 'cin' in l ? l.cout * l.cin * l.k * l.k : l.outF * l.inF;
    const bias = 'cin' in l ? l.cout : l.outF;
    return [
      { p: l.w, g: l.dw, n: count, m: floats(count), v: floats(count) },
      { p: l.b, g: l.db, n: bias, m: floats(bias), v: floats(bias) },
    ];
  });
  for (const q of params) {
    native.cudaUpload(q.m, new Float32Array(q.n));
    native.cudaUpload(q.v, new Float32Array(q.n));
  }
  const step = () => {
    // forward
    for (let i = 0; i < convs.length; i++) {
      const l = convs[i];
      const pad = (l.k - 1) / 2;
      native.cudaConv2dForward(l.x, l.w, l.b, l.y, [n, l.cin, l.size, l.size, l.cout, l.k, l.k, 1, 1, pad, pad]);
      const next = i + 1 < convs.length ? convs[i + 1].x : l.pooled;
      native.cudaAbsTanhMaxPool2dForward(l.y, next, l.argmax, [n, l.cout, l.size, l.size, 2, 2, 2, 2]);
    }
    const last = convs[convs.length - 1].pooled;
    native.cudaLinearForward(last, fc[0].w, fc[0].b, fc[0].y, [n, 4096, 256]);
    native.cudaAbsTanhForward(fc[0].y, fc[0].act, n * 256);
    native.cudaLinearForward(fc[0].act, fc[1].w, fc[1].b, fc[1].y, [n, 256, 32]);
    native.cudaSigmoidForward(fc[1].y, fc[1].act, n * 32);
    // loss (the pair batch goes up from the host, as in training) and backward
    native.cudaPairL1Loss(fc[1].act, fc[1].act, fc[1].dact, batchPairs.pairs, batchPairs.labels, null, loss, scalars, [n, 32, P], 0.3, 2.5, 1 / P);
    native.cudaSigmoidBackward(fc[1].dact, fc[1].act, fc[1].dy, n * 32);
    native.cudaLinearBackwardWeight(fc[0].act, fc[1].dy, fc[1].dw, fc[1].db, [n, 256, 32]);
    native.cudaLinearBackwardInput(fc[1].dy, fc[1].w, fc[1].dx, [n, 256, 32]);
    native.cudaAbsTanhBackward(fc[1].dx, fc[0].y, fc[0].act, fc[0].dy, n * 256);
    native.cudaLinearBackwardWeight(last, fc[0].dy, fc[0].dw, fc[0].db, [n, 4096, 256]);
    native.cudaLinearBackwardInput(fc[0].dy, fc[0].w, fc[0].dx, [n, 4096, 256]);
    for (let i = convs.length - 1; i >= 0; i--) {
      const l = convs[i];
      const pad = (l.k - 1) / 2;
      const dpooled = i + 1 < convs.length ? convs[i + 1].dx : fc[0].dx;
      const pooledOut = i + 1 < convs.length ? convs[i + 1].x : l.pooled;
      native.cudaAbsTanhMaxPool2dBackward(dpooled, l.argmax, l.y, pooledOut, l.dy, [n, l.cout, l.size, l.size, 2, 2, 2, 2], false);
      const shape = [n, l.cin, l.size, l.size, l.cout, l.k, l.k, 1, 1, pad, pad];
      native.cudaConv2dBackwardWeight(l.x, l.dy, l.dw, l.db, shape);
      if (i > 0) native.cudaConv2dBackwardInput(l.dy, l.w, l.dx, shape);
    }
    for (const q of params) native.cudaAdamUpdate(q.p, q.g, q.m, q.v, q.n, 1e-4, 0.9, 0.999, 1e-8, 1e-4, 0.5, 0.7);
  };
  return { ms: time(step) };
}

const dcls = dclsStep();
const imagesPerSecond = BATCH / (dcls.ms * 1e-3);
console.log(`DCL-S step (kernels chained, batch ${BATCH}): ${dcls.ms.toFixed(2)} ms, ${imagesPerSecond.toFixed(0)} images/s`);
for (const b of live) native.cudaFree(b);

// ---- DCL-S training through train({ device: 'cuda' }) at batch 256, and the CPU's figure ------
//
// The whole training loop as a user runs it (trainSync, no worker: the same loop): host sampling,
// the batch upload, the device step, the pair lists in and the loss out. Throughput is what the
// loop reports per window of `every` steps; the first window (buffer allocation, the first
// launches) is dropped and the median of the rest is the figure. The CPU runs the same options
// for a few steps on this machine's cores; this repository's reference CPU figure (2-core Zen 3,
// `npm run bench -- --train-only`, the training step at batch 256) is the acceptance baseline.
const CPU_REFERENCE = { imagesPerSecond: 542, machine: '2-core Zen 3' };
const TARGET_RATIO = 20;
const faces = syntheticFaces({ identities: 128, imagesPerIdentity: 4, size: 64, seed: 1 });
function trainThroughput(device: 'cuda' | 'cpu', steps: number, every: number): { imagesPerSecond: number; windows: number[] } {
  const windows: number[] = [];
  const o: TrainOptions = {
    data: faces,
    layout: '32x1',
    method: 'rounding',
    steps,
    identitiesPerBatch: 64,
    imagesPerIdentity: 4,
    progressEvery: every,
    device,
    onProgress: (p) => windows.push(p.imagesPerSecond),
  };
  trainSync(o);
  const later = windows.slice(1).sort((a, b) => a - b);
  return { imagesPerSecond: later[Math.floor(later.length / 2)], windows };
}
const gpuTrain = trainThroughput('cuda', quick ? 25 : 60, 5);
console.log(`train({ device: 'cuda' }), DCL-S 32x1 rounding, batch ${BATCH}: ${gpuTrain.imagesPerSecond.toFixed(0)} images/s (windows ${gpuTrain.windows.map((v) => v.toFixed(0)).join(', ')})`);
const cpuTrain = trainThroughput('cpu', 4, 1);
const cpuThreads = capabilities().threads;
console.log(`train({ device: 'cpu' }) on this machine (${cpuThreads} threads, ${os.cpus()[0]?.model ?? 'unknown CPU'}): ${cpuTrain.imagesPerSecond.toFixed(0)} images/s`);
const ratioHere = gpuTrain.imagesPerSecond / cpuTrain.imagesPerSecond;
const ratioReference = gpuTrain.imagesPerSecond / CPU_REFERENCE.imagesPerSecond;
console.log(
  `ACCEPTANCE DCL-S training at batch ${BATCH}: ${gpuTrain.imagesPerSecond.toFixed(0)} images/s = ${ratioReference.toFixed(1)} x the ${CPU_REFERENCE.machine} reference (${CPU_REFERENCE.imagesPerSecond} images/s; target >= ${TARGET_RATIO}: ${ratioReference >= TARGET_RATIO ? 'PASS' : 'FAIL'}), ${ratioHere.toFixed(1)} x this machine's CPU`,
);
// encode on the device from the same run: the model of a short device training, 512 images.
const encodeModel = trainSync({ data: faces, layout: '32x1', steps: 2, identitiesPerBatch: 64, imagesPerIdentity: 4, device: 'cuda' });
const encodeRate = (device: 'cuda' | 'cpu') => {
  encodeSync(encodeModel, faces, { batchSize: BATCH, device });
  const start = performance.now();
  let images = 0;
  do {
    encodeSync(encodeModel, faces, { batchSize: BATCH, device });
    images += faces.labels.length;
  } while (performance.now() - start < (device === 'cuda' ? 1000 * SECONDS * 4 : 500));
  return (images * 1000) / (performance.now() - start);
};
const gpuEncode = encodeRate('cuda');
const cpuEncode = encodeRate('cpu');
console.log(`encode({ device: 'cuda' }) batch ${BATCH}: ${gpuEncode.toFixed(0)} images/s; CPU ${cpuEncode.toFixed(0)} images/s`);

// ---- the report ---------------------------------------------------------------------------

const lines: string[] = [];
lines.push(`## GPU check: ${device.name} (sm ${device.computeCapability}, ${device.smCount} SMs)`);
lines.push('');
lines.push(`Limits measured in this run: device-to-device copy **${copyGbs.toFixed(0)} GB/s** (bytes read + written), FP32 FMA loop **${fmaGflops.toFixed(0)} GFLOP/s**.`);
lines.push('');
lines.push('| kernel | shape | ms | throughput | of the limit |');
lines.push('| --- | --- | ---: | ---: | ---: |');
for (const r of rows) {
  const through = r.gflops !== undefined ? `${r.gflops.toFixed(0)} GFLOP/s` : `${r.gbs!.toFixed(0)} GB/s`;
  const share = r.gflops !== undefined ? r.gflops / fmaGflops : r.gbs! / copyGbs;
  lines.push(`| ${r.name} | ${r.shape} | ${r.ms.toFixed(3)} | ${through} | ${(100 * share).toFixed(1)}% |`);
}
lines.push('');
lines.push('| training | batch | ms / step | images/s |');
lines.push('| --- | ---: | ---: | ---: |');
lines.push(`| DCL-S forward + backward + pair L1 loss + Adam, kernels chained on device buffers (no autograd) | ${BATCH} | ${dcls.ms.toFixed(2)} | ${imagesPerSecond.toFixed(0)} |`);
lines.push(`| DCL-S \`train({ device: 'cuda' })\`, 32x1 rounding, the whole loop (sampling, upload, step, loss out) | ${BATCH} | ${((BATCH / gpuTrain.imagesPerSecond) * 1000).toFixed(2)} | ${gpuTrain.imagesPerSecond.toFixed(0)} |`);
lines.push(`| the same on this machine's CPU (${cpuThreads} threads) | ${BATCH} | ${((BATCH / cpuTrain.imagesPerSecond) * 1000).toFixed(1)} | ${cpuTrain.imagesPerSecond.toFixed(0)} |`);
lines.push(`| reference CPU: ${CPU_REFERENCE.machine}, \`npm run bench -- --train-only\` | ${BATCH} | ${((BATCH / CPU_REFERENCE.imagesPerSecond) * 1000).toFixed(1)} | ${CPU_REFERENCE.imagesPerSecond} |`);
lines.push('');
lines.push(
  `**DCL-S training at batch ${BATCH}: ${ratioReference.toFixed(1)} x the reference CPU** (target >= ${TARGET_RATIO}: ${ratioReference >= TARGET_RATIO ? 'met' : 'NOT met'}); ${ratioHere.toFixed(1)} x this machine's CPU. ` +
    `\`encode(model, x, { device: 'cuda' })\` at batch ${BATCH}: ${gpuEncode.toFixed(0)} images/s (CPU here: ${cpuEncode.toFixed(0)}).`,
);
lines.push('');
lines.push('Kernel figures are wall time per call with the operands on the device (launch overhead included); pooling, element-wise, loss, code and Adam rows count the bytes each call must move at least.');
const text = lines.join('\n') + '\n';
fs.mkdirSync(path.dirname(outFile), { recursive: true });
fs.writeFileSync(outFile, text);
console.log('\n' + text);
console.log(`written to ${outFile}`);
