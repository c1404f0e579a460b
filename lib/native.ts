// Loads the compiled addon and wraps each native entry point so that anything it throws
// becomes a DclError. The addon trusts its arguments: everything is validated before a call.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { DclError, fromNativeError } from './errors.js';

/** The shape of the compiled addon (bindings/addon.cpp). Shapes are integer arrays in a fixed order. */
export interface NativeAddon {
  capabilities(): NativeCapabilities;
  setIsa(isa: string): void;
  setThreads(threads: number): void;
  /** 'auto' | 'direct' | 'winograd': how the SIMD paths run 3x3, stride-1, padding-1 convolutions. */
  setConvAlgorithm(algorithm: string): void;
  convAlgorithm(): string;
  /** The active ISA and conv algorithm as one integer (4 isa + algorithm); changes when either does. */
  kernelSettings(): number;
  fmaPeak(isa: string, threads: number, seconds: number): number;
  /** conv shape: [N, Cin, H, W, Cout, KH, KW, SH, SW, PH, PW] */
  conv2dForward(x: Float32Array, w: Float32Array, b: Float32Array | null, y: Float32Array, shape: number[]): void;
  /**
   * Floats of the prepared weights of a conv layer (conv shape as conv2dForward): the forward's
   * weight operand in the layout the active ISA's kernel reads under the current conv algorithm
   * (a header naming that layout, then the Winograd transform, the direct path's packed panel, or
   * for serial a copy). Depends on the channels, kernel, stride and padding, not on N, H or W.
   */
  conv2dPreparedFloats(shape: number[]): number;
  /** Writes the prepared weights of w (prepared: exactly conv2dPreparedFloats(shape) floats). */
  conv2dPrepare(w: Float32Array, prepared: Float32Array, shape: number[]): void;
  /**
   * conv2dForward with prepared weights: bit for bit the same y. Throws E_ARG when they were
   * prepared for another layer, ISA or conv algorithm.
   */
  conv2dForwardPrepared(x: Float32Array, prepared: Float32Array, b: Float32Array | null, y: Float32Array, shape: number[]): void;
  conv2dBackwardInput(dy: Float32Array, w: Float32Array, dx: Float32Array, shape: number[]): void;
  conv2dBackwardWeight(x: Float32Array, dy: Float32Array, dw: Float32Array, db: Float32Array | null, shape: number[]): void;
  /** pool shape: [N, C, H, W, KH, KW, SH, SW] */
  maxPool2dForward(x: Float32Array, y: Float32Array, argmax: Int32Array, shape: number[]): void;
  maxPool2dBackward(dy: Float32Array, argmax: Int32Array, dx: Float32Array, shape: number[]): void;
  absTanhForward(x: Float32Array, y: Float32Array): void;
  absTanhBackward(dy: Float32Array, x: Float32Array, y: Float32Array, dx: Float32Array): void;
  /** Fused |tanh| + max-pool, pool shape as maxPool2dForward: y = tanh(max over the window of |x|). */
  absTanhMaxPool2dForward(x: Float32Array, y: Float32Array, argmax: Int32Array, shape: number[]): void;
  absTanhMaxPool2dBackward(dy: Float32Array, argmax: Int32Array, x: Float32Array, y: Float32Array, dx: Float32Array, shape: number[]): void;
  sigmoidForward(x: Float32Array, y: Float32Array): void;
  sigmoidBackward(dy: Float32Array, y: Float32Array, dx: Float32Array): void;
  /** linear shape: [N, in, out] */
  linearForward(x: Float32Array, w: Float32Array, b: Float32Array | null, y: Float32Array, shape: number[]): void;
  linearBackwardInput(dy: Float32Array, w: Float32Array, dx: Float32Array, shape: number[]): void;
  linearBackwardWeight(x: Float32Array, dy: Float32Array, dw: Float32Array, db: Float32Array | null, shape: number[]): void;
  /**
   * Expected pair loss over binary codes (dynamic programming). pair shape: [N, n, P]. loss:
   * [P] per pair; gradP [N, n] and gradScalars [d/dalpha, d/dbeta] are of scale * sum_k w_k loss_k
   * (gradP null: forward only).
   */
  hammingDp(
    p: Float32Array,
    gradP: Float32Array | null,
    pairs: Int32Array,
    labels: Float32Array,
    weights: Float32Array | null,
    loss: Float64Array,
    gradScalars: Float64Array | null,
    shape: number[],
    alpha: number,
    beta: number,
    scale: number,
  ): void;
  /** Pair loss over the L1 distance of f, gradient directions from sign(s_a - s_b). Shapes as hammingDp. */
  pairL1Loss(
    f: Float32Array,
    s: Float32Array,
    gradF: Float32Array | null,
    pairs: Int32Array,
    labels: Float32Array,
    weights: Float32Array | null,
    loss: Float64Array,
    gradScalars: Float64Array | null,
    shape: number[],
    alpha: number,
    beta: number,
    scale: number,
  ): void;
  /** shape: [count, n, q] */
  quantizePack(p: Float32Array, codes: Int32Array, shape: number[]): void;
  /** shape: [count, n, q, hamming (0 | 1)] */
  codeDistances(a: Int32Array, b: Int32Array, dist: Uint32Array, shape: number[]): void;
  /**
   * One Adam / AdamW update in place (param, m, v; all four arrays of one length), float32:
   * p *= 1 - lr wd; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
   * p -= lr / biasCorrection1 * m / (sqrt(v) / biasCorrection2Sqrt + eps).
   */
  adamUpdate(
    param: Float32Array,
    grad: Float32Array,
    m: Float32Array,
    v: Float32Array,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    biasCorrection1: number,
    biasCorrection2Sqrt: number,
  ): void;
  // ---- the bin index (bindings/bins.cpp, native/cpu/bins.cpp; lib/bin-index.ts) ----
  /** Stable ascending argsort: order[i] = index of the i-th smallest key. */
  binsArgsort(keys: Uint32Array | Float64Array, order: Uint32Array): void;
  /** Groups sorted codes into bins (codes, start hold N + 1 entries); returns the bin count B. */
  binsGroup(sorted: Uint32Array, codes: Uint32Array, start: Uint32Array): number;
  /** Hash-table slots for B bins (a power of two, load <= 0.7). */
  binsHashSlots(bins: number): number;
  /** Fills the hash table; returns the index of the bin 0xFFFFFFFF (kept out of the table) or -1. */
  binsBuildHash(codes: Uint32Array, keys: Uint32Array, vals: Uint32Array): number;
  /** The prefix directory over the top prefixDims dimensions: dir holds 2^(prefixDims q) + 1 bin offsets. */
  binsBuildPrefix(codes: Uint32Array, n: number, q: number, prefixDims: number, dir: Uint32Array): void;
  /**
   * The MIH tables (native/include/dcl/bins.h): dims = dimensions per group, top group first;
   * offsets: sum over groups of 2^(dims[t] q) + 1 entries; mcodes / mbins: (groups - 1) B entries.
   */
  binsBuildMih(codes: Uint32Array, n: number, q: number, dims: number[], offsets: Uint32Array, mcodes: Uint32Array, mbins: Uint32Array): void;
  /** options: [k, maxBins, maxDistance, strategy 0 rank | 1 enumerate | 2 prefix] (Infinity: no limit). */
  binsSearch(view: NativeBinView, query: number, options: number[]): NativeBinResult;
  binsSearchBatch(view: NativeBinView, queries: Uint32Array, options: number[], async: false): NativeBinBatch;
  binsSearchBatch(view: NativeBinView, queries: Uint32Array, options: number[], async: true): Promise<NativeBinBatch>;
  // ---- exhaustive code scans (bindings/scan.cpp, native/cpu/scan_*.cpp; lib/scan.ts) ----
  /**
   * k nearest of each query by (distance, index): shape [N, Q, n, q, hamming (0 | 1), k];
   * indices / distances [Q k] (index -1 and distance 0xffffffff past N). async: a Promise that
   * resolves when the outputs are written (runs on libuv's pool; the arrays must stay untouched).
   */
  codeKnn(database: Int32Array, queries: Int32Array, indices: Int32Array, distances: Uint32Array, shape: number[], async: false): void;
  codeKnn(database: Int32Array, queries: Int32Array, indices: Int32Array, distances: Uint32Array, shape: number[], async: true): Promise<void>;
  /** Every code within the radius, ascending index per query: shape [N, Q, n, q, hamming, radius]. */
  codeRange(database: Int32Array, queries: Int32Array, shape: number[], async: false): NativeRangeResult;
  codeRange(database: Int32Array, queries: Int32Array, shape: number[], async: true): Promise<NativeRangeResult>;
  // ---- the CUDA backend (bindings/cuda.cpp, native/cuda/*.cu; lib/cuda.ts) ----
  // Every tensor operand is a host typed array (copied to the device and back around the call)
  // or the number of a device buffer from cudaAlloc (used in place). Argument orders follow the
  // CPU functions above; element-wise ops take the element count last. Built without CUDA, every
  // function but cudaStatus throws E_CUDA.
  cudaStatus(): NativeCudaStatus;
  /** A device block of `bytes` from the caching allocator: its buffer number. */
  cudaAlloc(bytes: number): number;
  /** Returns the block to the allocator's cache (unknown numbers are ignored). */
  cudaFree(buffer: number): void;
  /** Copies the array's bytes to the start of the buffer / the start of the buffer into the array. */
  cudaUpload(buffer: number, data: ArrayBufferView): void;
  cudaDownload(buffer: number, data: ArrayBufferView): void;
  cudaSynchronize(): void;
  cudaReleaseCached(): void;
  cudaMemoryStats(): NativeCudaMemoryStats;
  /** FP32 FMA throughput of the device over about `seconds`, GFLOP/s. */
  cudaFmaPeak(seconds: number): number;
  /** Device-to-device copy bandwidth (bytes read + written), GB/s. */
  cudaCopyBandwidth(bytes: number, repeats: number): number;
  cudaConv2dForward(x: CudaOperand, w: CudaOperand, b: CudaOperand | null, y: CudaOperand, shape: number[]): void;
  cudaConv2dBackwardInput(dy: CudaOperand, w: CudaOperand, dx: CudaOperand, shape: number[]): void;
  cudaConv2dBackwardWeight(x: CudaOperand, dy: CudaOperand, dw: CudaOperand, db: CudaOperand | null, shape: number[]): void;
  cudaMaxPool2dForward(x: CudaOperand, y: CudaOperand, argmax: CudaOperand, shape: number[]): void;
  /** checkArgmax: verify every argmax lies in its own window first (E_ARG otherwise; waits for the device). */
  cudaMaxPool2dBackward(dy: CudaOperand, argmax: CudaOperand, dx: CudaOperand, shape: number[], checkArgmax: boolean): void;
  cudaAbsTanhMaxPool2dForward(x: CudaOperand, y: CudaOperand, argmax: CudaOperand, shape: number[]): void;
  cudaAbsTanhMaxPool2dBackward(dy: CudaOperand, argmax: CudaOperand, x: CudaOperand, y: CudaOperand, dx: CudaOperand, shape: number[], checkArgmax: boolean): void;
  cudaAbsTanhForward(x: CudaOperand, y: CudaOperand, n: number): void;
  cudaAbsTanhBackward(dy: CudaOperand, x: CudaOperand, y: CudaOperand, dx: CudaOperand, n: number): void;
  cudaSigmoidForward(x: CudaOperand, y: CudaOperand, n: number): void;
  cudaSigmoidBackward(dy: CudaOperand, y: CudaOperand, dx: CudaOperand, n: number): void;
  cudaLinearForward(x: CudaOperand, w: CudaOperand, b: CudaOperand | null, y: CudaOperand, shape: number[]): void;
  cudaLinearBackwardInput(dy: CudaOperand, w: CudaOperand, dx: CudaOperand, shape: number[]): void;
  cudaLinearBackwardWeight(x: CudaOperand, dy: CudaOperand, dw: CudaOperand, db: CudaOperand | null, shape: number[]): void;
  /** As hammingDp; pairs, labels and weights are host arrays (the pair batch is built on the host). */
  cudaHammingDp(
    p: CudaOperand,
    gradP: CudaOperand | null,
    pairs: Int32Array,
    labels: Float32Array,
    weights: Float32Array | null,
    loss: CudaOperand,
    gradScalars: CudaOperand | null,
    shape: number[],
    alpha: number,
    beta: number,
    scale: number,
  ): void;
  cudaPairL1Loss(
    f: CudaOperand,
    s: CudaOperand,
    gradF: CudaOperand | null,
    pairs: Int32Array,
    labels: Float32Array,
    weights: Float32Array | null,
    loss: CudaOperand,
    gradScalars: CudaOperand | null,
    shape: number[],
    alpha: number,
    beta: number,
    scale: number,
  ): void;
  /**
   * The training loss of one batch (lib/train.ts batchLoss on the device): dL/dp into gradP,
   * result [loss, d/dalpha, d/dbeta]. shape: [N, n, P, 2^Q, method (0 rounding, 1 dp, 2 std,
   * 3 float)]; weightSum: the sum of the pair weights (the mean's denominator).
   */
  cudaBatchLoss(
    p: CudaOperand,
    gradP: CudaOperand,
    pairs: Int32Array,
    labels: Float32Array,
    weights: Float32Array | null,
    result: CudaOperand,
    shape: number[],
    alpha: number,
    beta: number,
    weightSum: number,
    omega: number,
  ): void;
  /** shape: [count, n, q] */
  cudaQuantizePack(p: CudaOperand, codes: CudaOperand, shape: number[]): void;
  /** shape: [N, Q, n, q, hamming (0 | 1), k], k <= 64 */
  cudaCodeKnn(database: CudaOperand, queries: CudaOperand, indices: CudaOperand, distances: CudaOperand, shape: number[]): void;
  cudaAdamUpdate(
    param: CudaOperand,
    grad: CudaOperand,
    m: CudaOperand,
    v: CudaOperand,
    n: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    biasCorrection1: number,
    biasCorrection2Sqrt: number,
  ): void;
}

