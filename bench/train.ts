// The training-step and encode section of the dcl-native benchmark: the whole DCL-S network (32x1
// codes, 'rounding' method) trained and run by dcl-native, by PyTorch (bench/torch_train.py, a
// long-lived child in its fastest configuration) and, for inference, by onnxruntime-node on the same
// network exported to ONNX (bench/onnx_export.py), all on the same weights, in rounds that alternate
// who goes first. bench/run.ts calls trainSection(); it also runs alone:
//
//   npx tsc -p tsconfig.json && node dist/bench/train.js [--quick] [--rounds N] [--no-torch] [--no-onnx] [--json FILE]
//
// "Ours" is OUR_IMPLEMENTATION below: the library's DclS on the autograd layer, its native pair
// loss and AdamW, the code a user writes.
// See bench/README.md.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchFile, JEMALLOC, PYTHON, PythonChild, torchEnv, torchUnavailable } from './python-child.js';
import {
  capabilities,
  measureFmaPeak,
  setIsa,
  Tensor,
  type Isa,
  AdamW,
  DclS,
  Var,
  backward,
  inference,
  parseLayout,
  quantize,
} from '../lib/index.js';
import { batchLoss } from '../lib/train.js';

// ---------------------------------------------------------------------------------------------
// The interface "ours" implements. The section builds the weights and the data and hands the same
// ones to every side (dcl-native, PyTorch, ONNX Runtime), so that the agreement check compares like
// with like and the timings run the same network.

/** The code layout: n dimensions of Q bits (32x1 here). */
export interface Layout {
  n: number;
  q: number;
}

/** What the section passes to our implementation. Everything is a fresh copy: mutate freely. */
export interface TrainContext {
  batch: number;
  layout: Layout;
  /** Images [batch, 1, 64, 64], NCHW, each with zero mean and unit standard deviation. */
  x: Float32Array;
  /** Person id per image (P people x 4 images: id = i >> 2); equal ids make a same-person pair. */
  labels: Int32Array;
  /**
   * Initial weights under PyTorch's state_dict names and shapes (WEIGHT_SHAPES: conv1.weight
   * [32, 1, 5, 5] OIHW, ..., fc1.weight [256, 4096] [out, in] with the input flattened from
   * [256, 4, 4] in NCHW order, fc2.bias [n]), plus the loss's alpha and beta ([1] each).
   */
  weights: Record<string, Float32Array>;
  /** The kernels' thread count (DCL_THREADS or all cores). */
  threads: number;
}

export interface OurStep {
  /**
   * One training step on ctx.x / ctx.labels: forward, the pair loss (all pairs of the batch,
   * same and different pairs weighted equally), backward, optimizer update. May return a Promise.
   */
  step(): void | Promise<void>;
  /** Optional, for the agreement check: the loss of the last step (on the weights before its update). */
  lastLoss?(): number;
  /** Optional, for the agreement check: the last step's gradients (before its update), WEIGHT_SHAPES names plus alpha and beta. */
  gradients?(): Record<string, Float32Array>;
  dispose?(): void;
}

export interface OurEncoder {
  /** Encodes ctx.x (batch images) into codes: the network's forward pass plus quantisation and packing. May return a Promise. */
  run(): void | Promise<void>;
  /** Optional, for the agreement check: the sigmoid outputs [batch, n] of the last run(). */
  outputs?(): Float32Array;
  dispose?(): void;
}

export interface OurImplementation {
  /** Printed next to every "ours" figure. */
  name: string;
  makeOurStep(batch: number, ctx: TrainContext): OurStep;
  makeOurEncoder(batch: number, ctx: TrainContext): OurEncoder;
}

// ---------------------------------------------------------------------------------------------
// DCL-S (DESIGN.md, "Reference network sizes"), input 1x64x64

export const LAYOUT: Layout = { n: 32, q: 1 };
const H = 64;
const CONVS = [
  { name: 'conv1', cin: 1, cout: 32, k: 5, pad: 2, hw: 64 },
  { name: 'conv2', cin: 32, cout: 64, k: 3, pad: 1, hw: 32 },
  { name: 'conv3', cin: 64, cout: 128, k: 3, pad: 1, hw: 16 },
  { name: 'conv4', cin: 128, cout: 256, k: 3, pad: 1, hw: 8 },
] as const;
const FC1_IN = 256 * 4 * 4;
const FC1_OUT = 256;
const IMAGES_PER_PERSON = 4;

export function weightShapes(n = LAYOUT.n): Record<string, number[]> {
  const s: Record<string, number[]> = {};
  for (const c of CONVS) {
    s[`${c.name}.weight`] = [c.cout, c.cin, c.k, c.k];
    s[`${c.name}.bias`] = [c.cout];
  }
  s['fc1.weight'] = [FC1_OUT, FC1_IN];
  s['fc1.bias'] = [FC1_OUT];
  s['fc2.weight'] = [n, FC1_OUT];
  s['fc2.bias'] = [n];
  return s;
}
export const WEIGHT_SHAPES = weightShapes();

/** Forward FLOP per image (2 x multiply-adds): about 0.12 GFLOP. */
const FWD_FLOP =
  CONVS.reduce((a, c) => a + 2 * c.cout * c.hw * c.hw * c.cin * c.k * c.k, 0) + 2 * FC1_IN * FC1_OUT + 2 * FC1_OUT * LAYOUT.n;
