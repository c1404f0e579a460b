// The dcl-native benchmark: every kernel on the DCL-S layer shapes (batch 64), next to the FP32 FMA
// peak and a copy bandwidth measured in the same run, and (optionally) PyTorch on conv2..conv4,
// alternating round by round; then the whole network's training step and encode against PyTorch and
// onnxruntime-node (bench/train.ts). See bench/README.md.
//
//   npm run bench -- [--quick] [--isa avx512[,avx2]] [--no-torch] [--no-train] [--rounds N] [--json FILE]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { benchFile, JEMALLOC, PYTHON, PythonChild, torchEnv, torchUnavailable } from './python-child.js';
import {
  ALL_ISAS,
  capabilities,
  conv2d,
  conv2dBackwardInput,
  conv2dBackwardWeight,
  maxPool2d,
  maxPool2dBackward,
  absTanh,
  absTanhBackward,
  sigmoid,
  sigmoidBackward,
  linear,
  linearBackwardInput,
  linearBackwardWeight,
  measureFmaPeak,
  setIsa,
  setConvAlgorithm,
  convAlgorithm,
  type ConvAlgorithm,
  Tensor,
  type Isa,
} from '../lib/index.js';
import { trainSection } from './train.js';
import { dpSection } from './dp.js';
import { scanSection } from './scan.js';
import { binSection } from './bins.js';

// ---------------------------------------------------------------------------------------------
// Options

interface Options {
  json: string | null;
  isas: Isa[] | null;
  quick: boolean;
  torch: boolean;
  rounds: number | null;
  /** The training-step / encode section (bench/train.ts). */
  train: boolean;
  /** Only the training-step / encode section (skip the kernel tables and pair-loss figures). */
  trainOnly: boolean;
  /** The search sections (exhaustive scans, BinIndex), with FAISS when python3-faiss is there. */
  search: boolean;
  searchOnly: boolean;
  trainRounds: number | null;
}

const USAGE = `usage: npm run bench -- [options]
  --quick          fewer repeats (about 0.3 s per kernel instead of 1 s), 3 PyTorch rounds
  --isa LIST       only these ISAs (repeatable or comma list: serial, avx2, avx512)
  --no-torch       skip the Python comparisons (PyTorch, onnxruntime-node whose model PyTorch exports, FAISS)
  --rounds N       PyTorch comparison rounds (default 9, --quick 3)
  --train          the training-step / encode section (the default)
  --no-train       skip it
  --train-only     only that section (no kernel tables, PyTorch conv comparison or pair-loss figures)
  --no-search      skip the search sections (exhaustive k-NN scans and BinIndex over 10M codes, vs FAISS)
  --search-only    only the search sections
  --train-rounds N its rounds (default 7, --quick 3)
  --json FILE      also write every figure as JSON to FILE
Environment: DCL_THREADS sets the kernel threads (default: all cores), DCL_ADDON a .node file to load.`;