/** A CUDA op operand: a host typed array (copied in and out) or a device buffer number. */
export type CudaOperand = Float32Array | Int32Array | Uint32Array | Float64Array | number;

export interface NativeCudaDevice {
  name: string;
  /** 'major.minor' */
  computeCapability: string;
  memoryBytes: number;
  smCount: number;
}

export interface NativeCudaStatus {
  compiled: boolean;
  usable: boolean;
  /** Why CUDA is not usable (null when it is). */
  reason: string | null;
  devices: NativeCudaDevice[];
}

export interface NativeCudaMemoryStats {
  bytesInUse: number;
  bytesCached: number;
  deviceAllocations: number;
  reuses: number;
}

export interface NativeRangeResult {
  offsets: Int32Array;
  indices: Int32Array;
  distances: Uint32Array;
}

export interface NativeBinView {
  n: number;
  q: number;
  codes: Uint32Array;
  start: Uint32Array;
  keys: Uint32Array | null;
  vals: Uint32Array | null;
  allOnesBin: number;
  prefixDims: number;
  dir: Uint32Array | null;
  /** MIH tables (null: none): dimensions per group, top group first, and the arrays of binsBuildMih. */
  mihDims: number[] | null;
  mihOffsets: Uint32Array | null;
  mihCodes: Uint32Array | null;
  mihBins: Uint32Array | null;
}