/** Training FLOP per image: forward + backward weight + backward input, less conv1's backward input (never needed). */
const STEP_FLOP = 3 * FWD_FLOP - 2 * 32 * 64 * 64 * 25;

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** xorshift32 stream with Box-Muller normals: the same weights and images in every run. */
class Rng {
  private s: number;
  private spare: number | null = null;
  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }
  uniform(): number {
    let s = this.s;
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    this.s = s >>> 0;
    return (this.s + 0.5) / 4294967296; // (0, 1)
  }
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    const r = Math.sqrt(-2 * Math.log(this.uniform()));
    const t = 2 * Math.PI * this.uniform();
    this.spare = r * Math.sin(t);
    return r * Math.cos(t);
  }
}

/** N(0, 1.5^2 / fan_in) weights, zero biases (DESIGN.md, "Practical notes"); alpha 10 / (n (2^Q - 1)), beta 2.5. */
export function initialWeights(seed = 1, layout = LAYOUT): Record<string, Float32Array> {
  const rng = new Rng(seed);
  const w: Record<string, Float32Array> = {};
  for (const [name, shape] of Object.entries(weightShapes(layout.n))) {
    const a = new Float32Array(size(shape));
    if (name.endsWith('.weight')) {
      const std = 1.5 / Math.sqrt(size(shape.slice(1)));
      for (let i = 0; i < a.length; i++) a[i] = rng.normal() * std;
    }
    w[name] = a;
  }
  w.alpha = Float32Array.of(10 / (layout.n * (2 ** layout.q - 1)));
  w.beta = Float32Array.of(2.5);
  return w;
}

/** batch images of normal noise, each normalised to zero mean and unit std, and labels i >> 2. */
export function batchData(batch: number, seed = 1000 + batch): { x: Float32Array; labels: Int32Array } {
  const rng = new Rng(seed);
  const x = new Float32Array(batch * H * H);
  for (let b = 0; b < batch; b++) {
    const img = x.subarray(b * H * H, (b + 1) * H * H);
    let sum = 0;
    let sq = 0;
    const v = new Float64Array(img.length);
    for (let i = 0; i < v.length; i++) {
      v[i] = rng.normal();
      sum += v[i];
    }
    const mean = sum / v.length;
    for (let i = 0; i < v.length; i++) sq += (v[i] - mean) ** 2;
    const std = Math.sqrt(sq / (v.length - 1)) || 1;
    for (let i = 0; i < v.length; i++) img[i] = (v[i] - mean) / std;
  }
  const labels = new Int32Array(batch);
  for (let i = 0; i < batch; i++) labels[i] = Math.floor(i / IMAGES_PER_PERSON);
  return { x, labels };
}

function copyWeights(w: Record<string, Float32Array>): Record<string, Float32Array> {
  return Object.fromEntries(Object.entries(w).map(([k, v]) => [k, v.slice()]));
}

// ---------------------------------------------------------------------------------------------
// Ours: the library's own DCL-S, pair loss and optimiser, as a user would write the training step.

/** WEIGHT_SHAPES names -> the parameter names of lib/nn.ts's DclS (features.{3i}, classifier.{0,2}) as of this writing. */
export const LIB_DCLS_NAMES: Record<string, string> = {
  'conv1.weight': 'features.0.weight',
  'conv1.bias': 'features.0.bias',
  'conv2.weight': 'features.3.weight',
  'conv2.bias': 'features.3.bias',
  'conv3.weight': 'features.6.weight',
  'conv3.bias': 'features.6.bias',
  'conv4.weight': 'features.9.weight',
  'conv4.bias': 'features.9.bias',
  'fc1.weight': 'classifier.0.weight',
  'fc1.bias': 'classifier.0.bias',
  'fc2.weight': 'classifier.2.weight',
  'fc2.bias': 'classifier.2.bias',
};

/** ctx.weights as tensors under lib/nn.ts's DclS names, for model.loadStateDict() (alpha and beta left out). */
export function toLibStateDict(weights: Record<string, Float32Array>, n = LAYOUT.n): Record<string, Tensor> {
  const shapes = weightShapes(n);
  return Object.fromEntries(Object.entries(LIB_DCLS_NAMES).map(([ours, lib]) => [lib, new Tensor(weights[ours].slice(), shapes[ours])]));
}

/**
 * Every pair i < j of a batch with its label (-1 same person, +1 different) and weight (0.5 / #same
 * or 0.5 / #different, so the two kinds count equally and the weights sum to 1): the pairs, labels
 * and weights arguments of lib/losses.ts's pairL1Loss / hammingDpLoss, the same pairs as
 * bench/torch_train.py.
 */
export function allPairs(ids: Int32Array): { pairs: Int32Array; labels: Float64Array; weights: Float64Array } {
  const b = ids.length;
  const count = (b * (b - 1)) / 2;
  const pairs = new Int32Array(2 * count);
  const labels = new Float64Array(count);
  let k = 0;
  let same = 0;
  for (let i = 0; i < b; i++)
    for (let j = i + 1; j < b; j++, k++) {
      pairs[2 * k] = i;
      pairs[2 * k + 1] = j;
      labels[k] = ids[i] === ids[j] ? -1 : 1;
      if (labels[k] < 0) same++;
    }
  const weights = labels.map((l) => (l < 0 ? 0.5 / same : 0.5 / (count - same)));
  return { pairs, labels, weights };
}