function parseArgs(argv: string[]): Options {
  const o: Options = { json: null, isas: null, quick: false, torch: true, rounds: null, train: true, trainOnly: false, search: true, searchOnly: false, trainRounds: null };
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) usageError(`${flag} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') o.quick = true;
    else if (a === '--no-torch') o.torch = false;
    else if (a === '--train') o.train = true;
    else if (a === '--no-train') o.train = false;
    else if (a === '--train-only') o.trainOnly = o.train = true;
    else if (a === '--no-search') o.search = false;
    else if (a === '--search-only') o.searchOnly = o.search = true;
    else if (a === '--json') o.json = value(i++, a);
    else if (a === '--rounds') {
      const n = Number(value(i++, a));
      if (!Number.isInteger(n) || n < 1 || n > 100) usageError('--rounds needs an integer from 1 to 100');
      o.rounds = n;
    } else if (a === '--train-rounds') {
      const n = Number(value(i++, a));
      if (!Number.isInteger(n) || n < 1 || n > 100) usageError('--train-rounds needs an integer from 1 to 100');
      o.trainRounds = n;
    } else if (a === '--isa') {
      for (const name of value(i++, a).split(',').map((s) => s.trim()).filter(Boolean)) {
        if (!ALL_ISAS.includes(name as Isa)) usageError(`unknown ISA '${name}' (one of ${ALL_ISAS.join(', ')})`);
        (o.isas ??= []).includes(name as Isa) || o.isas.push(name as Isa);
      }
    } else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else usageError(`unknown option '${a}'`);
  }
  return o;
}

function usageError(message: string): never {
  console.error(`bench: ${message}\n${USAGE}`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// Statistics and timing

interface Stats {
  median: number;
  min: number;
  max: number;
  n: number;
}

function stats(values: number[]): Stats {
  const s = [...values].sort((a, b) => a - b);
  const n = s.length;
  const median = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  return { median, min: s[0], max: s[n - 1], n };
}

interface Budget {
  /** Stop repeating once this much time was spent (and minReps were done). */
  ms: number;
  minReps: number;
  maxReps: number;
}

interface Timing extends Stats {
  /** Calls per timed sample (more than 1 only for kernels under 0.1 ms). */
  inner: number;
}

/**
 * Times fn (ms per call): one warm-up call, then samples until `budget.ms` is spent and at least
 * minReps were taken, or maxReps were taken. A kernel slower than the budget gets minReps - 1
 * samples at least one; kernels under 0.1 ms are run several times per sample.
 */
function time(fn: () => void, budget: Budget): Timing {
  let t = performance.now();
  fn();
  const warm = performance.now() - t;
  let inner = 1;
  if (warm < 1) {
    t = performance.now();
    fn();
    const again = performance.now() - t;
    if (again < 0.1) inner = Math.min(1000, Math.ceil(0.1 / Math.max(again, 1e-4)));
  }
  const minReps = warm > budget.ms ? Math.max(1, budget.minReps - 1) : budget.minReps;
  const samples: number[] = [];
  const start = performance.now();
  while (samples.length < budget.maxReps) {
    t = performance.now();
    for (let i = 0; i < inner; i++) fn();
    samples.push((performance.now() - t) / inner);
    if (samples.length >= minReps && performance.now() - start >= budget.ms) break;
  }
  return { ...stats(samples), inner };
}

/** One warm-up call, then exactly `reps` timed calls: the median ms (the PyTorch rounds). */
function timeFixed(fn: () => void, reps: number): number {
  fn();
  const samples: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t = performance.now();
    fn();
    samples.push(performance.now() - t);
  }
  return stats(samples).median;
}

// ---------------------------------------------------------------------------------------------
// Data

let seed = 0x9e3779b9;
/** Uniform values in [-scale, scale) from a fixed xorshift stream (the same data every run). */
function rand(shape: number[], scale = 1): Tensor {
  const t = Tensor.zeros(shape);
  const d = t.data;
  let s = seed;
  for (let i = 0; i < d.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    d[i] = ((s >>> 0) / 4294967296 - 0.5) * 2 * scale;
  }
  seed = s >>> 0 || 1;
  return t;
}

// ---------------------------------------------------------------------------------------------
// DCL-S (DESIGN.md, "Reference network sizes"), input 1x64x64

interface ConvLayer {
  name: string;
  cin: number;
  cout: number;
  k: number;
  pad: number;
  /** Input height = width. */
  hw: number;
}

const CONVS: ConvLayer[] = [
  { name: 'conv1', cin: 1, cout: 32, k: 5, pad: 2, hw: 64 },
  { name: 'conv2', cin: 32, cout: 64, k: 3, pad: 1, hw: 32 },
  { name: 'conv3', cin: 64, cout: 128, k: 3, pad: 1, hw: 16 },
  { name: 'conv4', cin: 128, cout: 256, k: 3, pad: 1, hw: 8 },
];
const FCS = [
  { name: 'fc1', inF: 256 * 4 * 4, outF: 256 },
  { name: 'fc2', inF: 256, outF: 32 },
];
const ACCEPT_LAYERS = ['conv2', 'conv3', 'conv4'];
const BATCH = 64;
/** The serial ISA runs conv / fc at this batch; its times are scaled to batch 64. */
const SERIAL_BATCH = 8;

const convFlops = (c: ConvLayer, n: number) => 2 * n * c.cout * c.hw * c.hw * c.cin * c.k * c.k; // stride 1, 'same' padding
const linearFlops = (f: { inF: number; outF: number }, n: number) => 2 * n * f.inF * f.outF;

type Kind = 'conv' | 'fc' | 'mem';

interface KernelSpec {
  name: string;
  layer: string;
  /** fwd, bwd-in, bwd-w */
  pass: string;
  kind: Kind;
  shape: string;
  flops: (n: number) => number;
  /** Bytes read + written by one call (mem kernels). */
  bytes: (n: number) => number;
  /** Allocates the data for batch n and returns the call to time: the public op writing into `out` buffers. */
  setup: (n: number) => Setup;
  /** Conv rows: the algorithm forced while this row runs ('direct' for the true share of the peak). */
  algorithm?: ConvAlgorithm;
}

interface Setup {
  run: () => void;
  /** What run() writes (compared with the serial ISA's). */
  outputs: (Float32Array | Int32Array)[];
}

/** FNV-1a of the kernel name: every ISA (and the serial reference) sees the same data for a kernel. */
function seedFor(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0 || 1;
}

function kernelSpecs(): KernelSpec[] {
  const specs: KernelSpec[] = [];
  const mem = (name: string, layer: string, pass: string, shape: string, bytes: (n: number) => number, setup: KernelSpec['setup']) =>
    specs.push({ name, layer, pass, kind: 'mem', shape, flops: () => 0, bytes, setup });

  const tanhRows = (layer: string, dims: (n: number) => number[]) => {
    const size = (n: number) => dims(n).reduce((a, b) => a * b, 1);
    const shape = `[${dims(BATCH).slice(1).join('x')}]`;
    mem(`${layer} |tanh| fwd`, layer, 'fwd', shape, (n) => 8 * size(n), (n) => {
      const x = rand(dims(n), 2);
      const y = Tensor.zeros(dims(n));
      return { run: () => void absTanh(x, { out: y }), outputs: [y.data] };
    });
    mem(`${layer} |tanh| bwd`, layer, 'bwd', shape, (n) => 16 * size(n), (n) => {
      const x = rand(dims(n), 2);
      const y = absTanh(x);
      const dy = rand(dims(n));
      absTanhBackward(dy, x, y);
      const dx = Tensor.zeros(dims(n));
      return { run: () => void absTanhBackward(dy, x, y, { out: dx }), outputs: [dx.data] };
    });
  };

  for (const c of CONVS) {
    const xs = (n: number) => [n, c.cin, c.hw, c.hw];
    const ys = (n: number) => [n, c.cout, c.hw, c.hw];
    const ws = [c.cout, c.cin, c.k, c.k];
    const shape = `${c.cin}->${c.cout} ${c.k}x${c.k} p${c.pad} @${c.hw}x${c.hw}`;
    const wscale = 1 / Math.sqrt(c.cin * c.k * c.k);
    const flops = (n: number) => convFlops(c, n);
    // 3x3 / stride 1 / pad 1 layers run twice: the direct convolution (its GFLOP/s are real
    // multiply-adds, comparable with the FMA peak) and Winograd F(2x2, 3x3), what 'auto' uses,
    // whose GFLOP/s count the direct convolution's FLOPs ("effective": it does 2.25x fewer
    // multiplications, so it can pass the peak).
    const winograd = c.k === 3 && c.pad === 1;
    const conv = (pass: string, setup: KernelSpec['setup']) => {
      for (const algorithm of winograd ? (['direct', 'winograd'] as const) : (['direct'] as const))
        specs.push({
          name: `${c.name} ${pass}${winograd ? ` [${algorithm}]` : ''}`,
          layer: c.name,
          pass,
          kind: 'conv',
          shape,
          flops,
          bytes: () => 0,
          setup,
          algorithm,
        });
    };
    conv('fwd', (n) => {
      const x = rand(xs(n));
      const w = rand(ws, wscale);
      const b = rand([c.cout], 0.1);
      const y = Tensor.zeros(ys(n));
      return { run: () => void conv2d(x, w, b, { padding: c.pad, out: y }), outputs: [y.data] };
    });
    conv('bwd-in', (n) => {
      const dy = rand(ys(n));
      const w = rand(ws, wscale);
      const dx = Tensor.zeros(xs(n));
      return { run: () => void conv2dBackwardInput(dy, w, xs(n), { padding: c.pad, out: dx }), outputs: [dx.data] };
    });
    conv('bwd-w', (n) => {
      const x = rand(xs(n));
      const dy = rand(ys(n));
      const dw = Tensor.zeros(ws);
      const db = Tensor.zeros([c.cout]);
      return {
        run: () => void conv2dBackwardWeight(x, dy, { kernelSize: c.k, padding: c.pad, out: { weight: dw, bias: db } }),
        outputs: [dw.data, db.data],
      };
    });
    tanhRows(c.name, ys);
    const ps = (n: number) => [n, c.cout, c.hw / 2, c.hw / 2];
    const pshape = `${c.cout}x${c.hw}x${c.hw} -> ${c.hw / 2}x${c.hw / 2}`;
    const inBytes = (n: number) => 4 * n * c.cout * c.hw * c.hw;
    const outBytes = (n: number) => inBytes(n) / 4;
    // forward: read x, write y and argmax; backward: read dy and argmax, write dx
    mem(`${c.name} pool fwd`, c.name, 'fwd', pshape, (n) => inBytes(n) + 2 * outBytes(n), (n) => {
      const x = rand(ys(n));
      const y = Tensor.zeros(ps(n));
      const argmax = new Int32Array(y.size);
      maxPool2d(x, { kernelSize: 2 });
      return { run: () => void maxPool2d(x, { kernelSize: 2, out: { output: y, argmax } }), outputs: [y.data, argmax] };
    });
    mem(`${c.name} pool bwd`, c.name, 'bwd', pshape, (n) => inBytes(n) + 2 * outBytes(n), (n) => {
      const { argmax } = maxPool2d(rand(ys(n)), { kernelSize: 2 });
      const dy = rand(ps(n));
      maxPool2dBackward(dy, argmax, ys(n), { kernelSize: 2 });
      const dx = Tensor.zeros(ys(n));
      return { run: () => void maxPool2dBackward(dy, argmax, ys(n), { kernelSize: 2, out: dx }), outputs: [dx.data] };
    });
  }

  for (const f of FCS) {
    const shape = `${f.inF}->${f.outF}`;
    const flops = (n: number) => linearFlops(f, n);
    const wscale = 1 / Math.sqrt(f.inF);
    const fc = (pass: string, setup: KernelSpec['setup']) =>
      specs.push({ name: `${f.name} ${pass}`, layer: f.name, pass, kind: 'fc', shape, flops, bytes: () => 0, setup });
    fc('fwd', (n) => {
      const x = rand([n, f.inF]);
      const w = rand([f.outF, f.inF], wscale);
      const b = rand([f.outF], 0.1);
      const y = Tensor.zeros([n, f.outF]);
      return { run: () => void linear(x, w, b, { out: y }), outputs: [y.data] };
    });
    fc('bwd-in', (n) => {
      const dy = rand([n, f.outF]);
      const w = rand([f.outF, f.inF], wscale);
      linearBackwardInput(dy, w);
      const dx = Tensor.zeros([n, f.inF]);
      return { run: () => void linearBackwardInput(dy, w, { out: dx }), outputs: [dx.data] };
    });
    fc('bwd-w', (n) => {
      const x = rand([n, f.inF]);
      const dy = rand([n, f.outF]);
      linearBackwardWeight(x, dy);
      const dw = Tensor.zeros([f.outF, f.inF]);
      const db = Tensor.zeros([f.outF]);
      return { run: () => void linearBackwardWeight(x, dy, { out: { weight: dw, bias: db } }), outputs: [dw.data, db.data] };
    });
    if (f.name === 'fc1') tanhRows('fc1', (n) => [n, f.outF]);
  }

  const sdims = (n: number) => [n, FCS[1].outF];
  const sshape = `[${FCS[1].outF}]`;
  mem('fc2 sigmoid fwd', 'fc2', 'fwd', sshape, (n) => 8 * n * FCS[1].outF, (n) => {
    const x = rand(sdims(n), 4);
    const y = Tensor.zeros(sdims(n));
    return { run: () => void sigmoid(x, { out: y }), outputs: [y.data] };
  });
  mem('fc2 sigmoid bwd', 'fc2', 'bwd', sshape, (n) => 12 * n * FCS[1].outF, (n) => {
    const y = sigmoid(rand(sdims(n), 4));
    const dy = rand(sdims(n));
    sigmoidBackward(dy, y);
    const dx = Tensor.zeros(sdims(n));
    return { run: () => void sigmoidBackward(dy, y, { out: dx }), outputs: [dx.data] };
  });
  return specs.map((spec) => ({
    ...spec,
    setup: (n: number) => {
      seed = seedFor(spec.name);
      return spec.setup(n);
    },
  }));
}

/** The batch at which every ISA's outputs are compared with the serial kernels'. */
const CHECK_BATCH = 8;
const ERR_LIMIT = 1e-4;
const serialOutputs = new Map<string, (Float32Array | Int32Array)[]>();

/** max |isa - serial| / max |serial| over the outputs of one call at batch CHECK_BATCH (NaN counts as a mismatch). */
function errorVsSerial(spec: KernelSpec, isa: Isa): number {
  let ref = serialOutputs.get(spec.name);
  if (!ref) {
    setIsa('serial');
    try {
      const s = spec.setup(CHECK_BATCH);
      s.run();
      ref = s.outputs.map((o) => o.slice());
    } finally {
      setIsa(isa);
    }
    serialOutputs.set(spec.name, ref);
  }
  const s = spec.setup(CHECK_BATCH);
  s.run();
  let err = 0;
  let big = 0;
  s.outputs.forEach((out, k) => {
    const r = ref![k];
    for (let i = 0; i < r.length; i++) {
      const d = Math.abs(out[i] - r[i]);
      if (!(d <= err)) err = d;
      big = Math.max(big, Math.abs(r[i]));
    }
  });
  return Number.isNaN(err) ? Infinity : err / Math.max(big, 1e-30);
}

// ---------------------------------------------------------------------------------------------
// Machine

function cpuInfo() {
  let model = os.cpus()[0]?.model ?? 'unknown';
  let flags: string[] = [];
  let physical: number | null = null;
  try {
    const text = fs.readFileSync('/proc/cpuinfo', 'utf8');
    model = /^model name\s*:\s*(.*)$/m.exec(text)?.[1] ?? model;
    flags = (/^flags\s*:\s*(.*)$/m.exec(text)?.[1] ?? '').split(/\s+/);
    const ids = new Set<string>();
    for (const block of text.split(/\n\n/)) {
      const p = /^physical id\s*:\s*(\d+)/m.exec(block)?.[1];
      const core = /^core id\s*:\s*(\d+)/m.exec(block)?.[1];
      if (p !== undefined && core !== undefined) ids.add(`${p}:${core}`);
    }
    if (ids.size) physical = ids.size;
  } catch {
    // not Linux: os.cpus() only
  }
  const interesting = flags.filter((f) => /^(avx2|fma|f16c|avx512\w*|amx\w*)$/.test(f));
  return { model, logical: os.cpus().length, physical, flags: interesting, memGiB: os.totalmem() / 2 ** 30 };
}

/** The 1-minute load average (other processes on this shared host), or null off Linux. */
function loadAverage(): number | null {
  try {
    return Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  } catch {
    return null;
  }
}

let copySrc: Float32Array | null = null;
let copyDst: Float32Array | null = null;

/** Copy bandwidth of Float32Array.prototype.set over 256 MB (read + written bytes counted), GB/s. */
function measureCopyBandwidth(reps: number): Stats & { values: number[] } {
  const n = (256 * 2 ** 20) / 4;
  if (!copySrc || !copyDst) {
    copySrc = new Float32Array(n);
    for (let i = 0; i < n; i += 1024) copySrc[i] = i;
    copyDst = new Float32Array(n);
    copyDst.set(copySrc); // first touch of the destination pages
  }
  const gbps: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t = performance.now();
    copyDst.set(copySrc);
    gbps.push((2 * n * 4) / ((performance.now() - t) * 1e6));
  }
  return { ...stats(gbps), values: gbps };
}

function measurePeak(isa: Isa, threads: number, reps: number): Stats & { values: number[] } {
  const runs: number[] = [];
  for (let r = 0; r < reps; r++) runs.push(measureFmaPeak(isa, threads, 0.2));
  return { ...stats(runs), values: runs };
}

// ---------------------------------------------------------------------------------------------
// Formatting

const f1 = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
function fms(v: number): string {
  if (v >= 1000) return v.toFixed(0);
  if (v >= 100) return v.toFixed(1);
  if (v >= 1) return v.toFixed(2);
  return v.toFixed(4);
}
const range = (s: Stats, f: (v: number) => string = f1) => `${f(s.median)} [${f(s.min)}-${f(s.max)}]`;

function table(header: string[], rows: string[][], rightFrom = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i < rightFrom ? (c ?? '').padEnd(widths[i]) : (c ?? '').padStart(widths[i]))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

// ---------------------------------------------------------------------------------------------
// The per-ISA kernel tables

interface Row {
  isa: Isa;
  /** The conv algorithm forced for this row (null: not a conv row, or the default). */
  algorithm: ConvAlgorithm | null;
  kernel: string;
  layer: string;
  pass: string;
  kind: Kind;
  shape: string;
  /** The batch the kernel ran at; times and GFLOP/s are for batch 64 (scaled when batch != 64). */
  batch: number;
  ms: Stats;
  reps: number;
  inner: number;
  gflop: number;
  gflops: number | null;
  pctPeak: number | null;
  bytes: number;
  gbps: number | null;
  pctCopy: number | null;
  /** max |isa - serial| / max |serial| at batch CHECK_BATCH; null for the serial ISA itself. */
  errVsSerial: number | null;
}

interface IsaResult {
  isa: Isa;
  threads: number;
  peaks: Record<string, Stats>;
  copyGBs: Stats;
  rows: Row[];
  summary: {
    gflop: number;
    ms: number;
    gflops: number;
    pctPeak: number;
    pctOfHighestPeak: number;
    winograd: { ms: number; effectiveGflops: number; speedupOverDirect: number } | null;
  };
}

function benchIsa(isa: Isa, threads: number, opts: Options): IsaResult {
  const began = Date.now();
  setIsa(isa);
  const peakReps = opts.quick ? 3 : 5;
  const threadCounts = [...new Set([threads, 1])];
  const plural = (t: number) => `${t} thread${t > 1 ? 's' : ''}`;
  // The host is shared and noisy: the peak and the copy bandwidth are sampled before and after the
  // kernels, and the peak on `threads` threads also once before each conv and fc kernel, so that
  // its median sees the same conditions as the kernels do. The figures used are the medians.
  const peakSamples: Record<string, number[]> = {};
  const copySamples: number[] = [];
  const sample = (when: string) => {
    const line: string[] = [];
    for (const t of threadCounts) {
      const s = measurePeak(isa, t, peakReps);
      (peakSamples[t] ??= []).push(...s.values);
      line.push(`${plural(t)} ${range(s)}`);
    }
    const c = measureCopyBandwidth(peakReps);
    copySamples.push(...c.values);
    console.log(`${when}: FMA peak ${line.join(', ')} GFLOP/s; copy ${range(c)} GB/s`);
  };
  console.log(`\n=== ${isa} (${plural(threads)}) ===`);
  sample('before');

  const budget: Budget = opts.quick ? { ms: 300, minReps: 2, maxReps: 10 } : { ms: 1000, minReps: 3, maxReps: 40 };
  const rows: Row[] = [];
  for (const spec of kernelSpecs()) {
    const scaled = isa === 'serial' && spec.kind !== 'mem';
    const n = scaled ? SERIAL_BATCH : BATCH;
    const factor = BATCH / n;
    setConvAlgorithm(spec.algorithm ?? 'auto');
    const errVsSerial = isa === 'serial' ? null : errorVsSerial(spec, isa);
    if (spec.kind !== 'mem') peakSamples[threads].push(measureFmaPeak(isa, threads, 0.2));
    const { run } = spec.setup(n);
    const t = time(run, scaled ? { ...budget, minReps: 2 } : budget);
    setConvAlgorithm('auto');
    const ms = { median: t.median * factor, min: t.min * factor, max: t.max * factor, n: t.n };
    const gflop = spec.flops(BATCH) / 1e9;
    const gflops = spec.kind === 'mem' ? null : gflop / (ms.median / 1e3);
    const bytes = spec.bytes(BATCH);
    const gbps = spec.kind === 'mem' ? bytes / 1e9 / (ms.median / 1e3) : null;
    rows.push({
      isa,
      algorithm: spec.algorithm ?? null,
      kernel: spec.name,
      layer: spec.layer,
      pass: spec.pass,
      kind: spec.kind,
      shape: spec.shape,
      batch: n,
      ms,
      reps: t.n,
      inner: t.inner,
      gflop,
      gflops,
      pctPeak: null,
      bytes,
      gbps,
      pctCopy: null,
      errVsSerial,
    });
  }

  sample('after ');
  const peaks: Record<string, Stats> = {};
  for (const t of threadCounts) peaks[t] = stats(peakSamples[t]);
  const copyGBs = stats(copySamples);
  const peak = peaks[threads].median;
  for (const r of rows) {
    if (r.gflops !== null) r.pctPeak = (100 * r.gflops) / peak;
    if (r.gbps !== null) r.pctCopy = (100 * r.gbps) / copyGBs.median;
  }
  console.log(
    `FP32 FMA peak (${isa}): ${threadCounts.map((t) => `${plural(t)} ${range(peaks[t])}`).join(', ')} GFLOP/s ` +
      `(median [min-max] of runs of 0.2 s: ${peakSamples[threads].length} on ${plural(threads)} before, between and after the kernels` +
      (threads !== 1 ? `, ${peakSamples[1].length} on 1 thread before and after)` : ')'),
  );
  console.log(
    `Copy bandwidth: ${range(copyGBs)} GB/s (Float32Array.prototype.set of 256 MB, one JS thread, bytes read + written: a rough bound)`,
  );
  console.log(
    table(
      ['kernel', 'shape (batch 64)', 'batch', 'median ms', 'min-max ms', 'reps', 'GFLOP/s', '% peak', 'GB/s', '% copy', 'err'],
      rows.map((r) => [
        r.kernel,
        r.shape,
        r.batch === BATCH ? String(BATCH) : `${r.batch}x${BATCH / r.batch}`,
        fms(r.ms.median),
        `${fms(r.ms.min)}-${fms(r.ms.max)}`,
        r.inner > 1 ? `${r.reps}x${r.inner}` : String(r.reps),
        r.gflops === null ? '' : f1(r.gflops),
        r.pctPeak === null ? '' : r.pctPeak.toFixed(1),
        r.gbps === null ? '' : f1(r.gbps),
        r.pctCopy === null ? '' : r.pctCopy.toFixed(0),
        r.errVsSerial === null ? '' : r.errVsSerial.toExponential(0) + (r.errVsSerial > ERR_LIMIT ? ' !' : ''),
      ]),
      2,
    ),
  );
  const notes: string[] = [];
  if (rows.some((r) => r.batch !== BATCH))
    notes.push(`batch ${SERIAL_BATCH}x${BATCH / SERIAL_BATCH}: run at batch ${SERIAL_BATCH}, times multiplied by ${BATCH / SERIAL_BATCH} (the serial ISA is slow).`);
  if (isa !== 'serial')
    notes.push(
      `err: max |${isa} - serial| / max |serial| over the outputs, same data at batch ${CHECK_BATCH}; ! above ${ERR_LIMIT.toExponential(0)}` +
        (rows.some((r) => (r.errVsSerial ?? 0) > ERR_LIMIT) ? ' (SOME KERNELS DISAGREE WITH THE SERIAL ONES)' : ''),
    );
  notes.push('GFLOP/s: 2 x multiply-adds (backward input and weight counted like the forward); % peak: of the FMA peak above, same ISA and threads.');
  for (const n of notes) console.log(n);

  notes.push(
    'conv [direct]: the direct convolution, real multiply-adds; [winograd]: Winograd F(2x2, 3x3), what the library runs ' +
      "by default ('auto'), its GFLOP/s and % peak counting the direct convolution's FLOPs (effective: it does 2.25x fewer multiplications).",
  );
  const acc = rows.filter((r) => r.kind === 'conv' && ACCEPT_LAYERS.includes(r.layer) && r.algorithm !== 'winograd');
  const gflop = acc.reduce((a, r) => a + r.gflop, 0);
  const ms = acc.reduce((a, r) => a + r.ms.median, 0);
  const wino = rows.filter((r) => r.kind === 'conv' && ACCEPT_LAYERS.includes(r.layer) && r.algorithm === 'winograd');
  const winoMs = wino.reduce((a, r) => a + r.ms.median, 0);
  const gflops = gflop / (ms / 1e3);
  const pctPeak = (100 * gflops) / peak;
  const pctBest = (100 * gflops) / peaks[threads].max;
  const target = isa === 'avx512' && threads === 2 ? `  (target >= 50%: ${pctPeak >= 50 ? 'PASS' : 'FAIL'})` : '';
  console.log(
    `SUMMARY ${isa}: conv2+conv3+conv4 fwd+bwd-in+bwd-w, batch 64: ${gflop.toFixed(2)} GFLOP in ${fms(ms)} ms = ` +
      `${f1(gflops)} GFLOP/s = ${pctPeak.toFixed(1)}% of the ${threads}-thread peak${target}; ` +
      `${pctBest.toFixed(1)}% of the highest peak sample (${f1(peaks[threads].max)})` +
      (peaks[threads].max > 1.3 * peaks[threads].min ? '  (the peak samples vary by more than 30%: the host was busy)' : ''),
  );
  const winograd =
    wino.length > 0 ? { ms: winoMs, effectiveGflops: gflop / (winoMs / 1e3), speedupOverDirect: ms / winoMs } : null;
  if (winograd)
    console.log(
      `SUMMARY ${isa} Winograd (the default): the same three layers in ${fms(winoMs)} ms = ${f1(winograd.effectiveGflops)} effective GFLOP/s ` +
        `(${((100 * winograd.effectiveGflops) / peak).toFixed(0)}% of the peak), ${winograd.speedupOverDirect.toFixed(2)}x the direct convolution`,
    );
  console.log(`(${isa} section: ${((Date.now() - began) / 1e3).toFixed(0)} s)`);
  return { isa, threads, peaks, copyGBs, rows, summary: { gflop, ms, gflops, pctPeak, pctOfHighestPeak: pctBest, winograd } };
}

// ---------------------------------------------------------------------------------------------
// PyTorch

/** bench/torch_conv.py. */
const torchScript = () => benchFile('torch_conv.py');
/** PyTorch's fastest configuration, plus what torch_conv.py reads. */
const convTorchEnv = (threads: number) => torchEnv({ DCL_BENCH_THREADS: String(threads), DCL_BENCH_BATCH: String(BATCH) });

interface CheckResult {
  layer: string;
  batch: number;
  /** max |ours - torch| and max |torch| per output */
  y: [number, number];
  dx: [number, number];
  dw: [number, number];
  db: [number, number];
}

function maxErr(ours: Float32Array, ref: Float32Array): [number, number] {
  let err = 0;
  let big = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(ours[i] - ref[i]);
    if (!(d <= err)) err = d; // NaN sticks
    big = Math.max(big, Math.abs(ref[i]));
  }
  return [err, big];
}

async function checkAgainstTorch(torch: PythonChild, layers: ConvLayer[], batch: number): Promise<CheckResult[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcl-bench-'));
  const write = (name: string, t: Tensor) => fs.writeFileSync(path.join(dir, name), new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  const read = (name: string) => {
    const b = fs.readFileSync(path.join(dir, name));
    return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  };
  const results: CheckResult[] = [];
  try {
    for (const c of layers) {
      const x = rand([batch, c.cin, c.hw, c.hw]);
      const w = rand([c.cout, c.cin, c.k, c.k], 1 / Math.sqrt(c.cin * c.k * c.k));
      const b = rand([c.cout], 0.1);
      const dy = rand([batch, c.cout, c.hw, c.hw]);
      for (const [name, t] of [['x.bin', x], ['w.bin', w], ['b.bin', b], ['dy.bin', dy]] as const) write(name, t);
      await torch.command(`check ${c.name} ${dir} ${batch}`);
      const y = conv2d(x, w, b, { padding: c.pad });
      const dx = conv2dBackwardInput(dy, w, x.shape, { padding: c.pad });
      const g = conv2dBackwardWeight(x, dy, { kernelSize: c.k, padding: c.pad });
      results.push({
        layer: c.name,
        batch,
        y: maxErr(y.data, read('y.bin')),
        dx: maxErr(dx.data, read('dx.bin')),
        dw: maxErr(g.weight.data, read('dw.bin')),
        db: maxErr(g.bias!.data, read('db.bin')),
      });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return results;
}

interface TorchRound {
  order: 'ours-first' | 'torch-first';
  peak: number;
  /** per layer: ours fwd, bwd-in, bwd-w (median of reps), torch fwd, bwd (input+weight) */
  layers: Record<string, { ours: { fwd: number; bwdIn: number; bwdW: number; total: number }; torch: { fwd: number; bwd: number; total: number } }>;
  oursMs: number;
  torchMs: number;
}

async function compareTorch(isa: Isa, threads: number, opts: Options, estimateMs: number, startedAt: number) {
  console.log(`\n=== PyTorch comparison: conv2, conv3, conv4 of DCL-S, batch 64, forward + backward input + backward weight ===`);
  const reason = opts.torch ? torchUnavailable(['torch_conv.py']) : 'not asked for (--no-torch)';
  if (reason) {
    console.log(`PyTorch comparison skipped: ${reason}`);
    return { skipped: reason };
  }
  const torch = new PythonChild(PYTHON, torchScript(), convTorchEnv(threads));
  try {
    const ready = await torch.read();
    const env = convTorchEnv(threads);
    console.log(
      `PyTorch ${ready.torch} (${PYTHON}), torch.set_num_threads(${ready.threads}), channels-last, oneDNN ${ready.mkldnn ? 'on' : 'off'}; ` +
        `OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=${env.OPENBLAS_CORETYPE} MALLOC_CONF=${env.MALLOC_CONF} ` +
        (env.LD_PRELOAD ? `LD_PRELOAD=${env.LD_PRELOAD} (jemalloc ${ready.jemalloc ? 'loaded' : 'NOT loaded'})` : `(no jemalloc: ${JEMALLOC} missing)`),
    );
    console.log(`dcl-native: ${isa}, ${threads} thread${threads > 1 ? 's' : ''}, through the public ops with \`out\` buffers; conv algorithm ${convAlgorithm()} (Winograd F(2x2, 3x3) for these 3x3 layers).`);
    setIsa(isa);

    // Correctness, once: the same random input, weights and dy through both.
    const checkBatch = opts.quick ? 8 : BATCH;
    const checks = await checkAgainstTorch(torch, CONVS, checkBatch);
    console.log(`\nAgreement with PyTorch (batch ${checkBatch}, same random data): max |ours - torch| (max |torch|)`);
    let worst = 0;
    console.log(
      table(
        ['layer', 'forward y', 'backward dx', 'backward dw', 'backward db'],
        checks.map((c) => {
          const cells = [c.y, c.dx, c.dw, c.db].map(([e, m]) => {
            worst = Math.max(worst, Number.isNaN(e) ? Infinity : e / Math.max(m, 1e-30));
            return `${e.toExponential(2)} (${m.toFixed(2)})`;
          });
          return [c.layer, ...cells];
        }),
      ),
    );
    console.log(worst <= 1e-4 ? `agreement OK (worst relative to max |torch|: ${worst.toExponential(1)})` : `MISMATCH: worst error relative to max |torch| is ${worst.toExponential(2)} (> 1e-4)`);

    // Timing rounds, alternating which side goes first; the FMA peak is measured in every round.
    const layers = CONVS.filter((c) => ACCEPT_LAYERS.includes(c.name));
    const maxReps = opts.quick ? 3 : 7;
    const reps = Math.max(1, Math.min(maxReps, Math.floor(1500 / Math.max(estimateMs, 1))));
    // PyTorch takes 30-60 ms a layer here: at least 3 runs, so that its median rejects noise too.
    const torchReps = Math.max(reps, 3);
    const rounds = opts.rounds ?? (opts.quick ? 3 : 9);
    const deadline = startedAt + (opts.quick ? 240 : 330) * 1e3;
    const data = layers.map((c) => {
      const xs = [BATCH, c.cin, c.hw, c.hw];
      const ys = [BATCH, c.cout, c.hw, c.hw];
      const ws = [c.cout, c.cin, c.k, c.k];
      return {
        c,
        x: rand(xs),
        w: rand(ws, 1 / Math.sqrt(c.cin * c.k * c.k)),
        b: rand([c.cout], 0.1),
        dy: rand(ys),
        y: Tensor.zeros(ys),
        dx: Tensor.zeros(xs),
        dw: Tensor.zeros(ws),
        db: Tensor.zeros([c.cout]),
      };
    });
    const oursRound = () => {
      const out: Record<string, { fwd: number; bwdIn: number; bwdW: number; total: number }> = {};
      for (const d of data) {
        const p = d.c.pad;
        const fwd = timeFixed(() => void conv2d(d.x, d.w, d.b, { padding: p, out: d.y }), reps);
        const bwdIn = timeFixed(() => void conv2dBackwardInput(d.dy, d.w, d.x.shape, { padding: p, out: d.dx }), reps);
        const bwdW = timeFixed(
          () => void conv2dBackwardWeight(d.x, d.dy, { kernelSize: d.c.k, padding: p, out: { weight: d.dw, bias: d.db } }),
          reps,
        );
        out[d.c.name] = { fwd, bwdIn, bwdW, total: fwd + bwdIn + bwdW };
      }
      return out;
    };
    const torchRound = async () => {
      const out: Record<string, { fwd: number; bwd: number; total: number }> = {};
      for (const c of layers) {
        const r = (await torch.command(`run ${c.name} ${torchReps + 1}`)) as { fwd_ms: number[]; bwd_ms: number[]; total_ms: number[] };
        // the first of torchReps + 1 is the warm-up, like timeFixed()
        out[c.name] = {
          fwd: stats(r.fwd_ms.slice(1)).median,
          bwd: stats(r.bwd_ms.slice(1)).median,
          total: stats(r.total_ms.slice(1)).median,
        };
      }
      return out;
    };

    const results: TorchRound[] = [];
    process.stdout.write(
      `\n${rounds} rounds, alternating who goes first (per round and kernel: 1 warm-up, then the median of ${reps} runs, PyTorch ${torchReps}): `,
    );
    for (let r = 0; r < rounds; r++) {
      if (r >= 3 && Date.now() > deadline) {
        process.stdout.write(`(time limit: stopped after ${r} rounds) `);
        break;
      }
      let ours: ReturnType<typeof oursRound>;
      let th: Awaited<ReturnType<typeof torchRound>>;
      if (r % 2 === 0) {
        ours = oursRound();
        th = await torchRound();
      } else {
        th = await torchRound();
        ours = oursRound();
      }
      const peak = measureFmaPeak(isa, threads, 0.2);
      const round: TorchRound = { order: r % 2 === 0 ? 'ours-first' : 'torch-first', peak, layers: {}, oursMs: 0, torchMs: 0 };
      for (const c of layers) {
        round.layers[c.name] = { ours: ours[c.name], torch: th[c.name] };
        round.oursMs += ours[c.name].total;
        round.torchMs += th[c.name].total;
      }
      results.push(round);
      process.stdout.write('.');
    }
    process.stdout.write('\n');

    const gflopLayer = (c: ConvLayer) => (3 * convFlops(c, BATCH)) / 1e9;
    const totalGflop = layers.reduce((a, c) => a + gflopLayer(c), 0);
    const rowsOut: string[][] = [];
    const perLayer: Record<string, unknown> = {};
    for (const c of layers) {
      const o = stats(results.map((r) => r.layers[c.name].ours.total));
      const t = stats(results.map((r) => r.layers[c.name].torch.total));
      const ratio = stats(results.map((r) => r.layers[c.name].torch.total / r.layers[c.name].ours.total));
      const of = stats(results.map((r) => r.layers[c.name].ours.fwd));
      const ob = stats(results.map((r) => r.layers[c.name].ours.bwdIn + r.layers[c.name].ours.bwdW));
      const tf = stats(results.map((r) => r.layers[c.name].torch.fwd));
      const tb = stats(results.map((r) => r.layers[c.name].torch.bwd));
      perLayer[c.name] = { gflop: gflopLayer(c), oursMs: o, torchMs: t, ratio, oursFwdMs: of, oursBwdMs: ob, torchFwdMs: tf, torchBwdMs: tb };
      rowsOut.push([
        c.name,
        range(o, fms),
        `${fms(of.median)} + ${fms(ob.median)}`,
        range(t, fms),
        `${fms(tf.median)} + ${fms(tb.median)}`,
        range(ratio, (v) => v.toFixed(2)),
        f1(gflopLayer(c) / (o.median / 1e3)),
        f1(gflopLayer(c) / (t.median / 1e3)),
      ]);
    }
    const oursG = stats(results.map((r) => totalGflop / (r.oursMs / 1e3)));
    const torchG = stats(results.map((r) => totalGflop / (r.torchMs / 1e3)));
    const ratio = stats(results.map((r) => r.torchMs / r.oursMs));
    // % of the median peak over all rounds: one 0.2 s sample per round is too noisy to divide by.
    const peak = stats(results.map((r) => r.peak));
    const pctOf = (g: Stats) => ({ median: (100 * g.median) / peak.median, min: (100 * g.min) / peak.median, max: (100 * g.max) / peak.median, n: g.n });
    const oursPct = pctOf(oursG);
    const torchPct = pctOf(torchG);
    rowsOut.push([
      'total',
      range(stats(results.map((r) => r.oursMs)), fms),
      '',
      range(stats(results.map((r) => r.torchMs)), fms),
      '',
      range(ratio, (v) => v.toFixed(2)),
      f1(oursG.median),
      f1(torchG.median),
    ]);
    console.log(`\nmedian [min-max] over ${results.length} rounds; ratio = torch time / our time (> 1: dcl-native is faster)`);
    console.log(
      table(['layer', 'ours ms', 'ours fwd + bwd', 'torch ms', 'torch fwd + bwd', 'ratio', 'ours GFLOP/s', 'torch GFLOP/s'], rowsOut),
    );
    console.log(`FMA peak (${isa}, ${threads} threads), one 0.2 s run in each round: ${range(peak)} GFLOP/s; % of peak below: of its median`);
    console.log(
      `TOTAL ${totalGflop.toFixed(2)} GFLOP: dcl-native ${range(oursG)} GFLOP/s (${range(oursPct)}% of peak), ` +
        `PyTorch ${range(torchG)} GFLOP/s (${range(torchPct)}% of peak), ratio ${range(ratio, (v) => v.toFixed(2))}`,
    );
    const oursPctBest = (100 * oursG.median) / peak.max;
    const torchPctBest = (100 * torchG.median) / peak.max;
    console.log(
      `  of the highest peak sample (${f1(peak.max)} GFLOP/s): dcl-native ${oursPctBest.toFixed(1)}%, PyTorch ${torchPctBest.toFixed(1)}%` +
        (peak.max > 1.3 * peak.min ? '  (the peak samples vary by more than 30%: the host was busy)' : ''),
    );
    if (isa === 'avx512' && threads === 2)
      console.log(
        `ACCEPTANCE (avx512, 2 threads): ${oursPct.median.toFixed(1)}% of peak (>= 50%: ${oursPct.median >= 50 ? 'PASS' : 'FAIL'}; ` +
          `${oursPctBest.toFixed(1)}% of the highest sample), ` +
          `${ratio.median.toFixed(2)} x PyTorch (>= 0.8: ${ratio.median >= 0.8 ? 'PASS' : 'FAIL'})`,
      );
    return {
      isa,
      threads,
      torch: ready,
      env: { OPENBLAS_NUM_THREADS: env.OPENBLAS_NUM_THREADS, OPENBLAS_CORETYPE: env.OPENBLAS_CORETYPE, MALLOC_CONF: env.MALLOC_CONF, LD_PRELOAD: env.LD_PRELOAD ?? null },
      checks,
      repsPerRound: { ours: reps, torch: torchReps },
      rounds: results,
      perLayer,
      total: {
        gflop: totalGflop,
        oursGflops: oursG,
        torchGflops: torchG,
        ratio,
        oursPctPeak: oursPct,
        torchPctPeak: torchPct,
        oursPctOfHighestPeak: oursPctBest,
        torchPctOfHighestPeak: torchPctBest,
        peak,
      },
    };
  } catch (error) {
    console.log(`PyTorch comparison failed: ${(error as Error).message}`);
    return { failed: (error as Error).message };
  } finally {
    await torch.quit().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const startedAt = Date.now();
  const opts = parseArgs(process.argv.slice(2));
  const caps = capabilities();
  const isas = opts.isas ?? caps.isas;
  for (const isa of isas)
    if (!caps.isas.includes(isa)) usageError(`this CPU does not support '${isa}' (it supports ${caps.isas.join(', ')})`);
  const cpu = cpuInfo();
  console.log('dcl-native benchmark: DCL-S layer shapes, batch 64');
  console.log(`CPU: ${cpu.model}; ${cpu.logical} logical CPUs${cpu.physical ? `, ${cpu.physical} cores` : ''}; ${cpu.memGiB.toFixed(0)} GiB`);
  console.log(`CPU flags: ${cpu.flags.join(' ') || '(none of interest)'}`);
  console.log(
    `capabilities(): isas ${caps.isas.join(', ')}; active ${caps.isa}; threads ${caps.threads} of ${caps.hardwareThreads} hardware; ` +
      `cuda ${caps.cuda.usable ? 'usable' : `no (${caps.cuda.reason})`}`,
  );
  console.log(`node ${process.version}${process.env.DCL_ADDON ? `, addon ${process.env.DCL_ADDON}` : ''}${opts.quick ? ', --quick' : ''}`);
  const loadAtStart = loadAverage();
  if (loadAtStart !== null)
    console.log(`load average (1 min) at start: ${loadAtStart.toFixed(2)} on ${cpu.logical} CPUs (anything above ~0.1 competes with the figures below)`);

  const results: IsaResult[] = [];
  try {
    if (!opts.trainOnly && !opts.searchOnly) for (const isa of isas) results.push(benchIsa(isa, caps.threads, opts));
  } finally {
    setIsa(caps.isa);
  }
  copySrc = copyDst = null;

  // The comparison runs on the widest ISA benchmarked (serial is too slow to be worth it).
  const widest = [...isas].sort((a, b) => ALL_ISAS.indexOf(b) - ALL_ISAS.indexOf(a))[0];
  let torch: unknown;
  let train: unknown = { skipped: 'not asked for (--no-train)' };
  if (opts.trainOnly || opts.searchOnly) {
    torch = { skipped: 'not asked for' };
  } else if (widest === 'serial') {
    console.log('\nPyTorch comparison skipped: only the serial ISA was benchmarked');
    torch = { skipped: 'serial only' };
  } else {
    const r = results.find((x) => x.isa === widest)!;
    const estimate = r.rows.filter((x) => x.kind === 'conv' && ACCEPT_LAYERS.includes(x.layer) && x.algorithm !== 'direct').reduce((a, x) => a + x.ms.median, 0);
    try {
      torch = await compareTorch(widest, caps.threads, opts, estimate, startedAt);
    } finally {
      setIsa(caps.isa);
    }
  }
  const dp = opts.trainOnly || opts.searchOnly ? { skipped: 'not asked for' } : dpSection(isas, opts.quick);
  if (opts.searchOnly) train = { skipped: 'not asked for (--search-only)' };
  else if (opts.train && widest === 'serial') {
    console.log('\nTraining / encode section skipped: only the serial ISA was benchmarked');
    train = { skipped: 'serial only' };
  } else if (opts.train) {
    try {
      train = await trainSection({ quick: opts.quick, torch: opts.torch, onnx: true, rounds: opts.trainRounds, isa: widest });
    } finally {
      setIsa(caps.isa);
    }
  }

  let scan: unknown = { skipped: 'not asked for (--no-search)' };
  let bins: unknown = { skipped: 'not asked for (--no-search)' };
  if (opts.search && !opts.trainOnly) {
    scan = await scanSection({ quick: opts.quick, faiss: opts.torch });
    bins = await binSection({ quick: opts.quick, faiss: opts.torch });
  }

  const loadAtEnd = loadAverage();
  console.log(
    `\nbench finished in ${((Date.now() - startedAt) / 1e3).toFixed(0)} s` +
      (loadAtEnd !== null ? `; load average (1 min) at the end: ${loadAtEnd.toFixed(2)} (this bench itself adds up to ${caps.threads})` : ''),
  );
  if (opts.json) {
    const doc = {
      date: new Date().toISOString(),
      node: process.version,
      cpu,
      capabilities: caps,
      options: opts,
      batch: BATCH,
      serialBatch: SERIAL_BATCH,
      isas: results,
      torch,
      dp,
      train,
      scan,
      bins,
      seconds: (Date.now() - startedAt) / 1e3,
      loadAverage: { start: loadAtStart, end: loadAtEnd },
    };
    fs.writeFileSync(opts.json, JSON.stringify(doc, null, 2) + '\n');
    console.log(`figures written to ${opts.json}`);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