export interface NativeBinStats {
  enumerated: number;
  probed: number;
  visited: number;
}

export interface NativeBinResult {
  positions: Uint32Array;
  distances: Uint32Array;
  stats: NativeBinStats;
}

export interface NativeBinBatch extends NativeBinResult {
  offsets: Float64Array;
}

export interface NativeCapabilities {
  isas: string[];
  isa: string;
  bestIsa: string;
  threads: number;
  hardwareThreads: number;
  cuda: NativeCudaStatus;
}

/** The package root: dist/lib/native.js lives two folders below it. */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function load(): NativeAddon {
  const require = createRequire(import.meta.url);
  try {
    // DCL_ADDON names a specific .node file (a development build in another folder).
    const explicit = process.env.DCL_ADDON;
    if (explicit) return require(path.resolve(explicit)) as NativeAddon;
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => NativeAddon;
    return nodeGypBuild(packageRoot);
  } catch (error) {
    throw new DclError(
      'E_LOAD',
      `Could not load the dcl-native addon (${(error as Error).message}). ` +
        'Reinstall the package or build it from source with `npm rebuild dcl-native` (needs cmake and a C++ compiler).',
      { cause: error },
    );
  }
}

const raw = load();

/** The addon with every function wrapped: native exceptions come out as DclError. */
export const native: NativeAddon = Object.fromEntries(
  Object.entries(raw).map(([name, fn]) => [
    name,
    (...args: unknown[]) => {
      try {
        return (fn as (...a: unknown[]) => unknown)(...args);
      } catch (error) {
        throw fromNativeError(error, name);
      }
    },
  ]),
) as unknown as NativeAddon;