export const libImplementation: OurImplementation = {
  name: 'dcl-native: DclS on the autograd layer, native pair loss (rounding, straight-through), AdamW',
  makeOurStep(batch, ctx) {
    const layout = parseLayout(`${ctx.layout.n}x${ctx.layout.q}`);
    const model = new DclS({ codeDims: layout.n });
    model.loadStateDict(toLibStateDict(ctx.weights, layout.n));
    const optimizer = new AdamW(model.parameters(), { lr: 1e-4, weightDecay: 0 });
    const scalars = [ctx.weights.alpha[0], ctx.weights.beta[0]];
    const moments = [0, 0, 0, 0];
    let t = 0;
    let loss = Number.NaN;
    let gradAlpha = 0;
    let gradBeta = 0;
    const { pairs, labels, weights } = allPairs(ctx.labels);
    const labels32 = Float32Array.from(labels);
    const weights32 = Float32Array.from(weights);
    const gradP = new Float32Array(batch * layout.n);
    const x = new Var(new Tensor(ctx.x, [batch, 1, 64, 64]));
    const byName = new Map(model.namedParameters());
    return {
      step() {
        const out = model.forward(x);
        const r = batchLoss(out.data, batch, layout, { method: 'rounding', omega: 0 }, pairs, labels32, weights32, scalars[0], scalars[1], gradP);
        optimizer.zeroGrad();
        backward(out, new Tensor(gradP, [batch, layout.n]));
        optimizer.step();
        loss = r.loss;
        gradAlpha = r.gradAlpha;
        gradBeta = r.gradBeta;
        // alpha and beta: Adam, lr 1e-3, as bench/torch_train.py.
        t++;
        [gradAlpha, gradBeta].forEach((g, i) => {
          moments[2 * i] = 0.9 * moments[2 * i] + 0.1 * g;
          moments[2 * i + 1] = 0.999 * moments[2 * i + 1] + 0.001 * g * g;
          const m = moments[2 * i] / (1 - 0.9 ** t), v = moments[2 * i + 1] / (1 - 0.999 ** t);
          scalars[i] -= (1e-3 * m) / (Math.sqrt(v) + 1e-8);
        });
      },
      lastLoss: () => loss,
      gradients: () => ({
        ...Object.fromEntries(
          Object.entries(LIB_DCLS_NAMES).map(([ours, lib]) => [ours, byName.get(lib)!.grad!.data.slice()]),
        ),
        alpha: Float32Array.of(gradAlpha),
        beta: Float32Array.of(gradBeta),
      }),
    };
  },
  makeOurEncoder(batch, ctx) {
    const layout = parseLayout(`${ctx.layout.n}x${ctx.layout.q}`);
    const model = new DclS({ codeDims: layout.n });
    model.loadStateDict(toLibStateDict(ctx.weights, layout.n));
    const x = new Var(new Tensor(ctx.x, [batch, 1, 64, 64]));
    const codes = new Int32Array(batch);
    let last: Float32Array = new Float32Array(0);
    return {
      run() {
        inference(() => {
          const p = model.forward(x).value;
          quantize(p, layout, { out: codes });
          last = p.data;
        });
      },
      outputs: () => last,
    };
  },
};

export const OUR_IMPLEMENTATION: OurImplementation = libImplementation;

// ---------------------------------------------------------------------------------------------
// Statistics and formatting (the same conventions as bench/run.ts)

export interface Stats {
  median: number;
  min: number;
  max: number;
  n: number;
}

function stats(values: number[]): Stats {
  const s = [...values].sort((a, b) => a - b);
  const n = s.length;
  if (!n) return { median: NaN, min: NaN, max: NaN, n: 0 };
  const median = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  return { median, min: s[0], max: s[n - 1], n };
}
const median = (v: number[]) => stats(v).median;

const f1 = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const f2 = (v: number) => v.toFixed(2);
const range = (s: Stats, f: (v: number) => string = f1) => (s.n ? `${f(s.median)} [${f(s.min)}-${f(s.max)}]` : '-');

function table(header: string[], rows: string[][], rightFrom = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i < rightFrom ? (c ?? '').padEnd(widths[i]) : (c ?? '').padStart(widths[i]))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/**
 * A pause before each side's timed block: every side keeps threads spinning for a while after its
 * work (our pool up to 0.3 ms, onnxruntime's intra-op pool, PyTorch's OpenMP in its own process),
 * and on 2 cores those would compete with whichever side runs next.
 */
const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 50));

/** One warm-up call, then `reps` timed calls: ms per call. */
async function timeCalls(fn: () => void | Promise<void>, reps: number): Promise<number[]> {
  await fn();
  const out: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// PyTorch child

/** PyTorch's fastest configuration, plus what torch_train.py reads. */
const trainTorchEnv = (threads: number) =>
  torchEnv({ DCL_BENCH_THREADS: String(threads), DCL_BENCH_N: String(LAYOUT.n), DCL_BENCH_Q: String(LAYOUT.q) });

// ---------------------------------------------------------------------------------------------
// onnxruntime-node (optional: never a dependency of the package)

interface OrtTensor {
  data: Float32Array;
}
interface OrtSession {
  run(feeds: Record<string, unknown>): Promise<Record<string, OrtTensor>>;
  release?(): Promise<void>;
}
interface OrtModule {
  Tensor: new (type: 'float32', data: Float32Array, dims: number[]) => unknown;
  InferenceSession: { create(path: string, options: Record<string, unknown>): Promise<OrtSession> };
  env: { versions?: { common?: string; node?: string } };
}

/** onnxruntime-node, or why not. The name is in a variable so that tsc does not look for its types. */
async function loadOrt(): Promise<OrtModule | string> {
  const name = 'onnxruntime-node';
  try {
    const m = (await import(name)) as OrtModule & { default?: OrtModule };
    return m.InferenceSession ? m : (m.default ?? m);
  } catch (error) {
    return `import('onnxruntime-node') failed (${(error as Error).message.split('\n')[0]}); for a local comparison: ONNXRUNTIME_NODE_INSTALL=skip npm install --no-save onnxruntime-node`;
  }
}

// ---------------------------------------------------------------------------------------------
// The section

export interface TrainSectionOptions {
  quick: boolean;
  /** Compare with PyTorch (and export the ONNX model with it). */
  torch: boolean;
  /** Compare with onnxruntime-node (needs PyTorch for the export). */
  onnx: boolean;
  rounds: number | null;
  /** The ISA our kernels run (default: the active one). */
  isa?: Isa;
  /** Stop starting new rounds after this many seconds (at least 2 rounds run). */
  seconds?: number;
  implementation?: OurImplementation;
}

const STEP_BATCHES = [64, 256];
const ENCODE_BATCHES = [256, 64];
const CHECK_BATCH = 16;

type Side = 'ours' | 'torch' | 'ort';

interface Round {
  order: Side[];
  peak: number;
  /** ms per call, median of the round's reps, per key (step64, step256, encode256, encode64, encode1) and side */
  ms: Record<string, Partial<Record<Side, number>>>;
  /** PyTorch's step split into forward + loss, backward, Adam (medians) */
  torchSplit: Record<string, { fwd: number; bwd: number; opt: number }>;
}

function writeFloats(file: string, a: Float32Array | Int32Array): void {
  fs.writeFileSync(file, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
}
function readFloats(file: string): Float32Array {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}
/** Rounded code values that differ between two [batch, n] sigmoid outputs. */
function codeDiffs(a: Float32Array, b: Float32Array, q: number): number {
  const levels = 2 ** q;
  const c = (v: number) => Math.min(Math.floor(levels * v), levels - 1);
  let k = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (c(a[i]) !== c(b[i])) k++;
  return k;
}

export async function trainSection(opts: TrainSectionOptions): Promise<Record<string, unknown>> {
  const began = Date.now();
  const impl = opts.implementation ?? OUR_IMPLEMENTATION;
  const caps = capabilities();
  const isa = opts.isa ?? caps.isa;
  const threads = caps.threads;
  const { n, q } = LAYOUT;
  console.log(
    `\n=== Training step and encode: the whole DCL-S (${n}x${q}, 'rounding' loss over all pairs), ours vs PyTorch vs onnxruntime-node ===`,
  );
  console.log(`ours: ${impl.name}; ${isa}, ${threads} thread${threads > 1 ? 's' : ''}`);

  const torchReason = opts.torch ? torchUnavailable(['torch_train.py', 'onnx_export.py']) : 'not asked for (--no-torch)';
  if (torchReason) console.log(`PyTorch comparison skipped: ${torchReason}`);
  let ort: OrtModule | null = null;
  let ortReason: string | null = !opts.onnx ? 'not asked for (--no-onnx)' : torchReason ? 'the ONNX export needs PyTorch' : null;
  if (!ortReason) {
    const m = await loadOrt();
    if (typeof m === 'string') ortReason = m;
    else ort = m;
  }
  if (ortReason) console.log(`onnxruntime-node comparison skipped: ${ortReason}`);

  const weights = initialWeights();
  const ctxFor = (batch: number): TrainContext => ({
    batch,
    layout: { ...LAYOUT },
    ...batchData(batch),
    weights: copyWeights(weights),
    threads,
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcl-train-bench-'));
  let torch: PythonChild | null = null;
  let ortSession: OrtSession | null = null;
  setIsa(isa);
  try {
    for (const [name, a] of Object.entries(weights)) writeFloats(path.join(dir, `${name}.bin`), a);
    let torchInfo: Record<string, unknown> | null = null;
    let exportInfo: Record<string, unknown> | null = null;
    if (!torchReason) {
      const env = trainTorchEnv(threads);
      torch = new PythonChild(PYTHON, benchFile('torch_train.py'), env);
      torchInfo = await torch.read();
      await torch.command(`load ${dir}`);
      console.log(
        `PyTorch ${torchInfo.torch} (${PYTHON}), torch.set_num_threads(${torchInfo.threads}), channels-last, oneDNN ${torchInfo.mkldnn ? 'on' : 'off'}, ` +
          `Adam lr ${torchInfo.lr} (alpha, beta ${torchInfo.lr_alpha_beta}); OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=${env.OPENBLAS_CORETYPE} MALLOC_CONF=${env.MALLOC_CONF} ` +
          (env.LD_PRELOAD ? `LD_PRELOAD=${env.LD_PRELOAD} (jemalloc ${torchInfo.jemalloc ? 'loaded' : 'NOT loaded'})` : `(no jemalloc: ${JEMALLOC} missing)`) +
          (torchInfo.blas ? `; BLAS ${torchInfo.blas}` : ''),
      );
    }
    if (ort) {
      const model = path.join(dir, 'dcl-s.onnx');
      const r = spawnSync(PYTHON, [benchFile('onnx_export.py'), model, '--weights', dir, '--n', String(n)], {
        encoding: 'utf8',
        timeout: 120_000,
        env: trainTorchEnv(1),
      });
      if (r.status !== 0) {
        ortReason = `bench/onnx_export.py failed: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-2).join(' | ')}`;
        console.log(`onnxruntime-node comparison skipped: ${ortReason}`);
        ort = null;
      } else {
        exportInfo = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
        ortSession = await ort.InferenceSession.create(model, {
          intraOpNumThreads: threads,
          interOpNumThreads: 1,
          executionMode: 'sequential',
          graphOptimizationLevel: 'all',
        });
        console.log(
          `onnxruntime-node ${ort.env.versions?.node ?? ort.env.versions?.common ?? '?'} (CPU), intraOpNumThreads ${threads}, graphOptimizationLevel all; ` +
            `the same network and weights exported by bench/onnx_export.py (opset ${exportInfo.opset}, dynamic batch)`,
        );
      }
    }
    const ortRun = (batch: number) => {
      const feeds = { input: new ort!.Tensor('float32', batchData(batch).x, [batch, 1, H, H]) };
      return async () => void (await ortSession!.run(feeds));
    };

    // ---- Agreement: the same weights and images through every side.
    const check = await agreement(impl, ctxFor(CHECK_BATCH), dir, torch, ort && ortSession ? { ort, session: ortSession } : null);

    // ---- Timing rounds.
    const rounds = opts.rounds ?? (opts.quick ? 3 : 7);
    const minRounds = Math.min(rounds, 2);
    const deadline = began + (opts.seconds ?? (opts.quick ? 90 : 240)) * 1e3;
    const stepReps: Record<number, number> = opts.quick ? { 64: 2, 256: 1 } : { 64: 3, 256: 2 };
    const encodeReps: Record<number, number> = opts.quick ? { 256: 2, 64: 3, 1: 20 } : { 256: 3, 64: 5, 1: 30 };
    const ourSteps = new Map(STEP_BATCHES.map((b) => [b, impl.makeOurStep(b, ctxFor(b))]));
    const ourEncoders = new Map([...ENCODE_BATCHES, 1].map((b) => [b, impl.makeOurEncoder(b, ctxFor(b))]));
    const ortRuns = new Map(ortSession ? [...ENCODE_BATCHES, 1].map((b) => [b, ortRun(b)]) : []);
    const results: Round[] = [];
    process.stdout.write(
      `\n${rounds} rounds, alternating who goes first (per round and measurement: 1 warm-up call, then the median of ` +
        `${stepReps[64]} steps at batch 64, ${stepReps[256]} at 256; ${encodeReps[256]} / ${encodeReps[64]} / ${encodeReps[1]} encodes at batch 256 / 64 / 1): `,
    );
    for (let r = 0; r < rounds; r++) {
      if (r >= minRounds && Date.now() > deadline) {
        process.stdout.write(`(time limit: stopped after ${r} rounds) `);
        break;
      }
      const sides: Side[] = ['ours', ...(torch ? (['torch'] as const) : []), ...(ortSession ? (['ort'] as const) : [])];
      const order = r % 2 === 0 ? sides : [...sides].reverse();
      const round: Round = { order, peak: 0, ms: {}, torchSplit: {} };
      for (const b of STEP_BATCHES) {
        const key = `step${b}`;
        round.ms[key] = {};
        for (const side of order) {
          await settle();
          if (side === 'ours') {
            const s = ourSteps.get(b)!;
            round.ms[key].ours = median(await timeCalls(() => s.step(), stepReps[b]));
          } else if (side === 'torch') {
            const t = (await torch!.command(`step ${b} ${stepReps[b] + 1}`)) as Record<string, number[]>;
            round.ms[key].torch = median(t.ms.slice(1));
            round.torchSplit[key] = { fwd: median(t.fwd_ms.slice(1)), bwd: median(t.bwd_ms.slice(1)), opt: median(t.opt_ms.slice(1)) };
          }
        }
      }
      for (const b of [...ENCODE_BATCHES, 1]) {
        const key = `encode${b}`;
        round.ms[key] = {};
        for (const side of order) {
          await settle();
          if (side === 'ours') {
            const e = ourEncoders.get(b)!;
            round.ms[key].ours = median(await timeCalls(() => e.run(), encodeReps[b]));
          } else if (side === 'torch') {
            const t = (await torch!.command(`encode ${b} ${encodeReps[b] + 1}`)) as Record<string, number[]>;
            round.ms[key].torch = median(t.ms.slice(1));
          } else {
            round.ms[key].ort = median(await timeCalls(ortRuns.get(b)!, encodeReps[b]));
          }
        }
      }
      round.peak = measureFmaPeak(isa, threads, 0.2);
      results.push(round);
      process.stdout.write('.');
    }
    process.stdout.write('\n');
    for (const s of ourSteps.values()) s.dispose?.();
    for (const e of ourEncoders.values()) e.dispose?.();

    return { implementation: impl.name, isa, threads, torch: torchInfo, onnx: exportInfo, ort: ort?.env.versions ?? null, skipped: { torch: torchReason, ort: ortReason }, ...report(results, check), seconds: (Date.now() - began) / 1e3 };
  } catch (error) {
    console.log(`training / encode comparison failed: ${(error as Error).stack ?? error}`);
    return { failed: (error as Error).message };
  } finally {
    await torch?.quit().catch(() => undefined);
    await ortSession?.release?.().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

interface Err {
  /** max |a - ref| */
  max: number;
  /** ||a - ref||_2 / ||ref||_2 */
  relL2: number;
}

interface CheckResult {
  batch: number;
  /** Sigmoid outputs of each side against PyTorch's float64 reference: max |a - ref|, and rounded code values that differ (of batch x n). */
  outputs: Partial<Record<'ours' | 'torch' | 'ort', Err & { codeDiffs: number }>>;
  loss?: { ours: number | null; torch: number; reference: number };
  /** Per parameter (and alpha, beta): error of ours and of PyTorch float32 against the float64 reference. */
  gradients?: Record<string, { ours: Err; torch: Err }>;
  worstGradient?: number;
  ok: boolean;
  /** What failed, when !ok. */
  failures: string[];
  notes: string[];
}

function err(a: Float32Array, ref: Float32Array): Err {
  if (a.length !== ref.length) return { max: Infinity, relL2: Infinity };
  let max = 0;
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(a[i] - ref[i]);
    if (!(d <= max)) max = d; // NaN sticks
    num += d * d;
    den += ref[i] * ref[i];
  }
  return { max, relL2: Number.isNaN(max) ? Infinity : Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30) };
}

const OUTPUT_LIMIT = 1e-4;
const LOSS_LIMIT = 1e-4;
/**
 * Relative L2 error of a gradient against the float64 reference. Not 1e-5: the early layers'
 * gradients hinge on max-pool winners, and |tanh| saturates (float32 tanh(x) moves by one ulp or
 * less for x > 5), so near-ties flip between any two float32 implementations and PyTorch's own
 * float32 gradients sit up to ~5e-3 away from its float64 ones. A wrong formula is off by O(1).
 */
const GRAD_LIMIT = 2e-2;

/**
 * Sigmoid outputs, loss and gradients of ours, PyTorch's timed configuration (float32,
 * channels-last) and ONNX Runtime against PyTorch in float64, on the same weights and batch.
 */
async function agreement(
  impl: OurImplementation,
  ctx: TrainContext,
  dir: string,
  torch: PythonChild | null,
  ort: { ort: OrtModule; session: OrtSession } | null,
): Promise<CheckResult> {
  const { n, q } = ctx.layout;
  const total = ctx.batch * n;
  const res: CheckResult = { batch: ctx.batch, outputs: {}, ok: true, failures: [], notes: [] };
  const failed = (what: string) => {
    res.ok = false;
    res.failures.push(what);
  };
  if (!torch) {
    console.log('\nAgreement: not checked (the float64 reference comes from PyTorch)');
    res.notes.push('no PyTorch');
    return res;
  }
  writeFloats(path.join(dir, 'x.bin'), ctx.x);
  writeFloats(path.join(dir, 'labels.bin'), ctx.labels);
  const r = await torch.command(`check ${dir} ${ctx.batch}`);
  const ref = readFloats(path.join(dir, 'torch64.p.bin'));
  const outputs: Partial<Record<'ours' | 'torch' | 'ort', Float32Array>> = { torch: readFloats(path.join(dir, 'torch.p.bin')) };

  const enc = impl.makeOurEncoder(ctx.batch, { ...ctx, weights: copyWeights(ctx.weights) });
  await enc.run();
  const ours = enc.outputs?.();
  if (ours) outputs.ours = ours.slice();
  else res.notes.push('ours exposes no outputs(): encode outputs not checked');
  enc.dispose?.();
  if (ort) {
    const out = await ort.session.run({ input: new ort.ort.Tensor('float32', ctx.x, [ctx.batch, 1, H, H]) });
    outputs.ort = Float32Array.from(Object.values(out)[0].data);
  }
  for (const [side, a] of Object.entries(outputs) as ['ours' | 'torch' | 'ort', Float32Array][]) {
    res.outputs[side] = { ...err(a, ref), codeDiffs: codeDiffs(a, ref, q) };
    if (!(res.outputs[side]!.max <= OUTPUT_LIMIT)) failed(`${side} outputs off by ${res.outputs[side]!.max.toExponential(1)}`);
  }

  const step = impl.makeOurStep(ctx.batch, { ...ctx, weights: copyWeights(ctx.weights) });
  await step.step();
  const loss = step.lastLoss?.() ?? null;
  res.loss = { ours: loss, torch: r.loss as number, reference: r.loss64 as number };
  if (loss === null) res.notes.push('ours exposes no lastLoss(): loss not checked');
  else if (!(Math.abs(loss - res.loss.reference) <= LOSS_LIMIT * Math.max(1, Math.abs(res.loss.reference))))
    failed(`our loss ${loss} is not the reference ${res.loss.reference}`);
  const grads = step.gradients?.();
  if (grads) {
    res.gradients = {};
    let worst = 0;
    for (const name of [...Object.keys(WEIGHT_SHAPES), 'alpha', 'beta']) {
      if (!grads[name]) {
        failed(`ours gives no gradient for ${name}`);
        continue;
      }
      const g64 = readFloats(path.join(dir, `torch64.grad.${name}.bin`));
      const e = { ours: err(grads[name], g64), torch: err(readFloats(path.join(dir, `torch.grad.${name}.bin`)), g64) };
      res.gradients[name] = e;
      worst = Math.max(worst, e.ours.relL2);
      if (!(e.ours.relL2 <= GRAD_LIMIT)) failed(`the gradient of ${name} is off by ${e.ours.relL2.toExponential(1)} (relative L2)`);
    }
    res.worstGradient = worst;
  } else res.notes.push('ours exposes no gradients(): gradients not checked');
  step.dispose?.();

  const e1 = (v: number) => v.toExponential(1);
  console.log(
    `\nAgreement with PyTorch in float64 (batch ${ctx.batch} = ${ctx.batch / IMAGES_PER_PERSON} people x ${IMAGES_PER_PERSON}, the same weights and images everywhere):`,
  );
  const names = { ours: 'ours', torch: 'PyTorch fp32', ort: 'ORT' } as const;
  console.log(
    `  sigmoid outputs, max |a - ref| (rounded code values that differ, of ${total}): ` +
      (Object.entries(res.outputs) as ['ours' | 'torch' | 'ort', Err & { codeDiffs: number }][])
        .map(([side, v]) => `${names[side]} ${e1(v.max)} (${v.codeDiffs})`)
        .join(', '),
  );
  console.log(
    `  loss: reference ${res.loss.reference.toFixed(7)}, PyTorch fp32 ${res.loss.torch.toFixed(7)}` +
      (loss === null ? '' : `, ours ${loss.toFixed(7)}`),
  );
  if (res.gradients) {
    const rows = Object.entries(res.gradients).map(([k, v]) => [k, e1(v.ours.relL2), e1(v.torch.relL2), e1(v.ours.max), e1(v.torch.max)]);
    console.log(
      '  gradients against the float64 reference:\n' +
        table(['parameter', 'ours rel L2', 'torch fp32 rel L2', 'ours max |d|', 'torch fp32 max |d|'], rows)
          .split('\n')
          .map((l) => '    ' + l)
          .join('\n'),
    );
  }
  for (const note of res.notes) console.log(`  (${note})`);
  console.log(
    res.ok
      ? `agreement OK (outputs within ${e1(OUTPUT_LIMIT)}, loss within ${e1(LOSS_LIMIT)} relative, gradients within ${e1(GRAD_LIMIT)} relative L2 of the float64 reference)`
      : `MISMATCH (limits: outputs ${e1(OUTPUT_LIMIT)}, loss ${e1(LOSS_LIMIT)} relative, gradients ${e1(GRAD_LIMIT)} relative L2): ${res.failures.join('; ')}`,
  );
  return res;
}

function report(results: Round[], check: CheckResult): Record<string, unknown> {
  const perSide = (key: string, side: Side) => results.map((r) => r.ms[key]?.[side]).filter((v): v is number => v !== undefined);
  const imgs = (key: string, side: Side, batch: number) => stats(perSide(key, side).map((ms) => (batch * 1e3) / ms));
  const msStats = (key: string, side: Side) => stats(perSide(key, side));
  /** per round a(ms) / b(ms) */
  const ratio = (key: string, a: Side, b: Side) =>
    stats(results.filter((r) => r.ms[key]?.[a] !== undefined && r.ms[key]?.[b] !== undefined).map((r) => r.ms[key][a]! / r.ms[key][b]!));
  const peak = stats(results.map((r) => r.peak));
  const has = (side: Side) => results.some((r) => r.order.includes(side));
  const hasTorch = has('torch');
  const hasOrt = has('ort');

  const rows: string[][] = [];
  const figures: Record<string, unknown> = {};
  for (const b of STEP_BATCHES) {
    const key = `step${b}`;
    const gflop = (STEP_FLOP * b) / 1e9;
    const o = imgs(key, 'ours', b);
    const t = imgs(key, 'torch', b);
    const gf = (s: Stats) => (s.n ? f1((STEP_FLOP * s.median) / 1e9) : '');
    const r = ratio(key, 'torch', 'ours');
    figures[key] = { batch: b, gflopPerStep: gflop, oursImgPerS: o, torchImgPerS: t, oursMs: msStats(key, 'ours'), torchMs: msStats(key, 'torch'), speedupVsTorch: r };
    rows.push([`training step, batch ${b}`, 'img/s', range(o), hasTorch ? range(t) : '-', '-', hasTorch ? range(r, f2) : '-', '-', `${gf(o)} / ${gf(t) || '-'}`]);
  }
  for (const b of ENCODE_BATCHES) {
    const key = `encode${b}`;
    const o = imgs(key, 'ours', b);
    const t = imgs(key, 'torch', b);
    const x = imgs(key, 'ort', b);
    const rt = ratio(key, 'torch', 'ours');
    const rx = ratio(key, 'ort', 'ours');
    figures[key] = { batch: b, oursImgPerS: o, torchImgPerS: t, ortImgPerS: x, speedupVsTorch: rt, speedupVsOrt: rx };
    const gf = (s: Stats) => (s.n ? f1((FWD_FLOP * s.median) / 1e9) : '-');
    rows.push([`encode, batch ${b}`, 'img/s', range(o), hasTorch ? range(t) : '-', hasOrt ? range(x) : '-', hasTorch ? range(rt, f2) : '-', hasOrt ? range(rx, f2) : '-', `${gf(o)} / ${gf(t)} / ${gf(x)}`]);
  }
  {
    const key = 'encode1';
    const o = msStats(key, 'ours');
    const t = msStats(key, 'torch');
    const x = msStats(key, 'ort');
    const rt = ratio(key, 'ours', 'torch');
    const rx = ratio(key, 'ours', 'ort');
    figures.latency1 = { oursMs: o, torchMs: t, ortMs: x, oursOverTorch: rt, oursOverOrt: rx };
    rows.push(['encode, batch 1 (latency)', 'ms', range(o, f2), hasTorch ? range(t, f2) : '-', hasOrt ? range(x, f2) : '-', hasTorch ? `${range(rt, f2)} *` : '-', hasOrt ? `${range(rx, f2)} *` : '-', '']);
  }
  console.log(`\nmedian [min-max] over ${results.length} rounds; "x PyTorch" / "x ORT": their time / our time per round (> 1: dcl-native is faster)`);
  console.log(table(['measure', 'unit', 'ours', 'PyTorch', 'ORT', 'x PyTorch', 'x ORT', 'GFLOP/s ours / torch / ORT'], rows, 2));
  console.log(`  * batch 1: our time / their time instead (< 1: dcl-native is faster)`);
  const split = STEP_BATCHES.map((b) => {
    const s = results.map((r) => r.torchSplit[`step${b}`]).filter(Boolean);
    return s.length
      ? `batch ${b}: ${f1(median(s.map((v) => v.fwd)))} + ${f1(median(s.map((v) => v.bwd)))} + ${f1(median(s.map((v) => v.opt)))} ms`
      : '';
  }).filter(Boolean);
  if (split.length) console.log(`PyTorch step = forward and loss + backward + Adam: ${split.join('; ')}`);
  console.log(
    `Training FLOP per image ${(STEP_FLOP / 1e9).toFixed(3)} G (forward ${(FWD_FLOP / 1e9).toFixed(3)} G, x 3, less conv1's backward input; ` +
      `the GFLOP/s column counts these, though our 3x3 convolutions run Winograd F(2x2, 3x3) with 2.25x fewer multiplications); ` +
      `FMA peak, one 0.2 s run per round: ${range(peak)} GFLOP/s` +
      (peak.max > 1.3 * peak.min ? '  (the peak samples vary by more than 30%: the host was busy; trust the ratios, paired per round, over the absolute figures)' : ''),
  );

  const step64 = figures.step64 as { oursImgPerS: Stats; torchImgPerS: Stats; speedupVsTorch: Stats };
  const enc256 = figures.encode256 as { oursImgPerS: Stats; ortImgPerS: Stats; speedupVsOrt: Stats };
  const lat = figures.latency1 as { oursMs: Stats; ortMs: Stats; oursOverOrt: Stats };
  const verdict = (ok: boolean) => (ok ? 'PASS' : 'FAIL');
  const acceptance: Record<string, unknown> = {};
  console.log('');
  if (hasTorch) {
    const z = step64.speedupVsTorch.median;
    acceptance.trainStep64 = { ours: step64.oursImgPerS.median, torch: step64.torchImgPerS.median, ratio: z, target: 1.5, pass: z >= 1.5 };
    console.log(
      `ACCEPTANCE DCL-S training step, batch 64: ours ${f1(step64.oursImgPerS.median)} img/s vs PyTorch ${f1(step64.torchImgPerS.median)} img/s = ` +
        `${f2(z)} x (target >= 1.5: ${verdict(z >= 1.5)})`,
    );
  } else console.log('ACCEPTANCE DCL-S training step, batch 64: not measured (no PyTorch)');
  if (hasOrt) {
    const z = enc256.speedupVsOrt.median;
    const l = lat.oursOverOrt.median;
    acceptance.encode256 = { ours: enc256.oursImgPerS.median, ort: enc256.ortImgPerS.median, ratio: z, target: 1.0, pass: z >= 1.0 };
    acceptance.latency1 = { oursMs: lat.oursMs.median, ortMs: lat.ortMs.median, ratio: l, target: 1.0, pass: l <= 1.0 };
    console.log(
      `ACCEPTANCE encode batch 256: ours ${f1(enc256.oursImgPerS.median)} img/s vs ORT ${f1(enc256.ortImgPerS.median)} img/s = ${f2(z)} x (target >= 1.0: ${verdict(z >= 1.0)})`,
    );
    console.log(
      `ACCEPTANCE batch-1 latency: ours ${f2(lat.oursMs.median)} ms vs ORT ${f2(lat.ortMs.median)} ms = ${f2(l)} (target <= 1.0: ${verdict(l <= 1.0)})`,
    );
  } else console.log('ACCEPTANCE encode batch 256 and batch-1 latency: not measured (no onnxruntime-node)');
  if (!check.ok) console.log('(the agreement check above FAILED: these figures compare different computations)');
  return { check, rounds: results, figures, acceptance, peak, stepFlopPerImage: STEP_FLOP, forwardFlopPerImage: FWD_FLOP };
}

// ---------------------------------------------------------------------------------------------
// Standalone: node dist/bench/train.js [--quick] [--rounds N] [--no-torch] [--no-onnx] [--json FILE]

async function main(argv: string[]) {
  const USAGE = `usage: node dist/bench/train.js [--quick] [--rounds N] [--no-torch] [--no-onnx] [--json FILE]`;
  const opts: TrainSectionOptions = { quick: false, torch: true, onnx: true, rounds: null };
  let json: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') opts.quick = true;
    else if (a === '--no-torch') opts.torch = false;
    else if (a === '--no-onnx') opts.onnx = false;
    else if (a === '--rounds' || a === '--json') {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`${a} needs a value\n${USAGE}`);
      if (a === '--json') json = v;
      else {
        const k = Number(v);
        if (!Number.isInteger(k) || k < 1 || k > 100) throw new Error(`--rounds needs an integer from 1 to 100\n${USAGE}`);
        opts.rounds = k;
      }
    } else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      return;
    } else throw new Error(`unknown option '${a}'\n${USAGE}`);
  }
  const caps = capabilities();
  console.log(`dcl-native training / encode benchmark; ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} logical CPUs; isas ${caps.isas.join(', ')}; node ${process.version}`);
  const load = () => {
    try {
      return Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
    } catch {
      return null;
    }
  };
  const loadStart = load();
  if (loadStart !== null) console.log(`load average (1 min) at start: ${loadStart.toFixed(2)}`);
  const result = await trainSection(opts);
  const loadEnd = load();
  if (loadEnd !== null) console.log(`load average (1 min) at the end: ${loadEnd.toFixed(2)}`);
  if (json) {
    fs.writeFileSync(json, JSON.stringify({ date: new Date().toISOString(), node: process.version, capabilities: caps, options: opts, train: result, loadAverage: { start: loadStart, end: loadEnd } }, null, 2) + '\n');
    console.log(`figures written to ${json}`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url))
  main(process.argv.slice(2)).catch((error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
